#!/usr/bin/env bash
# Fault drill, run by hand as root (not in .ci/run): the app under gunicorn on a throw-away PostgreSQL cluster
# (pg_createcluster, port DRILL_PG_PORT=5441), loaded with POST /api/v1/recommendations while the database is
# stopped for DRILL_DOWN_SECONDS (15) and started again. Prints requests answered per status, rows stored vs
# 2xx answers, seconds to recovery, and what the app logged; fails when a 2xx has no row, when any answer is
# a 5xx other than 503 or not JSON, or when the app never recovers. Drops the cluster when it ends.
#   sudo scripts/fault_drill.sh            (from the repository, with .venv built: make venv)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/drill_lib.sh
trap drill_cleanup EXIT

cluster_create
app_env
app_prepare
app_start
say "Load for ${DRILL_SECONDS:-45} s; the database stops at ${DRILL_STOP_AT:-10} s for ${DRILL_DOWN_SECONDS:-15} s"
"$PY" scripts/drill_load.py --url "http://127.0.0.1:$APP_PORT" --database-url "$DATABASE_URL" \
  --key-file "$WORK/api_key" --app-log "$WORK/app.log" --cluster "$PG_VERSION $CLUSTER" \
  --seconds "${DRILL_SECONDS:-45}" --stop-at "${DRILL_STOP_AT:-10}" --down-for "${DRILL_DOWN_SECONDS:-15}" \
  --concurrency "${DRILL_CONCURRENCY:-4}" && status=0 || status=$?
say "Sample of the app's log lines for the outage:"
grep -m 3 "Service Unavailable (database)" "$WORK/app.log" || true
exit $status
