"""The worker's fix for kombu's event loop (app/fixes/kombu_poll.py)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from celery.signals import worker_init
from kombu.asynchronous.hub import Hub

from app.fixes import kombu_poll


@pytest.fixture
def hub(request: pytest.FixtureRequest) -> Iterator[Hub]:
    """A kombu event loop, patched at worker_init as in a worker, or as kombu releases it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Hub, "_create_poller", kombu_poll.KOMBU_CREATE_POLLER)
        if request.param == "patched":
            worker_init.send(sender=None)  # importing the app connected the handler
        hub = Hub()
        yield hub
        hub.close()


def seconds_until_a_callback_queued_by_a_callback_runs(hub: Hub) -> float:
    """As a solo worker's ack, queued by the task a ready callback (the AMQP read) ran."""
    # A broker connection: while it is quiet, the loop waits in its poll.
    connection, broker = socket.socketpair()
    ran: list[float] = []

    def ack() -> None:
        ran.append(time.monotonic())
        broker.send(b"next message")  # ends the loop's next poll at once: the test need not wait for it

    with connection, broker:
        hub.add_reader(connection, connection.recv, 100)
        hub.call_soon(lambda: hub.call_soon(ack))
        started, loop = time.monotonic(), hub.create_loop()
        while not ran:
            next(loop)
        hub.remove_reader(connection)
    return ran[0] - started


@pytest.mark.parametrize("hub", ["patched"], indirect=True)
def test_a_callback_queued_from_the_loop_runs_at_once(hub: Hub) -> None:
    """Patched, the loop never blocks in its poll while a callback waits, after a reconnection too."""
    assert seconds_until_a_callback_queued_by_a_callback_runs(hub) < 0.5
    hub.reset()  # a reconnection: the new poller is patched too
    assert seconds_until_a_callback_queued_by_a_callback_runs(hub) < 0.5


@pytest.mark.parametrize("hub", ["kombu-as-released"], indirect=True)
def test_kombu_still_waits_for_its_poll_timeout(hub: Hub) -> None:
    """The fault the patch works around; when this fails, kombu has fixed it: delete app/fixes/kombu_poll.py."""
    assert seconds_until_a_callback_queued_by_a_callback_runs(hub) >= 0.9  # its 1 s poll timeout
