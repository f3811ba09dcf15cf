"""Move every `data:` image URL out of the vendored bootstrap.min.css into an SVG file beside it.

The Content Security Policy stays at img-src 'self', which refuses `data:` images. app.css overriding
Bootstrap's icons was not enough: Chromium could still fetch Bootstrap's own data: URL for a checked radio
before the override applied (a CSP console error, seen in the SMART frame test). With no data: URL left in
the stylesheet, nothing can be refused. Run by scripts/vendor_assets.sh after copying Bootstrap; idempotent.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[1]
CSS = ROOT / "static/vendor/bootstrap/css/bootstrap.min.css"
ICONS = ROOT / "static/vendor/bootstrap/icons"
DATA_URL = re.compile(r'url\("data:image/svg\+xml,([^"]*)"\)')


def main() -> int:
    text = CSS.read_text(encoding="utf-8")
    ICONS.mkdir(exist_ok=True)
    written: set[str] = set()

    def as_file(match: re.Match[str]) -> str:
        svg = unquote(match.group(1))
        name = f"{hashlib.sha256(svg.encode()).hexdigest()[:12]}.svg"
        (ICONS / name).write_text(svg + "\n", encoding="utf-8")
        written.add(name)
        return f'url("../icons/{name}")'

    rewritten = DATA_URL.sub(as_file, text)
    if "data:image" in rewritten:
        print("bootstrap.min.css still holds a data: image URL this script cannot read", file=sys.stderr)
        return 1
    CSS.write_text(rewritten, encoding="utf-8")
    print(f"bootstrap.min.css: {len(written)} icons as files in {ICONS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
