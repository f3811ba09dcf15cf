#!/usr/bin/env bash
# The scale-out drill (docs/operations-scaling.md): two gunicorn instances behind HAProxy (round robin)
# on one PostgreSQL, on 127.0.0.1 only. Run by hand, not in CI:
#   DATABASE_URL=postgres://anakinra@127.0.0.1:5432/anakinra scripts/scale_drill.sh [--rounds 3] [--seconds 8]
# It uses its own database (<name>_drill, dropped and made again on each run). BENCH_PORTS=8600-8699 keeps
# every port it opens in that range. Exits non-zero when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v haproxy >/dev/null || missing+=(haproxy)
command -v wrk >/dev/null || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "Installing ${missing[*]} (Debian packages) ..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "The drill needs ${missing[*]}: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

make --no-print-directory venv
export DATABASE_URL="${DATABASE_URL:-postgres://anakinra@127.0.0.1:5432/anakinra}"
exec .venv/bin/python -m bench.scale_drill "$@"
