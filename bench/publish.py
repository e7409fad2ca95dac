# mypy: allow-untyped-calls
# kombu, which this module drives directly, is only partly annotated.
"""The ceiling: how fast one process can publish task messages with kombu alone."""

from __future__ import annotations

import time
import uuid

from celery import Celery
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.messaging import Producer

from bench.tasks import NOOP


def raw_publish_rate(broker_url: str, confirms: bool, count: int = 5000) -> float:
    """Messages per second: Celery's own message for a task, published with kombu only.

    Built as Celery builds it and published as Celery publishes it (JSON, persistent,
    retry, queue declared), so the gap to `delay()` or POST is Celery's and the app's cost.
    """
    queue = Queue("bench-raw", Exchange("bench-raw"), "bench-raw", durable=True)
    message = Celery(broker=broker_url).amqp.as_task_v2(str(uuid.uuid4()), NOOP)
    with Connection(broker_url, transport_options={"confirm_publish": confirms}) as connection:
        producer = Producer(connection)
        queue(connection.default_channel).declare()
        started = time.perf_counter()
        for _ in range(count):
            producer.publish(
                message.body,
                exchange=queue.exchange,
                routing_key=queue.routing_key,
                headers=message.headers,
                serializer="json",
                delivery_mode=2,
                retry=True,
                declare=[queue],
                **message.properties,
            )
        elapsed = time.perf_counter() - started
        queue(connection.default_channel).purge()
    return count / elapsed
