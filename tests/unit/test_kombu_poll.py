"""The worker's fix for kombu's event loop (app/fixes/kombu_poll.py).

Each test records the polls the loop makes (their timeout and the sockets that ended them)
rather than timing them: the broker's data is always waiting, so no poll ever blocks.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from celery.signals import worker_init
from kombu.asynchronous import hub as kombu_hub
from kombu.asynchronous.hub import Hub
from kombu.utils import eventio

from app.fixes import kombu_poll

Polls = list[tuple[float, list[int]]]


@pytest.fixture
def polls(monkeypatch: pytest.MonkeyPatch) -> Polls:
    """Each poll a new hub's pollers make from now on: its timeout and the file descriptors that ended it."""
    made: Polls = []

    def recording_poller() -> object:
        poller = eventio.poll()
        poll = poller.poll

        def recording_poll(timeout: float) -> object:
            events = poll(timeout)
            made.append((timeout, sorted(fd for fd, _ in events or ())))
            return events

        poller.poll = recording_poll
        return poller

    monkeypatch.setattr(kombu_hub, "poll", recording_poller)
    return made


@pytest.fixture
def hub(request: pytest.FixtureRequest, polls: Polls) -> Iterator[Hub]:
    """A kombu event loop, patched at worker_init as in a worker, or as kombu releases it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Hub, "_create_poller", kombu_poll.KOMBU_CREATE_POLLER)
        if request.param == "patched":
            worker_init.send(sender=None)  # importing the app connected the handler
        hub = Hub()
        yield hub
        hub.close()


def polls_before_a_callback_queued_by_a_callback_runs(hub: Hub, polls: Polls) -> tuple[Polls, int]:
    """As a solo worker's ack, queued by the task a ready callback (the AMQP read) ran; and the broker's socket."""
    connection, broker = socket.socketpair()
    seen: list[Polls] = []

    def ack() -> None:
        seen.append(list(polls))
        broker.send(b"next message")  # ends the loop's next poll at once

    with connection, broker:
        broker.send(b"message")  # waiting already: no poll of the loop blocks, whatever its timeout
        hub.add_reader(connection, connection.recv, 100)
        hub.call_soon(lambda: hub.call_soon(ack))
        loop = hub.create_loop()
        for _ in range(2):  # the callback's turn, then the one its callback runs in
            next(loop)
        hub.remove_reader(connection)
        del polls[:]
        return seen[0], connection.fileno()


@pytest.mark.parametrize("hub", ["patched"], indirect=True)
def test_a_callback_queued_from_the_loop_runs_without_waiting_in_a_poll(hub: Hub, polls: Polls) -> None:
    """Patched, the loop polls with timeout 0 while a callback waits, after a reconnection too."""
    made, broker = polls_before_a_callback_queued_by_a_callback_runs(hub, polls)
    assert made == [(0, [broker])]
    hub.reset()  # a reconnection: the new poller is patched too
    made, broker = polls_before_a_callback_queued_by_a_callback_runs(hub, polls)
    assert made == [(0, [broker])]


@pytest.mark.parametrize("hub", ["kombu-as-released"], indirect=True)
def test_upstream_kombu_still_polls_with_its_full_timeout_while_a_callback_waits(hub: Hub, polls: Polls) -> None:
    """kombu's own loop: the callback waits through a poll with the full 1 s timeout, which no wakeup ends."""
    made, broker = polls_before_a_callback_queued_by_a_callback_runs(hub, polls)
    assert made == [(1, [broker])], (
        "upstream fixed kombu's Hub: a callback queued from the loop's own thread no longer waits for a poll "
        f"with the full timeout (polls before it ran: {made}): remove app/fixes/kombu_poll.py (docs/upstream.md)"
    )


@pytest.mark.parametrize("hub", ["patched"], indirect=True)
@pytest.mark.parametrize(("timer_in", "timeout"), [(None, 1), (60, 2)], ids=["no-timer", "a-timer-in-a-minute"])
def test_with_no_callback_waiting_the_loop_polls_with_kombus_timeout(
    hub: Hub, polls: Polls, timer_in: int | None, timeout: int
) -> None:
    """Patched, a quiet loop still sleeps in its poll: 1 s, or until the next timer (at most 2 s), not 0."""
    connection, broker = socket.socketpair()
    with connection, broker:
        broker.send(b"message")
        received: list[bytes] = []
        hub.add_reader(connection, lambda: received.append(connection.recv(100)))
        if timer_in is not None:
            hub.call_later(timer_in, lambda: None)
        next(hub.create_loop())
        hub.remove_reader(connection)
        assert (polls, received) == ([(timeout, [connection.fileno()])], [b"message"])
