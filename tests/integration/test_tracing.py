"""OpenTelemetry (app/observability/tracing.py) through a real broker and worker: one trace per request."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from celery.worker import WorkController
from flask import Flask
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.tasks import sample_task
from tests.integration.conftest import WriteConfig, create_app_from, wait_for_state

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """The SDK's in-memory exporter behind this process's tracer provider (the web side and the worker's)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # once a process: OpenTelemetry keeps the first one
    yield exporter
    CeleryInstrumentor().uninstrument()  # the rest of the session publishes without trace headers


def spans_of(exporter: InMemorySpanExporter, kind: SpanKind, timeout: float = 10) -> ReadableSpan:
    """The one finished span of `kind`, once it has finished."""
    deadline = time.monotonic() + timeout
    while not (found := [span for span in exporter.get_finished_spans() if span.kind == kind]):
        assert time.monotonic() < deadline, [span.name for span in exporter.get_finished_spans()]
        time.sleep(0.05)
    (span,) = found
    return span


def test_one_trace_spans_the_request_the_publish_and_the_run(
    app: Flask, embedded_worker: WorkController, write_config: WriteConfig, exporter: InMemorySpanExporter
) -> None:
    """POST /task/ (server span) -> its publish (producer) -> the task's run in the worker (consumer)."""
    # On the session worker's queue: the embedded worker runs the traced app's task.
    queue = app.extensions["celery"].conf.task_default_queue
    traced = create_app_from(write_config("traced", opentelemetry=True, celery={"task_default_queue": queue}))
    client = traced.test_client()
    exporter.clear()
    task_id = client.post("/task/").json["task_id"]
    request = spans_of(exporter, SpanKind.SERVER)
    wait_for_state(client, f"/task/{task_id}", "SUCCESS")
    publish, run = spans_of(exporter, SpanKind.PRODUCER), spans_of(exporter, SpanKind.CONSUMER)
    assert request.name == "POST /task/"
    assert (publish.name, run.name) == (f"apply_async/{sample_task.name}", f"run/{sample_task.name}")
    assert request.context and publish.context and run.context and publish.parent and run.parent
    assert request.context.trace_id == publish.context.trace_id == run.context.trace_id
    assert (publish.parent.span_id, run.parent.span_id) == (request.context.span_id, publish.context.span_id)
