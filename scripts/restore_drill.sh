#!/usr/bin/env bash
# Restore drill, run by hand as root (not in .ci/run): on a throw-away PostgreSQL cluster (pg_createcluster,
# port DRILL_PG_PORT=5441) the app stores DRILL_ASSESSMENTS (300) assessments; the database is backed up with
# pg_dump as the app's role, restored with pg_restore as the app's role into a new database, and the app,
# pointed at the restored database, must serve every stored assessment (its JSON and its FHIR bundle) byte for
# byte as before, with the table rows identical too. Drops the cluster when it ends.
#   sudo scripts/restore_drill.sh          (from the repository, with .venv built: make venv)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/drill_lib.sh
trap drill_cleanup EXIT
RESTORED="${DATABASE}_restored"
COUNT="${DRILL_ASSESSMENTS:-300}"

rows() {
  # Every stored assessment, all columns, as text in id order (jsonb as the database prints it).
  local columns="id, created_at, created_by_id, source, institution_requested, inputs, recommendations"
  psql_as -U "$ROLE" -d "$1" \
    -c "\\copy (SELECT $columns, protocol_version_ids FROM assessments_assessment ORDER BY id) TO STDOUT"
}
seconds() { awk "BEGIN { printf \"%.1f\", $2 - $1 }"; }

cluster_create
app_env
app_prepare
app_start
say "Storing $COUNT assessments through the API"
"$PY" scripts/drill_answers.py make --url "http://127.0.0.1:$APP_PORT" --key-file "$WORK/api_key" --count "$COUNT"
"$PY" scripts/drill_answers.py dump --url "http://127.0.0.1:$APP_PORT" --key-file "$WORK/api_key" \
  --database-url "$DATABASE_URL" --out "$WORK/served-original"
rows "$DATABASE" > "$WORK/rows-original"

say "Backup: pg_dump as the app's role ($ROLE)"
started=$(date +%s.%N)
pg_dump -h 127.0.0.1 -p "$PG_PORT" -U "$ROLE" --format=custom --file "$WORK/anakinra.dump" "$DATABASE"
dumped=$(date +%s.%N)
say "Restore: a new database owned by $ROLE, pg_restore as $ROLE"
psql_as -U postgres -d postgres -c "CREATE DATABASE $RESTORED OWNER $ROLE"
pg_restore -h 127.0.0.1 -p "$PG_PORT" -U "$ROLE" --no-owner --no-privileges --exit-on-error \
  --dbname "$RESTORED" "$WORK/anakinra.dump"
restored=$(date +%s.%N)

app_stop
app_env "$(database_url "$RESTORED")"
app_start
"$PY" scripts/drill_answers.py dump --url "http://127.0.0.1:$APP_PORT" --key-file "$WORK/api_key" \
  --database-url "$DATABASE_URL" --out "$WORK/served-restored"
rows "$RESTORED" > "$WORK/rows-restored"

echo
echo "Assessments stored: $(wc -l < "$WORK/rows-original") (original), $(wc -l < "$WORK/rows-restored") (restored)"
echo "Backup: $(stat -c %s "$WORK/anakinra.dump") bytes in $(seconds "$started" "$dumped") s;" \
  "restore in $(seconds "$dumped" "$restored") s"
echo "Served answers: $(sha256sum < "$WORK/served-original" | cut -c1-16) (original)," \
  "$(sha256sum < "$WORK/served-restored" | cut -c1-16) (restored)"
if cmp -s "$WORK/served-original" "$WORK/served-restored" && cmp -s "$WORK/rows-original" "$WORK/rows-restored" \
  && [ "$(wc -l < "$WORK/rows-original")" -ge "$COUNT" ]; then
  echo "RESTORE DRILL PASSED: every stored assessment is served byte for byte the same from the restored database."
else
  echo "RESTORE DRILL FAILED: the restored database serves different answers (or rows)."
  exit 1
fi
