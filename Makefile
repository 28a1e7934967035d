# Two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
HOST ?= 127.0.0.1
PORT ?= 8000
AUDIT_SERVICE ?= pypi
GRAPHIQL := backend/web/graphiql
NPM_CI := npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

.PHONY: run test test-dates test-dates-ci test-citus lint format bench bench-smoke docs uv sync clean audit graphiql frontend-check lint-schema

uv:
	@command -v uv >/dev/null 2>&1 || test -x "$(UV)" || python3 -m pip install --user --quiet uv || python3 -m pip install --quiet uv

sync: uv
	@$(UV) sync --frozen --quiet

# GraphiQL's browser assets, pinned by the lock file, into a git-ignored node_modules/
# (docs/decisions.md); again only when the lock file changes. Without npm the API runs
# and the page says how to get them.
graphiql:
	@if [ ! "$(GRAPHIQL)/node_modules/.package-lock.json" -nt "$(GRAPHIQL)/package-lock.json" ]; then \
	  if command -v npm >/dev/null 2>&1; then \
	    echo "== GraphiQL assets (npm ci in $(GRAPHIQL))"; (cd $(GRAPHIQL) && $(NPM_CI)) \
	      || echo "npm ci failed: GraphiQL's assets not installed (make graphiql)" >&2; \
	  else echo "npm not found: GraphiQL's assets not installed (make graphiql)" >&2; fi; \
	fi

# `make run` serves the embedded SQLite DB with in-process jobs whatever XF_DATABASE_URL,
# XF_REDIS_URL or XF_LIVE_LISTEN_URL the shell exports (after the README's PostgreSQL block
# it would otherwise serve PostgreSQL silently); another database is an explicit opt-in:
# `make run RUN_DATABASE_URL=postgresql+asyncpg://… [RUN_REDIS_URL=redis://…]`.
RUN_DATABASE_URL ?=
RUN_REDIS_URL ?=
RUN_ENV = env -u XF_DATABASE_URL -u XF_REDIS_URL -u XF_LIVE_LISTEN_URL \
  $(if $(RUN_DATABASE_URL),XF_DATABASE_URL='$(RUN_DATABASE_URL)') \
  $(if $(RUN_REDIS_URL),XF_REDIS_URL='$(RUN_REDIS_URL)')

run: sync graphiql ## migrate the embedded SQLite DB, load the demo, serve GraphiQL + in-process jobs
	@$(RUN_ENV) $(UV) run xinfang serve --host $(HOST) --port $(PORT) --check-port
	$(RUN_ENV) $(UV) run xinfang migrate
	$(RUN_ENV) $(UV) run xinfang seed-demo
	$(RUN_ENV) $(UV) run xinfang serve --host $(HOST) --port $(PORT)

test: sync graphiql ## lint, then the suite on PostgreSQL (when reachable) and on SQLite
	$(UV) run ruff check backend tests migrations/env.py
	$(UV) run ruff format --check backend tests migrations/env.py
	$(UV) run python scripts/run_tests.py

test-dates: sync ## the whole suite under libfaketime at five awkward dates, PostgreSQL and SQLite
	$(UV) run python scripts/test_dates.py

test-dates-ci: sync ## the date-sensitive tests under one shifted date (Spring Festival week)
	$(UV) run python scripts/test_dates.py --subset --dates 2027-02-10T10:00

test-citus: sync ## the suite on a Citus coordinator + 2 workers built from ../shared/vendor/citus
	PATH="$(dir $(UV)):$$PATH" scripts/citus_cluster.sh test $(PYTEST_ARGS)

lint: sync
	$(UV) run ruff check backend tests migrations/env.py
	$(UV) run ruff format --check backend tests migrations/env.py
	@command -v duplicates >/dev/null 2>&1 && duplicates --repo backend || true

format: sync
	$(UV) run ruff format backend tests migrations/env.py
	$(UV) run ruff check --fix backend tests migrations/env.py

audit: sync ## known vulnerabilities in the locked deps (needs PyPI/OSV: never part of `make test`)
	$(UV) export --frozen --format requirements.txt --all-groups --no-emit-project --quiet \
	  | $(UV) run pip-audit --requirement /dev/stdin --disable-pip --strict \
	      --vulnerability-service $(AUDIT_SERVICE) --progress-spinner off

docs: sync ## regenerate the committed schema and authz matrix
	$(UV) run xinfang export-schema > schema.graphql
	$(UV) run xinfang authz-doc > docs/authz.md
	$(UV) run python -c "from backend.cases.lifecycle import render_markdown as r; print(r(), end='')" > docs/lifecycle.md

lint-schema: ## graphql-schema-linter over schema.graphql: descriptions and Relay rules (CI)
	scripts/lint_schema.sh

frontend-check: sync ## graphql-http audit, the front-end starter's codegen + tsc (CI)
	$(UV) run python scripts/frontend_check.py

bench: sync ## benchmarks (PostgreSQL): each prints a table and writes tests/bench/results/
	$(UV) run python -m tests.bench

bench-smoke: sync
	$(UV) run python -m tests.bench --smoke

clean:
	rm -rf var .pytest_cache .ruff_cache
