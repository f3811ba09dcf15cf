#!/usr/bin/env bash
# Copy front-end assets from the npm registry (versions pinned in package.json / package-lock.json)
# into the repository, each with its licence. The vendored files are committed, so `make run`
# needs no npm; rerun this after changing a version.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --silent --no-audit --no-fund

bootstrap=static/vendor/bootstrap
rm -rf "$bootstrap" && mkdir -p "$bootstrap/css" "$bootstrap/js"
cp node_modules/bootstrap/dist/css/bootstrap.min.css node_modules/bootstrap/dist/css/bootstrap.min.css.map "$bootstrap/css/"
cp node_modules/bootstrap/dist/js/bootstrap.bundle.min.js node_modules/bootstrap/dist/js/bootstrap.bundle.min.js.map "$bootstrap/js/"
cp node_modules/bootstrap/LICENSE "$bootstrap/LICENSE"
# CSP img-src 'self': Bootstrap's data: icons become files beside the stylesheet.
python3 scripts/bootstrap_icons_as_files.py
echo "bootstrap $(node -p "require('./node_modules/bootstrap/package.json').version") from the npm registry" > "$bootstrap/VERSION"

axe=tests/e2e/vendor/axe-core
rm -rf "$axe" && mkdir -p "$axe"
cp node_modules/axe-core/axe.min.js node_modules/axe-core/LICENSE "$axe/"
echo "axe-core $(node -p "require('./node_modules/axe-core/package.json').version") from the npm registry" > "$axe/VERSION"
echo "Vendored: $(cat "$bootstrap/VERSION"); $(cat "$axe/VERSION")"
