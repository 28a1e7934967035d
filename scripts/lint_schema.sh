#!/usr/bin/env bash
# graphql-schema-linter over the committed schema.graphql: the description rules and the
# Relay rules (issue 20; rules and known exceptions in scripts/schema-lint/
# graphql-schema-linter.config.js). The linter is pinned by scripts/schema-lint/
# package-lock.json and installed into its git-ignored node_modules/ (npm ci, again only
# when the lock file changes). `make lint-schema`; CI runs it in job C.
#   scripts/lint_schema.sh [SCHEMA]   (default: schema.graphql)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/scripts/schema-lint"
schema="$(realpath "${1:-$root/schema.graphql}")"

command -v npm >/dev/null 2>&1 || { echo "lint_schema: npm not found (Node 20 is needed)" >&2; exit 2; }
if [ ! "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
  echo "== graphql-schema-linter (npm ci in scripts/schema-lint)"
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
echo "== graphql-schema-linter: ${schema#"$root"/}"
# run from its directory: the linter finds graphql-schema-linter.config.js there
cd "$dir" && node_modules/.bin/graphql-schema-linter --format text "$schema"
