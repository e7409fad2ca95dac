"""Logging set up once, each line inside a task naming it (app/logs.py)."""

from __future__ import annotations

import logging

import pytest
from celery import shared_task
from flask import Flask

from app.logs import FORMAT, ContextFilter, configure_logging


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


def test_configure_logging_adds_one_handler_and_respects_an_existing_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    """First call: one stderr handler in FORMAT at INFO; later calls, or a prior setup: untouched."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    configure_logging()
    configure_logging()
    (handler,) = root.handlers
    assert handler.formatter is not None and handler.formatter._fmt == FORMAT
    assert [type(f) for f in handler.filters] == [ContextFilter]
    assert root.level == logging.INFO
