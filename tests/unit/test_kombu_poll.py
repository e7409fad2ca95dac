"""The worker's fix for kombu's event loop (app/fixes/kombu_poll.py)."""

from __future__ import annotations

import socket
import threading
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

    # A poll that waits for ever would hang the test: the broker speaks after 2 s regardless.
    watchdog = threading.Timer(2, broker.send, (b"watchdog",))
    with connection, broker:
        hub.add_reader(connection, connection.recv, 100)
        hub.call_soon(lambda: hub.call_soon(ack))
        started, loop = time.monotonic(), hub.create_loop()
        watchdog.start()
        while not ran:
            next(loop)
        watchdog.cancel()
        watchdog.join()
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


@pytest.mark.parametrize("hub", ["patched"], indirect=True)
def test_with_no_callback_waiting_the_loop_sleeps_in_its_poll_until_a_timer_or_the_broker(hub: Hub) -> None:
    """Patched, a quiet loop still polls with its timeout: timers fire on time, the broker's data comes, no spinning."""
    connection, broker = socket.socketpair()
    received: list[bytes] = []
    fired: list[float] = []
    sender = threading.Timer(0.5, broker.send, (b"message",))
    with connection, broker:
        hub.add_reader(connection, lambda: received.append(connection.recv(100)))
        hub.call_later(0.1, lambda: fired.append(time.monotonic()))
        started, loop, turns = time.monotonic(), hub.create_loop(), 0
        sender.start()
        while not received and time.monotonic() - started < 3:
            next(loop)
            turns += 1
        sender.join()
        hub.remove_reader(connection)
    assert received == [b"message"]
    assert len(fired) == 1 and fired[0] - started < 0.4  # at 0.1 s, not held until the broker's data at 0.5 s
    assert turns < 10  # asleep in the poll, not spinning
