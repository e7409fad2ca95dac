"""Logging set up once, each line inside a task naming it (app/logs.py)."""

from __future__ import annotations

import logging
import re

import pytest
from celery import shared_task
from flask import Flask

from app.logs import ContextFilter, configure_logging


@shared_task(bind=True)
def logging_task(self: object) -> None:
    """Log one line from inside a task."""
    logging.getLogger("tests.logging_task").warning("inside")


def test_lines_inside_a_task_carry_its_id(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    """A record logged by a running task gets its id; one logged outside gets '-'."""
    caplog.handler.addFilter(ContextFilter())
    logging.getLogger("tests").warning("outside")
    result = app.extensions["celery"].tasks[logging_task.name].apply_async(task_id="task-42")
    result.get()
    ids = {record.getMessage(): record.task_id for record in caplog.records if record.name.startswith("tests")}
    assert ids == {"outside": "-", "inside": "task-42"}


def test_configure_logging_writes_info_lines_to_stderr_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """First call: INFO and above on stderr, each line with its time, level, process, logger, request and task.

    A later call finds a setup and leaves it alone: no line is written twice.
    """
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    configure_logging()
    configure_logging()
    logger = logging.getLogger("tests.configured")
    logger.debug("not shown")
    logger.info("shown")
    line = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO MainProcess tests\.configured \[-\] \[-\] \[-\] shown\n"
    assert re.fullmatch(line, capsys.readouterr().err)
