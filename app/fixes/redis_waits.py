"""Celery's Redis result consumer, reading the stored state again while get() or join() waits.

They subscribe on the pub/sub connection, then read the stored state on another: Redis may run
the read before the SUBSCRIBE, and a result stored in between is neither read nor received (the
caller waits out its whole timeout). Reading again after the first wait for messages (most often
the subscription's confirmation), then at most once a second, ends such a wait that soon. Delete
once Celery reads the stored state only after Redis confirms the subscription (the template's
docs/upstream.md, "get() reads before Redis subscribes").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from celery.backends.redis import ResultConsumer

# Seconds between two reads of a wait after its first: a group's read fetches every member not yet ready.
REREAD_SECONDS = 1.0


class RereadingResultConsumer(ResultConsumer):  # type: ignore[misc]
    """Celery's Redis ResultConsumer, which also reads the stored state between waits for messages."""

    def _wait_for_pending(
        self,
        result: Any,
        timeout: float | None = None,
        on_interval: Callable[[], None] | None = None,
        on_message: Callable[[dict[str, Any]], None] | None = None,
        **kwargs: Any,
    ) -> Iterator[None]:
        due = time.monotonic()

        def read_again() -> None:
            nonlocal due
            if time.monotonic() >= due:
                due = time.monotonic() + REREAD_SECONDS
                # Without the caller's on_message, as Celery's own first read: it sees the states messages bring.
                self.on_message, given = None, self.on_message
                try:
                    self.on_wait_for_pending(result, timeout=timeout, **kwargs)
                finally:
                    self.on_message = given
            if on_interval is not None:
                on_interval()

        waits: Iterator[None] = super()._wait_for_pending(
            result, timeout=timeout, on_interval=read_again, on_message=on_message, **kwargs
        )
        return waits
