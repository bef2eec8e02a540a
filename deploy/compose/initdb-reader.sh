#!/usr/bin/env bash
# Run once by the postgres container after initdb.sql: the look-up workers' read-only account,
# its password from the operator's secret file (compose.yaml, secret crm-password). No password
# ships with the project.
set -euo pipefail
file=/run/secrets/crm-password
[ -s "$file" ] || { echo "initdb-reader: $file is missing or empty (deploy/secrets/crm-password)" >&2; exit 1; }
psql -v ON_ERROR_STOP=1 -v pw="$(cat "$file")" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE cti_reader LOGIN PASSWORD :'pw';
GRANT SELECT ON contacts TO cti_reader;
SQL
