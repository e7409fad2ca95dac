"""Worker fix for kombu's event loop: never block in the poller while callbacks wait.

``Hub.create_loop`` polls with its full timeout without looking at ``Hub._ready`` again, and
``Hub.call_soon`` from the loop's own thread does not wake it: a solo worker's late ack waits
out the poll while RabbitMQ, at prefetch 1, sends nothing. Delete once kombu checks ``_ready``
before polling (the template's docs/upstream.md).
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
