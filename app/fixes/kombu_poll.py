"""Worker fix for kombu 5.7.0's event loop: never block in the poller while callbacks wait.

``Hub.create_loop`` (kombu/asynchronous/hub.py:390-406) runs the ready callbacks, then
polls the sockets for up to 1 s (up to 10 s when timers are scheduled) without looking
at ``Hub._ready`` again, and ``Hub.call_soon`` wakes the poller only when called from
another thread (hub.py:267-268), on the promise that "the loop thread checks _ready
before polling again" (hub.py:265), which it does not. A callback that the loop's own
thread schedules while the ready callbacks run therefore waits for the poll timeout.
With RabbitMQ that callback is a late ack: the AMQP reader re-schedules itself with
``call_soon`` (kombu/transport/base.py:238), the solo pool runs the task it reads inline,
and the ack, queued by ``Consumer.call_soon_ack`` (celery/worker/consumer/consumer.py:298),
waits while RabbitMQ, at prefetch 1, sends nothing until it arrives.

This wraps every poller a Hub creates (``_create_poller`` runs from ``__init__``, the
``poller`` property and ``reset()`` after a reconnection) so that it polls with timeout 0
while callbacks wait, which is what hub.py:265 says the loop does. Remove it once a kombu
release checks ``_ready`` before polling (not the case up to 5.7.0).
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
    """Patch Hub: worker_init comes before the worker creates its hub (celery/worker/worker.py:151)."""
    Hub._create_poller = _create_poller  # type: ignore[method-assign]
