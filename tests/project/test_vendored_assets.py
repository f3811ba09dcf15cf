"""Vendored front-end assets keep to the Content Security Policy (img-src 'self'): no `data:` image in
Bootstrap's stylesheet, and every file it points at is there (and survives collectstatic's hashing)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP_CSS = ROOT / "static/vendor/bootstrap/css/bootstrap.min.css"

pytestmark = pytest.mark.integration


def test_bootstrap_css_holds_no_data_image_and_every_icon_it_names_exists():
    text = BOOTSTRAP_CSS.read_text(encoding="utf-8")
    urls = re.findall(r'url\("([^"]+)"\)', text)
    missing = [u for u in urls if not (BOOTSTRAP_CSS.parent / u).resolve().is_file()]
    assert ("data:" in text, len(urls), missing) == (False, 23, [])


def test_collectstatic_with_hashed_names_rewrites_bootstrap_icon_urls(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }
    call_command("collectstatic", interactive=False, verbosity=0)
    hashed = next((tmp_path / "vendor/bootstrap/css").glob("bootstrap.min.*.css"))
    names = re.findall(r'url\("\.\./icons/([^"]+)"\)', hashed.read_text(encoding="utf-8"))
    assert (len(names), all((tmp_path / "vendor/bootstrap/icons" / n).is_file() for n in names)) == (23, True)
    assert all(re.fullmatch(r"[0-9a-f]{12}\.[0-9a-f]{12}\.svg", n) for n in names), names
