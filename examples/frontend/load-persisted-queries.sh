#!/usr/bin/env bash
# Load the starter's persisted-query hashes into the app, so that production can run
# with a city's allow-list on (`xinfang persisted-queries mode on --tenant T`).
#   ./load-persisted-queries.sh [--tenant SLUG] [--replace]
# Reads src/gql/persisted-documents.json ({"sha256:<hash>": "<document>"}, written by
# `npm run codegen`), which `xinfang persisted-queries load` takes as it is; the
# database is the one XF_DATABASE_URL names (the embedded SQLite by default).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
manifest="$here/src/gql/persisted-documents.json"
if [ ! -f "$manifest" ]; then
  (cd "$here" && npm run --silent codegen)
fi
cd "$here/../.."
if command -v uv >/dev/null 2>&1; then
  exec uv run --no-sync xinfang persisted-queries load "$manifest" "$@"
fi
exec xinfang persisted-queries load "$manifest" "$@"
