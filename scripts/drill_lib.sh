# Shared by scripts/fault_drill.sh and scripts/restore_drill.sh (sourced, not run): a throw-away PostgreSQL
# cluster made with pg_createcluster (as root, like CI), the app's role and database in it, and the app under
# gunicorn. Never touches any other cluster. Settings (environment):
#   DRILL_PG_VERSION (15), DRILL_PG_PORT (5441), DRILL_APP_PORT (8150), DRILL_CLUSTER (anakinra_drill);
#   the app's workers and threads as in production: GUNICORN_WORKERS (2), GUNICORN_THREADS (8)

PG_VERSION="${DRILL_PG_VERSION:-15}"
PG_PORT="${DRILL_PG_PORT:-5441}"
APP_PORT="${DRILL_APP_PORT:-8150}"
CLUSTER="${DRILL_CLUSTER:-anakinra_drill}"
ROLE=anakinra
DATABASE=anakinra
PY="${PY:-.venv/bin/python}"
WORK="$(mktemp -d)"
SERVER_PID=""

say() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }
psql_as() { psql -h 127.0.0.1 -p "$PG_PORT" -X -q -v ON_ERROR_STOP=1 "$@"; }
database_url() { echo "postgres://$ROLE@127.0.0.1:$PG_PORT/${1:-$DATABASE}"; }

cluster_create() {
  [ "$(id -u)" -eq 0 ] || { echo "Run as root: pg_createcluster and pg_ctlcluster need it."; exit 1; }
  if pg_lsclusters --no-header | awk '{print $1, $2}' | grep -qx "$PG_VERSION $CLUSTER"; then
    echo "A cluster $PG_VERSION/$CLUSTER already exists (a drill that did not finish?):"
    echo "  pg_dropcluster --stop $PG_VERSION $CLUSTER"
    exit 1
  fi
  say "Creating the throw-away cluster $PG_VERSION/$CLUSTER on port $PG_PORT"
  pg_createcluster "$PG_VERSION" "$CLUSTER" -p "$PG_PORT" --start -- --auth-local=trust --auth-host=trust >/dev/null
  psql_as -U postgres -d postgres -c "CREATE ROLE $ROLE LOGIN" -c "CREATE DATABASE $DATABASE OWNER $ROLE"
  # The statement timeout of the app's role (docs/operations-resilience.md): a role setting, so it also holds
  # behind PgBouncer in transaction mode, where a libpq startup option would not.
  psql_as -U postgres -d postgres -c "ALTER ROLE $ROLE SET statement_timeout = '5s'"
}

cluster_drop() {
  if pg_lsclusters --no-header 2>/dev/null | awk '{print $1, $2}' | grep -qx "$PG_VERSION $CLUSTER"; then
    say "Dropping the throw-away cluster $PG_VERSION/$CLUSTER"
    pg_dropcluster --stop "$PG_VERSION" "$CLUSTER"
  fi
}

app_env() {
  export DATABASE_URL="${1:-$(database_url)}" SECRET_KEY="drill-only-$(date +%s)-0123456789abcdefghijklmnopqrstuvwxyz"
  export DEBUG=false SECURE_SSL_REDIRECT=false STATIC_MANIFEST=false ALLOWED_HOSTS=127.0.0.1,localhost
  export LOG_LEVEL=INFO DATABASE_CONN_MAX_AGE=60 DATABASE_CONNECT_TIMEOUT=2 PYTHONUNBUFFERED=1
}

app_prepare() {
  say "Migrating and loading the clinical data"
  "$PY" manage.py migrate --noinput -v 0
  "$PY" manage.py load_clinical_data >/dev/null
  "$PY" manage.py shell -c "
from django.contrib.auth import get_user_model
from accounts.services import api_token_create
user, _ = get_user_model().objects.get_or_create(username='drill')
print(api_token_create(user=user, name='drill')[1])" | tail -n 1 > "$WORK/api_key"
}

app_start() {
  say "Starting gunicorn as in the container (deploy/gunicorn.conf.py) on 127.0.0.1:$APP_PORT (log: $WORK/app.log)"
  "$PY" -m gunicorn -c deploy/gunicorn.conf.py --bind "127.0.0.1:$APP_PORT" --access-logfile /dev/null \
    anakinra_cds.wsgi:application >"$WORK/app.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$APP_PORT/healthz" 2>/dev/null && return 0
    sleep 0.1
  done
  cat "$WORK/app.log"
  exit 1
}

app_stop() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}

drill_cleanup() {
  app_stop
  cluster_drop
  rm -rf "$WORK"
}
