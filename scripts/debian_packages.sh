#!/usr/bin/env bash
# Install the named Debian packages when their commands are missing (as root, with apt-get); otherwise
# say how. Used by `make bench` and scripts/scale_drill.sh (wrk, haproxy).
set -euo pipefail
missing=()
for package in "$@"; do
  command -v "$package" >/dev/null || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "Installing ${missing[*]} (Debian packages) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
else
  echo "Needs ${missing[*]}: apt-get install ${missing[*]}" >&2
  exit 1
fi
