"""Celery's Redis result backends, minus the result subscription they open for every task sent.

As it sends a task, Celery's Redis backend subscribes the sender to that task's result
channel, in case the sender waits for the result, and unsubscribes when the ``AsyncResult``
is dropped. A web process never waits, so nothing ever reads Redis's replies: they pile up
unread on the process's pub/sub connection (about 160 bytes a task, 7.5 MB after 45,000
POSTs here) until Redis drops the connection for overrunning its output buffer
(celery#4983, celery#6963). Without the subscription, ``AsyncResult.get()`` and
``join()`` still work: they subscribe when they start to wait, then read the stored state.
(Groups and chords sent from here still subscribe for each child: Celery does that itself.)
CELERY_DEFAULTS selects these classes for ``redis://``, ``rediss://`` and ``sentinel://``.
"""

from __future__ import annotations

from typing import Any

from celery.backends.redis import RedisBackend, SentinelBackend


class _SubscribeOnlyToWait:
    def on_task_call(self, producer: Any, task_id: str) -> dict[str, Any]:
        """Send the task without subscribing to its result channel, and add no message options."""
        return {}  # as Celery's base backend: callers may splat it into the task's options


class PublisherRedisBackend(_SubscribeOnlyToWait, RedisBackend):  # type: ignore[misc]
    """Celery's Redis backend that subscribes to a result only when someone waits for it."""


class PublisherSentinelBackend(_SubscribeOnlyToWait, SentinelBackend):  # type: ignore[misc]
    """The same for Redis behind Sentinel."""
