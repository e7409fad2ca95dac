"""The pydantic model of a task's keyword arguments, from its signature: task_api.signature_model(), uncached.

The two pydantic libraries take a model class per endpoint; the task's signature stays the one declaration.
"""

from __future__ import annotations

from celery import Task
from pydantic import BaseModel

from app.web.task_api import signature_model


def model_of(task: Task) -> type[BaseModel]:
    """A model of the task's keyword arguments (a bound task's ``self`` left out), named by the task's last part."""
    return signature_model(task, task.name.rsplit(".", 1)[-1])
