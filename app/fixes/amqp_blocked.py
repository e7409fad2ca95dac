"""A connection RabbitMQ blocks (a memory or disk alarm) fails at once instead of hanging until the alarm clears.

py-amqp passes ``connection.blocked`` only to a callback kombu never gives it. Here the connection
is dropped (closing it would wait for a Close-Ok) and the wait ends with ``BrokerBlocked``, which
kombu does not retry (a new connection would be blocked too). Delete once kombu handles a blocked
connection (the template's docs/upstream.md).
"""

from __future__ import annotations

from amqp.exceptions import IrrecoverableConnectionError  # type: ignore[import-untyped]
from kombu.exceptions import OperationalError
from kombu.transport import pyamqp

REASON = "RabbitMQ blocked the connection (a memory or disk alarm: see the broker's logs)"


class BrokerBlocked(OperationalError, IrrecoverableConnectionError):  # type: ignore[misc]
    """The broker blocked this connection's publishes: kombu's OperationalError (a 503), irrecoverable (no retry)."""


def _drop_when_blocked(connection: pyamqp.Connection) -> None:
    """In place of py-amqp's Connection._on_blocked: drop the connection, end the wait."""
    connection.collect()
    raise BrokerBlocked(REASON)


# kombu's subclass only: connections made by other users of py-amqp keep their callback.
pyamqp.Connection._on_blocked = _drop_when_blocked
