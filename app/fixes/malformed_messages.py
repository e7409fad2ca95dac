"""Worker fix: a task message the worker cannot read is rejected as invalid, not fatal to the worker.

Celery's consumer rejects a message whose strategy raises InvalidTaskError; any other error stops
the worker, such as the ValueError or TypeError of a body that is not ``[args, kwargs, embed]``
(JSON ``{}``, raw ``application/data``). With late acks the message then stops every worker that
takes it next. Delete once Celery's consumer rejects such a message by itself (the template's
docs/upstream.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery.exceptions import InvalidTaskError
from celery.worker.strategy import default


def strategy(*args: Any, **kwargs: Any) -> Callable[..., Any]:
    """Celery's default strategy, whose ValueError or TypeError on a message becomes InvalidTaskError."""
    handle = default(*args, **kwargs)

    def task_message_handler(message: Any, *handler_args: Any, **handler_kwargs: Any) -> Any:
        try:
            return handle(message, *handler_args, **handler_kwargs)
        except (ValueError, TypeError) as error:
            raise InvalidTaskError(f"a task message the worker cannot read: {error!r}") from error

    return task_message_handler
