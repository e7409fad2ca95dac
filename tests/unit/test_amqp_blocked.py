"""A connection RabbitMQ blocks fails at once (app/fixes/amqp_blocked.py); a real alarm: test_broker_alarm.py."""

from __future__ import annotations

from typing import Any

import pytest
from kombu import Connection
from kombu.exceptions import OperationalError
from kombu.transport import pyamqp

from app.fixes.amqp_blocked import REASON, BrokerBlocked

# Nothing listens on port 1: a reconnection would be refused at once.
REFUSING_BROKER = "amqp://guest:guest@127.0.0.1:1//"


def test_a_blocked_connection_is_dropped_and_its_wait_ends() -> None:
    """connection.blocked: no Close handshake left to wait for (socket and channels gone), BrokerBlocked raised."""
    connection = pyamqp.Connection(host="127.0.0.1:1")
    channel = connection.Channel(connection, 1)
    connection.channels[1] = channel
    with pytest.raises(BrokerBlocked, match=r"^RabbitMQ blocked the connection \(a memory or disk alarm"):
        connection._on_blocked()
    assert (connection.channels, channel.connection) == (None, None)
    connection.close()  # returns at once: nothing to close


def test_kombu_gives_a_blocked_publish_up_without_retrying() -> None:
    """Within kombu's retry policy, the publish is tried once and the caller gets an OperationalError."""
    calls: list[str] = []

    def blocked_publish(*args: Any) -> None:
        calls.append("publish")
        raise BrokerBlocked(REASON)

    class Revivable:
        def revive(self, channel: object) -> None:
            calls.append("revive")

    with Connection(REFUSING_BROKER) as connection:
        publish = connection.ensure(Revivable(), blocked_publish, max_retries=1)
        with pytest.raises(OperationalError, match="RabbitMQ blocked the connection"):
            publish()
    assert calls == ["publish"]


def test_other_users_of_py_amqp_keep_its_callback() -> None:
    """Only kombu's connections are patched: py-amqp's own class still calls on_blocked."""
    import amqp

    reasons: list[str] = []
    amqp.Connection(host="127.0.0.1:1", on_blocked=reasons.append)._on_blocked()
    assert reasons == ["connection blocked, see broker logs"]
