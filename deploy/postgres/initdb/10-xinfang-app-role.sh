#!/bin/bash
# Runs once, when the compose postgres volume is first initialised: creates the serving
# role as a LOGIN role. The migrations (backend/core/rls.py::ensure_app_role) find it
# already present, keep it, and grant it DML; it stays NOSUPERUSER NOBYPASSRLS and owns
# nothing. The name must equal XF_DB_APP_ROLE (default xinfang_app).
set -euo pipefail
app_password="$(cat /run/secrets/pg_app_password)"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     --set=app_password="$app_password" <<'SQL'
CREATE ROLE xinfang_app LOGIN PASSWORD :'app_password'
  NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
SQL
