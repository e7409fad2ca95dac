"""Reading Prometheus metrics in tests: scrape, and see how much a sample moved."""

from __future__ import annotations

import time
import urllib.request

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

# A test client's base URL for the app's internal port (internal_port, 9090 unless a config says otherwise).
INTERNAL = "http://localhost:9090"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: FlaskClient) -> Samples:
    """GET /metrics of the app, parsed: value by sample name and labels."""
    response = client.get("/metrics", base_url=INTERNAL)
    assert (response.status_code, response.mimetype) == (200, "text/plain")
    return parse(response.get_data(as_text=True))


def scrape_worker(port: int) -> Samples:
    """A worker's own metrics port (WORKER_METRICS_PORT), parsed."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return parse(response.read().decode())


def scrape_worker_until(
    port: int, before: Samples, name: str, by: float, timeout: float = 30, **labels: str
) -> Samples:
    """Scrape a worker until the sample has grown by `by` since `before` (or `timeout` s passed); that scrape."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape_worker(port)
        if moved(before, samples, name, **labels) >= by or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much a sample grew between two scrapes."""
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0) - before.get(key, 0)
