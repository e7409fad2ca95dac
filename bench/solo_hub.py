"""Worker-side patch for solo-pool runs of the benchmark only: never block while callbacks wait.

kombu's event loop runs ready callbacks, then polls the sockets. A callback scheduled
while those run (a solo worker's ack, scheduled by the task that a rescheduled read just
ran) waits for the next poll to time out, one second, and with prefetch 1 RabbitMQ sends
nothing until that ack: the worker then runs about 3 tasks a second (kombu#1587,
celery#7718, both open). Whether it happens depends on the order of a set, so a
process is either fast or slow throughout; the patch makes every one fast. Both variants
of the solo benchmark load it (`--include=bench.solo_hub`); real workers use prefork.
A broker reconnection replaces the poller (`hub.reset()`) and undoes the patch; the
benchmark's workers never reconnect.
"""

from typing import Any

from celery.signals import worker_ready


@worker_ready.connect  # type: ignore[untyped-decorator]
def _poll_without_blocking_while_callbacks_wait(sender: Any, **_: Any) -> None:
    hub = sender.hub  # the consumer's; the loop binds `poller.poll` after this signal
    poll = hub.poller.poll
    hub.poller.poll = lambda timeout: poll(0 if hub._ready else timeout)
