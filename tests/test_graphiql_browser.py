"""GraphiQL in a real browser, offline: headless Chromium opens ``/graphql`` of a running
``xinfang serve``, puts a demo token in place of the header template's placeholder,
runs the README query it opened with and sees the data.

Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium
chromium-driver``; ``.ci/run`` installs them), driven by selenium; nothing is
downloaded at test time. Every host name but the server's resolves to nothing, so the
page cannot lean on a CDN even on a machine with internet access.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.live_server import Server

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="needs Debian's chromium and chromium-driver "
        "(apt-get install chromium chromium-driver; .ci/run installs them)",
    ),
]

LOAD_TIMEOUT = 60  # a busy 2-core machine: Chromium start plus GraphiQL's 3.5 MB bundle

# every CodeMirror editor of the page with its text, by its container's aria-label/class
EDITORS = """
return Array.from(document.querySelectorAll('.CodeMirror')).map((el) => ({
  label: (el.closest('[aria-label]') || {}).ariaLabel || el.parentElement.className,
  text: el.CodeMirror.getValue(),
}));
"""
# a person replacing the template's placeholder with the token they minted
PASTE_TOKEN = """
const editor = Array.from(document.querySelectorAll('.CodeMirror'))
  .map((el) => el.CodeMirror)
  .find((cm) => cm.getValue().includes('<token>'));
editor.setValue(editor.getValue().replace('<token>', arguments[0]));
"""
RESULT = """
const el = document.querySelector('.result-window .CodeMirror, [aria-label="Result Window"] .CodeMirror');
return el ? el.CodeMirror.getValue() : '';
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must fetch nothing
    options = Options()
    options.binary_location = CHROMIUM or ""
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,900",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no internet at all
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(LOAD_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


def test_graphiql_runs_the_readme_query_offline_in_a_real_browser(live_server: Server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, LOAD_TIMEOUT)
    browser.get(f"{live_server.base_url}/graphql")
    wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, ".graphiql-execute-button")))
    editors = wait.until(
        lambda b: len(b.execute_script(EDITORS)) >= 3 and b.execute_script(EDITORS)
    )

    texts = [editor["text"] for editor in editors]
    assert any("warningBoard { red yellow blue }" in text for text in texts), editors
    assert '{"Authorization": "Bearer <token>"}' in texts, editors

    browser.execute_script(PASTE_TOKEN, live_server.token)
    browser.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()
    answer = wait.until(lambda b: '"data"' in b.execute_script(RESULT) and b.execute_script(RESULT))

    data = json.loads(answer)["data"]
    assert data["me"]["username"] == "sq_officer"
    assert data["me"]["roles"], data["me"]  # the README's query (O) reads the officer's roles
    assert isinstance(data["notifications"], list)
    assert set(data["warningBoard"]) == {"red", "yellow", "blue"}
    assert data["cases"]["totalCount"] > 0
    node = data["cases"]["edges"][0]["node"]
    assert node["number"].startswith("SQ-")
    assert node["dueAt"] is None or node["dueAt"].endswith("T23:59:59+08:00")

    # everything the page loaded came from the server itself
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map((e) => e.name)"
    )
    server = urlsplit(live_server.base_url).netloc
    assert loaded, "the page loaded no assets"
    assert {urlsplit(url).netloc for url in loaded} == {server}, loaded
