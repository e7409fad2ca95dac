"""A task message the worker cannot read is an invalid task, not the end of the worker (fixes/malformed_messages.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest.mock import MagicMock, Mock

import pytest
from celery.contrib.testing.mocks import TaskMessage
from celery.exceptions import InvalidTaskError
from celery.worker.strategy import default
from flask import Flask

from app.tasks import sample_task

MALFORMED = [
    pytest.param({}, id="json-object"),
    pytest.param([[], {}], id="two-items"),
    pytest.param(b"not a task", id="raw-bytes"),  # application/data: kombu accepts it whatever accept_content says
    pytest.param(None, id="null"),
    pytest.param(5, id="number"),
]


def deliver(handler: Callable[..., Any], payload: object) -> None:
    """Hand `handler` a protocol 2 message of the sample task whose body decodes to `payload`."""
    message = TaskMessage(sample_task.name)
    message.payload = payload
    handler(message, None, Mock(), Mock(), [])


def handler_of(app: Flask, strategy: Callable[..., Any] | None = None, **options: Any) -> Callable[..., Any]:
    """The sample task's message handler in a worker's consumer (a stand-in), by `strategy` or the task's own."""
    task = app.extensions["celery"].tasks[sample_task.name]
    consumer = MagicMock(name="consumer")
    if strategy is None:
        handler: Callable[..., Any] = task.start_strategy(task.app, consumer, **options)
    else:
        handler = strategy(task, task.app, consumer)
    return handler


@pytest.mark.parametrize("payload", MALFORMED)
def test_a_malformed_body_is_an_invalid_task(app: Flask, payload: object) -> None:
    """InvalidTaskError, which the consumer logs and rejects, not a ValueError or TypeError it lets through."""
    with pytest.raises(InvalidTaskError, match="a task message the worker cannot read"):
        deliver(handler_of(app), payload)


def test_a_well_formed_message_is_handled_as_celery_does(app: Flask) -> None:
    """The message reaches the consumer's callbacks as a request of the task, with its arguments."""
    handler, callback = handler_of(app), Mock()
    message = TaskMessage(sample_task.name, args=(5,))
    handler(message, None, Mock(), Mock(), [callback])
    (request,), _ = callback.call_args
    assert (request.name, list(request.args)) == (sample_task.name, [5])


def test_the_options_of_start_strategy_reach_celery_s_strategy(app: Flask) -> None:
    """`Task.start_strategy(app, consumer, **options)` hands its options to the strategy: Celery's takes them.

    The default strategy's `task_reserved` (one of its options, as `info` and `error` are) is called here with
    each request the handler accepts, not Celery's worker state.
    """
    reserved = Mock()
    handler = handler_of(app, task_reserved=reserved)
    handler(TaskMessage(sample_task.name, args=(5,)), None, Mock(), Mock(), [])
    (request,), _ = reserved.call_args
    assert (request.name, list(request.args)) == (sample_task.name, [5])


def test_the_handler_takes_its_arguments_by_name_as_celery_s_does(app: Flask) -> None:
    """`body`, `ack`, `reject` and `callbacks` by name reach Celery's handler: the message is handled, not invalid."""
    handler, callback = handler_of(app), Mock()
    handler(TaskMessage(sample_task.name, args=(5,)), body=None, ack=Mock(), reject=Mock(), callbacks=[callback])
    (request,), _ = callback.call_args
    assert (request.name, list(request.args)) == (sample_task.name, [5])


@pytest.mark.parametrize("payload", MALFORMED)
def test_upstream_still_stops_the_worker_on_a_malformed_body(app: Flask, payload: object) -> None:
    """Celery's own strategy raises what its consumer lets through; once it raises InvalidTaskError, delete the fix."""
    with pytest.raises((ValueError, TypeError)):
        deliver(handler_of(app, default), payload)
