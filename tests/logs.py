"""Reading the log lines of requests and of the tasks they start, as the service formats them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from app.observability.logs import Formatter


@contextmanager
def capturing_task_lines(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Inside, caplog holds INFO lines of requests and tasks, with the request id and client on each.

    A worker set up earlier in the process (pytest-celery's, the integration tier's) stops
    get_task_logger()'s records at `celery.task` (propagate off, level ERROR): they are read there.
    """
    caplog.handler.setFormatter(Formatter())
    task_loggers = logging.getLogger("celery.task")
    task_loggers.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, logger="celery.task"):
            yield
    finally:
        task_loggers.removeHandler(caplog.handler)
