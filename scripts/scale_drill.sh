#!/usr/bin/env bash
# The scale-out drill (docs/operations-scaling.md): two gunicorn instances behind HAProxy (round robin)
# on one PostgreSQL, on 127.0.0.1 only. Run by hand, not in CI:
#   DATABASE_URL=postgres://anakinra@127.0.0.1:5432/anakinra scripts/scale_drill.sh [--rounds 3] [--seconds 8]
# It uses its own database (<name>_drill, dropped and made again on each run). BENCH_PORTS=8600-8699 keeps
# every port it opens in that range. Exits non-zero when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/debian_packages.sh haproxy wrk
make --no-print-directory venv
export DATABASE_URL="${DATABASE_URL:-postgres://anakinra@127.0.0.1:5432/anakinra}"
exec .venv/bin/python -m bench.scale_drill "$@"
