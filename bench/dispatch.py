"""Handing work over: the publish ceiling, POST and GET against Flask's example's pattern, end to end.

Every HTTP figure is also shown as a ratio to FLASK_EXAMPLE: Flask's own Celery example's
views (bench/bare_web.py: `delay()` with confirms off, `AsyncResult` for the state),
served the same way. Variants run interleaved (A B A B ...).
"""

from __future__ import annotations

from contextlib import ExitStack
from functools import partial
from pathlib import Path

from bench import defaults, load, publish, workers
from bench.report import QUEUE, Bench, Row, config_with, interleave

OURS = "ours, gunicorn sync"
OURS_GTHREAD = "ours, gunicorn gthread"
FLASK_EXAMPLE = "Flask's example"  # delay(), confirms off
# The app's production command (docs/operations.md, "Production") and its Idempotency-Key variant,
# against Flask's example with and without the confirm a 202 of ours waits for.
SERVED = {
    OURS: ("app:create_app()", "sync"),
    OURS_GTHREAD: ("app:create_app()", "gthread"),
    "Flask's example + confirms": ("bench.bare_web:create_app(confirms=True)", "sync"),
    FLASK_EXAMPLE: ("bench.bare_web:create_app(confirms=False)", "sync"),
}
KEYED = "ours, sync, a new Idempotency-Key each"
CLIENTS = (1, 16, 64)


def rows(bench: Bench) -> list[Row]:
    """Raw publish; POST at 1, 16 and 64 clients; GET of a pending task; 1000 tasks end to end."""
    raw = interleave(
        bench.repeat,
        {
            "confirms off": partial(publish.raw_publish_rate, bench.urls.broker_url, False),
            "confirms on": partial(publish.raw_publish_rate, bench.urls.broker_url, True),
        },
    )
    found = [Row("raw kombu publish, 1 process", variant, rates, "msg/s") for variant, rates in raw.items()]
    with ExitStack() as stack:
        urls = {
            variant: stack.enter_context(load.served(app, bench.env, 8191 + number, worker_class))
            for number, (variant, (app, worker_class)) in enumerate(SERVED.items())
        }
        found += _posts(bench, urls) + _gets(bench, urls)
        found += _end_to_end(bench, urls[OURS], "app context", OURS)
        short_tasks = f"{OURS}, worker: {defaults.SHORT_TASKS}"
        found += _end_to_end(bench, urls[OURS], "app context", short_tasks, _short_tasks_env(bench))
        found += _end_to_end(bench, urls[FLASK_EXAMPLE], workers.CELERY_DEFAULTS, FLASK_EXAMPLE)
    return found


def _posts(bench: Bench, urls: dict[str, str]) -> list[Row]:
    def post(url: str, clients: int, idempotent: bool = False) -> dict[str, float]:
        result = load.wrk_post(url, clients, idempotent=idempotent)
        bench.client.control.purge()  # no worker runs: keep the broker's backlog from growing
        return result

    found = []
    for clients in CLIENTS:
        variants = {variant: partial(post, url, clients) for variant, url in urls.items()}
        variants[KEYED] = partial(post, urls[OURS], clients, idempotent=True)
        for variant, results in interleave(bench.repeat, variants).items():
            found += _http_rows(f"POST, {clients} clients", variant, results)
    return found


def _gets(bench: Bench, urls: dict[str, str]) -> list[Row]:
    """GET of one pending task's status, 16 clients: ours answers 404 for unknown ids, the example cannot."""
    locations = {variant: url + load.post_location(url) for variant, url in urls.items()}
    bench.client.control.purge()
    runs = interleave(bench.repeat, {variant: partial(load.wrk_get, url, 16) for variant, url in locations.items()})
    return [row for variant, results in runs.items() for row in _http_rows("GET, 16 clients", variant, results)]


def _http_rows(measure: str, variant: str, results: list[dict[str, float]]) -> list[Row]:
    return [
        Row(measure, variant, [r["rate"] for r in results], "req/s", reference=FLASK_EXAMPLE),
        Row(f"{measure}, p50", variant, [r["p50"] for r in results], "ms", reference=FLASK_EXAMPLE),
        Row(f"{measure}, p99", variant, [r["p99"] for r in results], "ms", reference=FLASK_EXAMPLE),
    ]


def _end_to_end(bench: Bench, url: str, worker: str, variant: str, env: dict[str, str] | None = None) -> list[Row]:
    """1000 tasks POSTed by 16 clients and polled to SUCCESS, a prefork worker (2 processes) running them."""
    with workers.worker(worker, "prefork", env or bench.env, QUEUE, bench.client):
        rates = [load.end_to_end(url) for _ in range(bench.repeat)]
    return [Row("end to end: 1000 tasks POSTed and polled", variant, rates, "tasks/s", reference=FLASK_EXAMPLE)]


def _short_tasks_env(bench: Bench) -> dict[str, str]:
    """The bench's environment, its config file with config/short-tasks.yaml's Celery settings (not its URLs)."""
    settings = defaults.variants()[defaults.SHORT_TASKS]
    path = config_with(Path(bench.env["FLASK_CONFIG"]), bench.folder / "short-tasks.yaml", settings)
    return {**bench.env, "FLASK_CONFIG": str(path)}
