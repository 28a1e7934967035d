"""`make frontend-check` (CI): what front-end teams rely on, against a real server.

1. the graphql-http audit (GraphQL over HTTP) against `xinfang serve`: no error, no
   warning (scripts/graphql-http-audit/);
2. the front-end starter (examples/frontend/): `npm ci`, regenerate the typed
   documents and persisted-query hashes from schema.graphql (`npm run codegen`) and
   type-check them (`tsc --noEmit --strict`), so the schema and the starter never drift;
3. its hashes loaded into the app (`load-persisted-queries.sh`, i.e. `xinfang
   persisted-queries load`) and each query of the starter run by hash alone.

Nothing is cached between runs: `npm ci` installs from the lock files each time (npm's
own download cache aside). The server starts while npm installs. Each step is timed;
the table at the end is what docs/performance.md quotes. Exit 1 on any failure.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from graphql import OperationDefinitionNode, OperationType, parse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.live_server import Server, serving  # noqa: E402

AUDIT = ROOT / "scripts" / "graphql-http-audit"
STARTER = ROOT / "examples" / "frontend"
NPM_CI = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
# the starter's queries run by hash, with the variables a screen would send
QUERY_VARIABLES = {
    "CaseList": {"filter": {"status": "REGISTERED"}, "first": 5},
    "WarningBoard": {},
    "Inbox": {"unreadOnly": False, "first": 5},
    "Roster": {"from": "2026-01-01", "to": "2026-01-31"},
}

timings: list[tuple[str, float]] = []


@contextmanager
def step(name: str) -> Iterator[None]:
    print(f"== {name}", flush=True)
    began = time.monotonic()
    try:
        yield
    finally:
        timings.append((name, time.monotonic() - began))


def check(command: list[str], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)} in {cwd}")


def run_persisted_queries(server: Server) -> None:
    """Load the starter's manifest into the server's database; run each query by hash."""
    manifest = json.loads((STARTER / "src" / "gql" / "persisted-documents.json").read_text())
    loaded = subprocess.run(
        [str(STARTER / "load-persisted-queries.sh")], cwd=ROOT, env=server.env, text=True
    )
    if loaded.returncode != 0:
        raise SystemExit("loading the persisted queries failed")
    by_name = {}  # operation name → hash, for the queries of the manifest
    for key, body in manifest.items():
        for definition in parse(body).definitions:
            if (
                isinstance(definition, OperationDefinitionNode)
                and definition.name
                and definition.operation is OperationType.QUERY
            ):
                by_name[definition.name.value] = key
    assert set(QUERY_VARIABLES) <= set(by_name), by_name
    for name, variables in QUERY_VARIABLES.items():
        digest = by_name[name].removeprefix("sha256:")
        resp = httpx.post(
            f"{server.base_url}/graphql",
            json={
                "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}},
                "variables": variables,
            },
            headers={
                "Authorization": f"Bearer {server.token}",
                "Accept": "application/graphql-response+json, application/json;q=0.9",
            },
            timeout=30,
        )
        body = resp.json()
        if resp.status_code != 200 or body.get("errors") or not body.get("data"):
            raise SystemExit(f"persisted {name} by hash: {resp.status_code} {body}")
        print(f"   {name} by hash: 200, {', '.join(body['data'])}", flush=True)


def main() -> int:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            print(f"{tool} is needed (Node 20): the starter and the audit are npm packages")
            return 1
    with tempfile.TemporaryDirectory(prefix="xf-frontend-") as folder:
        began = time.monotonic()
        installs = {
            path: subprocess.Popen(NPM_CI, cwd=path) for path in (AUDIT, STARTER)
        }  # while the server starts
        with serving(Path(folder)) as server:
            timings.append(("server up (migrate, seed-demo, serve), npm ci x2 meanwhile", 0.0))
            for path, proc in installs.items():
                if proc.wait() != 0:
                    raise SystemExit(f"npm ci failed in {path}")
            timings[-1] = (timings[-1][0], time.monotonic() - began)
            with step("graphql-http audit"):
                check(["node", "audit.mjs", f"{server.base_url}/graphql"], AUDIT)
            with step("starter: codegen"):
                check(["npm", "run", "--silent", "codegen"], STARTER)
            with step("starter: tsc --noEmit --strict"):
                check(["npm", "run", "--silent", "typecheck"], STARTER)
            with step("starter: load persisted queries, run them by hash"):
                run_persisted_queries(server)
    total = sum(seconds for _, seconds in timings)
    print("\n| step | seconds |\n|---|---|")
    for name, seconds in timings:
        print(f"| {name} | {seconds:.1f} |")
    print(f"| total | {total:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
