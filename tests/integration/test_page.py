"""The page at / in a real browser (headless Chromium) against a real broker, backend and worker.

Marked `browser`, not `integration`: `nox -s browser`. Chromium comes from the system
(Debian's `chromium` package, or TEST_CHROMIUM); nothing downloads a browser.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest
from celery.worker import WorkController
from flask import Flask
from werkzeug.serving import make_server
from werkzeug.wsgi import ClosingIterator

from tests import ROOT
from tests.integration import services
from tests.integration.conftest import close_thread_backend

if TYPE_CHECKING:
    from playwright.sync_api import Page

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
    server = make_server("127.0.0.1", services.free_port(), closing_thread_backends(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
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
        tab.goto(base_url)
        yield tab
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


def test_cancel_a_running_task(page: Page) -> None:
    """Click cancel on a running task: REVOKED is shown, the bar stops short."""
    page.fill("#seconds", "10")
    page.click("#start")
    row = page.locator("li.task").first
    row.locator(".state", has_text="PROGRESS").wait_for()
    row.locator(".cancel").click()
    row.locator(".state", has_text="REVOKED").wait_for()
    assert row.locator(".outcome").inner_text() == "cancelled"
    assert row.locator("progress").evaluate("bar => bar.value") < 1
    assert row.locator(".cancel").is_disabled()


def test_a_refused_start_shows_why(page: Page) -> None:
    """Seconds past the limit: the API's 400 message is shown, no task row appears."""
    page.fill("#seconds", "100000")
    page.click("#start")
    page.locator("#problem", has_text="Parameter seconds").wait_for()
    assert page.locator("li.task").count() == 0
