"""GraphiQL served from the app itself: no CDN, so it works on an intranet without internet.

The browser assets (React, ReactDOM, GraphiQL and its CSS) are the npm packages pinned
in ``package.json``/``package-lock.json`` beside this file, installed into
``node_modules/`` here (git-ignored) by ``make graphiql`` — part of ``make run`` and
``make test`` — with ``npm ci``; docs/decisions.md says why they are installed rather
than committed. Only the files in :data:`ASSETS` are served (``/graphiql/<name>``),
unmodified and with their licence headers; ``/graphiql/LICENSES.txt`` gathers the
licence of every installed package (GraphiQL's bundle includes its dependencies).

The page (``page.html``) opens with the README's query and a header template; a
placeholder token is not sent, so the schema loads (introspection needs no token) and
a query without a real token is answered ``UNAUTHENTICATED``. Without the assets the
page says how to install them instead of showing "Loading..." forever.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from backend.core.errors import NotFound

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"

# URL name → file inside node_modules (the production builds, as published)
ASSETS = {
    "react.production.min.js": "react/umd/react.production.min.js",
    "react-dom.production.min.js": "react-dom/umd/react-dom.production.min.js",
    "graphiql.min.js": "graphiql/graphiql.min.js",
    "graphiql.min.css": "graphiql/graphiql.min.css",
}

# The README's officials' query (O), the page's first query; tests/test_graphiql.py
# keeps the two equal.
README_QUERY = """\
# O — officials: what they may read, colours, due dates with the rule behind each, inbox
{ me { username roles { role orgUnit { path } } }
  warningBoard { red yellow blue }
  cases(first: 10) { totalCount edges { node { number status type warningColor dueAt
    holderUnit { path } leader { username } petitioner { name phone }
    deadlines { step dueAt rule } } } }
  notifications(first: 5) { kind subject sentAt } }
"""
HEADERS_TEMPLATE = '{"Authorization": "Bearer <token>"}'

MISSING = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>GraphiQL — assets not installed</title></head><body>
<h1>GraphiQL's assets are not installed</h1>
<p>Run <code>make graphiql</code> (or <code>npm ci</code> in <code>backend/web/graphiql</code>)
and reload. The API itself works: <code>POST /graphql</code>.</p></body></html>
"""


def installed() -> bool:
    return all((NODE_MODULES / path).is_file() for path in ASSETS.values())


@cache
def _page() -> str:
    template = (HERE / "page.html").read_text(encoding="utf-8")
    settings = {"query": README_QUERY, "headers": HEADERS_TEMPLATE}
    # a JSON object inside <script>: "<" escaped so no string can close the element
    return template.replace("__SETTINGS__", json.dumps(settings).replace("<", "\\u003c"))


def page() -> HTMLResponse:
    """The GraphiQL page, or how to install its assets."""
    if not installed():
        return HTMLResponse(MISSING, status_code=503)
    return HTMLResponse(_page(), headers={"Cache-Control": "no-cache"})


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name == "LICENSES.txt":
        return PlainTextResponse(licences())
    path = ASSETS.get(name)
    if path is None or not (NODE_MODULES / path).is_file():
        raise NotFound(f"no GraphiQL asset {name!r}")
    return FileResponse(NODE_MODULES / path, headers={"Cache-Control": "no-cache"})


@cache
def licences() -> str:
    """Every installed package's name, version, licence and licence text."""
    parts = []
    for manifest in sorted(NODE_MODULES.glob("**/package.json")):
        folder = manifest.parent
        if folder.parent.name != "node_modules" and folder.parent.parent.name != "node_modules":
            continue  # a package's own sub-folder, not a package
        meta = json.loads(manifest.read_text(encoding="utf-8"))
        if "name" not in meta or "version" not in meta:
            continue
        texts = [
            p.read_text(encoding="utf-8", errors="replace")
            for p in sorted(folder.glob("LICEN[CS]E*"))
            if p.is_file()
        ]
        head = f"{meta['name']}@{meta['version']} — {meta.get('license', 'see text')}"
        parts.append("\n".join([head, "=" * len(head), *texts]))
    return "\n\n".join(parts) + "\n"


def graphiql_routes() -> list[Route]:
    """``/graphiql/<asset>`` (the page itself is ``GET /graphql`` for a browser, in dev)."""
    return [Route("/graphiql/{name}", asset, methods=["GET", "HEAD"])]
