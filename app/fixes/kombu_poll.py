"""Worker fix for kombu's event loop: never block in the poller while callbacks wait.

kombu's ``Hub.create_loop`` runs the ready callbacks, then polls the sockets for up to its
timeout (1 s, or until the next timer) without looking at ``Hub._ready`` again, and
``Hub.call_soon`` wakes the poller only when called from another thread. A callback that
the loop's own thread queues meanwhile waits out the poll: with RabbitMQ, a solo worker's
late ack, while RabbitMQ at prefetch 1 sends nothing until it arrives.

This wraps every poller a Hub creates (from ``__init__``, the ``poller`` property and
``reset()`` after a reconnection) so that it polls with timeout 0 while callbacks wait.
The fault, a reproduction, the proposed kombu change and how the tests tell when kombu
fixes it: docs/upstream.md.
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_init
from kombu.asynchronous.hub import Hub

KOMBU_CREATE_POLLER = Hub._create_poller


def _create_poller(hub: Any) -> None:
    """Hub._create_poller, then make the new poller's poll() return at once while callbacks wait."""
    KOMBU_CREATE_POLLER(hub)  # type: ignore[no-untyped-call]
    poll = hub._poller.poll
    hub._poller.poll = lambda timeout: poll(0 if hub._ready else timeout)


@worker_init.connect  # type: ignore[untyped-decorator]
def install(**_: Any) -> None:
    """Patch Hub: Celery sends worker_init before the worker creates its hub."""
    Hub._create_poller = _create_poller  # type: ignore[method-assign]
