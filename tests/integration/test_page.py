"""The page at / in a real browser (headless Chromium) against a real broker, backend and worker.

Marked `browser`, not `integration`: `nox -s browser`. Chromium comes from the system
(Debian's `chromium` package, or TEST_CHROMIUM); nothing downloads a browser.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest
from celery.worker import WorkController
from flask import Flask
from werkzeug.serving import make_server
from werkzeug.wsgi import ClosingIterator

from app.web.auth import new_token
from tests import ROOT
from tests.integration import services
from tests.integration.conftest import RUN, WriteConfig, close_thread_backend, create_app_from

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.browser

# Where the test leaves its screenshot (git-ignored): CI keeps it as an artifact.
ARTIFACTS = ROOT / "artifacts"
# Chromium's own background traffic would only be refused by a closed network.
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def base_url(app: Flask, embedded_worker: WorkController) -> Iterator[str]:
    """The app served over HTTP on 127.0.0.1 from a thread, with the session's worker behind it."""
    with serving(app) as url:
        yield url


@pytest.fixture(scope="module")
def secured_url(write_config: WriteConfig, embedded_worker: WorkController) -> Iterator[tuple[str, str]]:
    """An app with authentication on, served as `base_url` is, on the session worker's queue; its URL and a token."""
    token, line = new_token(f"{RUN}-page")
    client, digest = line.split(": ", 1)
    with serving(create_app_from(write_config("main", auth={"tokens": {client: digest.strip('"')}}))) as url:
        yield url, token


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """`app` served over HTTP on 127.0.0.1 from a thread; its URL."""
    server = make_server("127.0.0.1", services.free_port(), closing_thread_backends(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def closing_thread_backends(app: Flask) -> Any:
    """`app`, closing each response's thread's result backend once sent: the server runs a thread per request."""
    celery_app = app.extensions["celery"]

    def serve(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return ClosingIterator(app(environ, start_response), partial(close_thread_backend, celery_app))

    return serve


@pytest.fixture
def page(request: pytest.FixtureRequest, base_url: str) -> Iterator[Page]:
    """A headless Chromium tab on the page; skipped without Chromium (failing under CI)."""
    with chromium_tab(request, base_url) as tab:
        yield tab


@contextmanager
def chromium_tab(request: pytest.FixtureRequest, url: str) -> Iterator[Page]:
    """A headless Chromium tab open at `url`; skips the test without Chromium (fails it under CI)."""
    executable = os.environ.get("TEST_CHROMIUM") or shutil.which("chromium")
    if executable is None:
        message = "no Chromium: apt-get install chromium, or set TEST_CHROMIUM"
        if request.config.getoption("--require-services") or os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        tab = browser.new_page()
        tab.set_default_timeout(30_000)
        tab.goto(url)
        try:
            yield tab
        finally:
            browser.close()


def test_start_follow_and_see_the_result(page: Page) -> None:
    """Click start: the bar moves while the task runs, then SUCCESS and its time are shown."""
    page.fill("#seconds", "2")
    page.click("#start")
    row = page.locator("li.task").first
    page.wait_for_function("() => document.querySelector('li.task progress')?.value > 0")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "page-mid-run.png")
    assert row.locator(".state").inner_text() == "PROGRESS"
    row.locator(".state", has_text="SUCCESS").wait_for()
    assert row.locator(".outcome").inner_text().startswith("finished at 20")
    assert row.locator("progress").evaluate("bar => bar.value") == 1


def cancel_a_running_task(page: Page) -> Locator:
    """Start a 10 s task, click cancel once it runs, wait for REVOKED; its row."""
    page.fill("#seconds", "10")
    page.click("#start")
    row = page.locator("li.task").first
    row.locator(".state", has_text="PROGRESS").wait_for()
    row.locator(".cancel").click()
    row.locator(".state", has_text="REVOKED").wait_for()
    return row


def test_cancel_a_running_task(page: Page) -> None:
    """Click cancel on a running task: REVOKED is shown, the bar stops short."""
    row = cancel_a_running_task(page)
    assert row.locator(".outcome").inner_text() == "cancelled"
    assert row.locator("progress").evaluate("bar => bar.value") < 1
    assert row.locator(".cancel").is_disabled()


def test_a_refused_start_shows_why(page: Page) -> None:
    """Seconds past the limit: the API's 400 message is shown, no task row appears."""
    page.fill("#seconds", "100000")
    page.click("#start")
    page.locator("#problem", has_text="Parameter seconds").wait_for()
    assert page.locator("li.task").count() == 0


def test_with_authentication_the_page_asks_for_a_token_and_sends_it_only_in_a_header(
    request: pytest.FixtureRequest, secured_url: tuple[str, str]
) -> None:
    """No token: the page asks; a wrong one: it says so; the right one starts, follows and cancels; no URL has it."""
    url, token = secured_url
    with chromium_tab(request, url) as page:
        sent: list[tuple[str, str | None]] = []
        page.on("request", lambda call: sent.append((call.url, call.headers.get("authorization"))))
        assert page.locator("#token").get_attribute("type") == "password"
        page.fill("#seconds", "1")
        page.click("#start")
        page.locator("#problem", has_text="This service needs a token").wait_for()
        page.fill("#token", "not-the-token")
        page.click("#start")
        page.locator("#problem", has_text="That token was refused").wait_for()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "page-token-refused.png")
        assert page.locator("li.task").count() == 0

        page.fill("#token", token)
        page.click("#start")
        page.locator("li.task .state", has_text="SUCCESS").wait_for()
        assert page.locator("#problem").inner_text() == ""
        cancel_a_running_task(page)

        page.reload()  # the tab keeps its token, in sessionStorage, not in a cookie
        assert page.locator("#token").input_value() == token
        assert page.context.cookies() == []
    assert [address for address, _ in sent if token in address] == []
    api_calls = [header for address, header in sent if address.startswith(f"{url}/task/")]
    assert api_calls[:2] == [None, "Bearer not-the-token"]
    assert set(api_calls[2:]) == {f"Bearer {token}"}
