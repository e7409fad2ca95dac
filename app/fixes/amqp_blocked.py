"""A connection RabbitMQ blocks (a memory or disk alarm) fails at once instead of hanging.

While a resource alarm is on, RabbitMQ stops reading from every connection that publishes
and tells it so with ``connection.blocked``, which py-amqp only passes to a callback kombu
does not give it. The publish then waits for a confirm that cannot come, and when it gives
up kombu's error path closes the channel and the connection, each waiting for a Close-Ok
from a peer that reads nothing: ``POST /task/`` hung until the alarm cleared.

Here the blocked connection is dropped (its socket closed, no handshake) and the wait ends
with ``BrokerBlocked``: kombu raises its OperationalError (a 503) without retrying, since a
new connection would be blocked as well.

The refused message is not lost to the broker, though. RabbitMQ blocks a connection only
once it publishes under the alarm (on the publish's content header), so it has read that
publish: it keeps the connection, the message's body unread in it, until the alarm clears,
then queues it. Nothing tells a connection before its first publish, so the publish cannot
be refused sooner; instead a refused task is stored as REVOKED (celery_app.FlaskTask),
which a worker never runs. The fault, a reproduction and the proposed upstream change:
docs/upstream.md.
"""

from __future__ import annotations

from amqp.exceptions import IrrecoverableConnectionError  # type: ignore[import-untyped]
from kombu.exceptions import OperationalError
from kombu.transport import pyamqp

REASON = "RabbitMQ blocked the connection (a memory or disk alarm: see the broker's logs)"


class BrokerBlocked(OperationalError, IrrecoverableConnectionError):  # type: ignore[misc]
    """The broker blocked this connection's publishes.

    kombu's OperationalError, which a publish raises when the broker is unreachable; an
    irrecoverable connection error to kombu, which retries recoverable ones on a new
    connection (and to the worker's consumer, which reconnects after either kind).
    """


def _drop_when_blocked(connection: pyamqp.Connection) -> None:
    """In place of py-amqp's Connection._on_blocked: drop the connection, end the wait."""
    connection.collect()
    raise BrokerBlocked(REASON)


# kombu's subclass only: connections made by other users of py-amqp keep their callback.
pyamqp.Connection._on_blocked = _drop_when_blocked
