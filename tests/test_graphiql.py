"""GraphiQL served by the app itself (no CDN), opening with the README's query.

The page and its four assets come from ``backend/web/graphiql`` (installed by ``make
graphiql``); a real browser runs it in ``tests/test_graphiql_browser.py``.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from backend.app import create_app
from backend.core.settings import Settings
from backend.web import graphiql
from tests.live_server import ROOT

HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
async def dev_http():
    """The app as `make run` serves it (XF_ENV=dev: GraphiQL on)."""
    app = create_app(Settings(env="dev"), run_jobs=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://dev"
    ) as client:
        yield client
    await app.state.db.dispose()


def test_the_assets_are_installed():
    assert graphiql.installed(), "GraphiQL's assets are missing: run `make graphiql`"


async def test_the_page_loads_everything_from_the_app_itself(dev_http):
    page = await dev_http.get("/graphql", headers=HTML)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert not re.search(r"https?://", page.text), "the page must not reach out to a CDN"
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(sources) == sorted(f"/graphiql/{name}" for name in graphiql.ASSETS)
    for source in sources:
        asset = await dev_http.get(source)
        assert asset.status_code == 200, source
        kind = "text/css" if source.endswith(".css") else "javascript"
        assert kind in asset.headers["content-type"], source
        assert len(asset.content) > 1000, source


async def test_the_page_opens_with_the_readme_query_and_a_header_template(dev_http):
    page = (await dev_http.get("/graphql", headers=HTML)).text
    settings = re.search(r'<script id="settings" type="application/json">(.*?)</script>', page)
    assert settings is not None
    opened = json.loads(settings.group(1))
    assert opened["headers"] == '{"Authorization": "Bearer <token>"}'
    assert opened["query"] == graphiql.README_QUERY
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "```graphql\n" + graphiql.README_QUERY + "```" in readme, "README and page differ"


async def test_only_the_listed_assets_are_served(dev_http):
    for name in ("package.json", "react.development.js", "page.html", "..%2Fpackage.json"):
        resp = await dev_http.get(f"/graphiql/{name}")
        assert resp.status_code == 404, name


async def test_licences_of_the_served_packages_are_served_with_them(dev_http):
    text = (await dev_http.get("/graphiql/LICENSES.txt")).text
    for package in ("graphiql@3.8.3", "react@18.3.1", "react-dom@18.3.1", "@graphiql/react@"):
        assert package in text, package
    assert "Permission is hereby granted, free of charge" in text  # the MIT text itself


async def test_without_assets_the_page_says_how_to_install_them(dev_http, monkeypatch, tmp_path):
    monkeypatch.setattr(graphiql, "NODE_MODULES", tmp_path)
    page = await dev_http.get("/graphql", headers=HTML)
    assert page.status_code == 503
    assert "make graphiql" in page.text


async def test_production_serves_no_graphiql():
    app = create_app(
        Settings(env="prod", jwt_secret="p" * 40, metrics_token="m" * 40), run_jobs=False
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://prod"
    ) as client:
        assert (await client.get("/graphql", headers=HTML)).status_code == 404
        assert (await client.get("/graphiql/graphiql.min.js")).status_code == 404
    await app.state.db.dispose()
