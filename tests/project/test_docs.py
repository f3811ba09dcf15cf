"""The front page and the repository's own documents: every docs page is one link from the README, the two
commands stay on it, every relative link in the top-level documents resolves inside the repository, and nothing
points outside it. (Links inside docs/ are checked by `make docs`: `mkdocs build --strict`.)"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
from markdown.extensions.toc import slugify

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
TOP_LEVEL_DOCUMENTS = ("README.md", "CHANGELOG.md", "CONTRIBUTING.md")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")
# Where the project's brief and seeds sat beside the repository during its building; nothing may point there.
OUTSIDE = re.compile(r"\.\./" + "shared" + r"/|/work/" + "shared")
SKIPPED_FOLDERS = {".git", ".venv", "node_modules", "vendor", "site", "staticfiles", "test-artifacts", ".local"}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".txt", ".html", ".css", ".js", ".sh", ".cfg", ".example", ""}


def _markdown_outside_code(path: Path) -> list[str]:
    lines, in_code = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line.strip()):
            in_code = not in_code
        elif not in_code:
            lines.append(re.sub(r"`[^`]*`", "", line))  # inline code is not a link
    return lines


def _relative_links(path: Path) -> list[str]:
    return [
        target
        for line in _markdown_outside_code(path)
        for target in LINK.findall(line)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto:
    ]


def _anchors(path: Path) -> set[str]:
    return {
        slugify(re.sub(r"[*`]", "", line.lstrip("#").strip()), "-")
        for line in _markdown_outside_code(path)
        if line.startswith("#")
    }


def _nav_pages(entries) -> list[str]:
    pages = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages.extend(_nav_pages(value) if isinstance(value, list) else [value])
    return pages


@pytest.mark.parametrize("name", TOP_LEVEL_DOCUMENTS)
def test_docs_top_level_links_resolve_inside_the_repository(name):
    document = ROOT / name
    broken = []
    for target in _relative_links(document):
        file_part, _, anchor = target.partition("#")
        resolved = (document.parent / file_part).resolve() if file_part else document
        found = resolved.is_relative_to(ROOT) and resolved.exists()
        if not found or (anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved)):
            broken.append(target)
    assert broken == []


def test_docs_front_page_links_every_docs_section():
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    # Each decision record is one link from the decisions index, which the front page links.
    sections = {page for page in _nav_pages(nav) if not re.match(r"decisions/\d{4}-", page)}
    linked = {target.partition("#")[0].removeprefix("docs/") for target in _relative_links(ROOT / "README.md")}
    assert sections - linked == set()


def test_docs_front_page_keeps_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if not line.startswith(" ")]
    assert commands == ["make run", "make test"]


def test_docs_nothing_in_the_repository_points_outside_it():
    pointing_outside = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED_FOLDERS]
        for path in (Path(folder) / name for name in files):
            if path.suffix not in TEXT_SUFFIXES:
                continue
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            relative = path.relative_to(ROOT)
            pointing_outside += [f"{relative}:{n}" for n, line in enumerate(lines, 1) if OUTSIDE.search(line)]
    assert pointing_outside == []
