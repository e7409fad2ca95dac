"""What a benchmark leaves on the services, removed: stored results, its queue, Celery's exchanges.

The services may be shared (TEST_* URLs): only what the run made goes.
"""

from __future__ import annotations

import redis
from celery import Celery

RESULT_KEYS = "celery-task-meta-*"
# Declared by workers and the client's pings; deleted at the end unless they were there before.
CELERY_EXCHANGES = ("celery.pidbox", "reply.celery.pidbox", "celeryev")


def forget(client: Celery, backend_url: str, task_ids: list[str]) -> None:
    """Delete the stored results of `task_ids` (the keys of Celery's Redis backend)."""
    with redis.Redis.from_url(backend_url) as backend:
        delete(backend, [client.backend.get_key_for_task(task_id) for task_id in task_ids])


def result_keys(backend: redis.Redis) -> set[bytes]:
    """The result records in the results db now."""
    return set(backend.scan_iter(match=RESULT_KEYS, count=1000))


def delete_new_results(backend: redis.Redis, before: set[bytes]) -> None:
    """Delete the result records that were not there `before`: the run's (they would stay a day)."""
    delete(backend, list(result_keys(backend) - before))


def delete(backend: redis.Redis, keys: list[bytes]) -> None:
    """Delete `keys`, a thousand a command."""
    for start in range(0, len(keys), 1000):
        backend.delete(*keys[start : start + 1000])


def existing_exchanges(client: Celery) -> set[str]:
    """Those of CELERY_EXCHANGES already on the broker (a passive declare each, on a channel of its own)."""
    found = set()
    with client.connection_for_write() as connection:
        for name in CELERY_EXCHANGES:
            channel = connection.channel()
            try:
                channel.exchange_declare(name, "direct", passive=True)
                found.add(name)
            except connection.channel_errors:  # not found: RabbitMQ closes the channel
                continue
            channel.close()
    return found


def remove_queue(client: Celery, queue: str, keep: set[str]) -> None:
    """Delete `queue`, its exchange, and Celery's exchanges but `keep`."""
    with client.connection_for_write() as connection:
        channel = connection.default_channel
        channel.queue_delete(queue)
        for name in [queue, *(name for name in CELERY_EXCHANGES if name not in keep)]:
            channel.exchange_delete(name)
