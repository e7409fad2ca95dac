"""The pydantic model of a task's keyword arguments, from its signature: task_api.parameters_of() without its cache.

The two pydantic libraries take a model class per endpoint; the task's signature stays the one declaration.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from celery import Task
from pydantic import BaseModel, create_model

from app.web.task_api import STRICT_JSON


def model_of(task: Task) -> type[BaseModel]:
    """A model of the task's keyword arguments (a bound task's ``self`` left out), strict as today's."""
    hints = typing.get_type_hints(task.run, include_extras=True)
    fields: dict[str, Any] = {
        parameter.name: (
            hints.get(parameter.name, Any),
            ... if parameter.default is parameter.empty else parameter.default,
        )
        for parameter in inspect.signature(task.run).parameters.values()
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    }
    model: type[BaseModel] = create_model(task.name.rsplit(".", 1)[-1], __config__=STRICT_JSON, **fields)
    return model
