"""Exposing a task over HTTP: one call gives it a POST endpoint with every guarantee.

    expose(bp, "/invoices/", render_invoice)

The task's own signature is the request's schema (pydantic): the JSON body's keys are its
keyword arguments, checked before anything is queued (400 naming the parameter), and
``GET /openapi.json`` describes them. The POST answers 202 with the task id and its
``Location``, or 503 when the result backend or the broker is down (nothing queued); an
``Idempotency-Key`` makes a repeated POST answer the first one's task. Every exposed task
takes its client's token (auth.py) and counts against its limits (limits.py, unfinished_tasks.py).
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from typing import Any

from celery import Task, uuid
from flask import Blueprint, abort, current_app, request, url_for
from flask.sansio.blueprints import BlueprintSetupState
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from app.observability.metrics import PUBLISH_SECONDS
from app.settings import ConfigError
from app.web.dependencies import CONFIRM_TIMEOUT, dependency
from app.web.idempotency import parse_key, submit_once
from app.web.unfinished_tasks import unfinished_slot

# JSON gives no NaN, no infinities, and no "5" for 5.
STRICT_JSON = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def expose(bp: Blueprint, rule: str, task: Task) -> None:
    """Serve ``POST rule`` on ``bp``, in each app it is registered on: start ``task`` with the body's arguments."""
    bp.record(lambda state: _serve(state, rule, task))


def _serve(state: BlueprintSetupState, rule: str, task: Task) -> None:
    celery_app = state.app.extensions["celery"]
    if (own := celery_app.tasks.get(task.name)) is None:
        raise LookupError(f"expose({rule!r}): {task.name} is no task of this app's Celery: declare it @shared_task")
    if own.ignore_result:  # nothing stored: GET would answer PENDING for ever, DELETE 202 after it ran
        if celery_app.conf.task_ignore_result:
            reason = f"expected false: GET /task/<id> reads the state of {task.name} (or give it ignore_result=False)"
            raise ConfigError(state.app.config["CONFIG_FILE"], "celery.task_ignore_result", reason)
        raise TypeError(f"expose({rule!r}): {task.name} has ignore_result=True, but GET /task/<id> reads its state")
    view = functools.update_wrapper(functools.partial(start, task.name), start)  # named, as Flask-Limiter needs
    view.task = task  # type: ignore[attr-defined]  # for the OpenAPI description (web/contract.py)
    # `POST /task` too: a redirect to the slash would answer an HTML page.
    state.add_url_rule(rule, f"start_{task.name.rsplit('.', 1)[-1]}", view, methods=["POST"], strict_slashes=False)


def start(task_name: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The view of every exposed task: queue it with the body's keyword arguments, or 400 naming each one at fault."""
    task = current_app.extensions["celery"].tasks[task_name]  # this app's, not the process's default app's
    try:
        kwargs = parameters_of(task).model_validate(json_object()).model_dump(exclude_unset=True)
    except ValidationError as error:
        problems = [f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in error.errors()]
        abort(400, description="Parameter " + "; parameter ".join(problems) + ".")
    return accept(task, kwargs)


def accept(task: Task, kwargs: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Queue ``task`` with ``kwargs`` (valid), once per Idempotency-Key: 202, its id and Location; 503, 429."""
    celery_app = current_app.extensions["celery"]
    key = request.headers.get("Idempotency-Key", type=parse_key)

    def send(task_id: str | None = None) -> str:
        task_id = task_id or uuid()
        with unfinished_slot(celery_app, task_id) as slot:  # 429 past the client's cap (unfinished_tasks.py)
            return str(task.apply_async(kwargs=kwargs, task_id=task_id, slot=slot, confirm_timeout=CONFIRM_TIMEOUT).id)

    # The id record is written first (celery_app.FlaskTask): if that fails, nothing is published.
    with dependency("result backend"), dependency("broker"), PUBLISH_SECONDS.time():
        task_id = send() if key is None else submit_once(celery_app, key, {task.name: kwargs}, send)
    return {"task_id": task_id, "state": "PENDING"}, 202, {"Location": url_for("tasks.task_status", task_id=task_id)}


def parameters_of(task: Task) -> type[BaseModel]:
    """A pydantic model of the task's keyword arguments, from its signature (a bound task's ``self`` left out).

    Made at a task's first request, then kept with the app: a model takes a millisecond to build.
    """
    models: dict[str, type[BaseModel]] = current_app.extensions.setdefault("task_parameters", {})
    if (known := models.get(task.name)) is None:
        known = models[task.name] = signature_model(task, task.name)
    return known


def signature_model(task: Task, name: str) -> type[BaseModel]:
    """The model named ``name`` of the task's keyword arguments, strict as JSON bodies are read; built anew."""
    hints = typing.get_type_hints(task.run, include_extras=True)
    fields: dict[str, Any] = {
        parameter.name: (
            hints.get(parameter.name, Any),
            ... if parameter.default is parameter.empty else parameter.default,
        )
        for parameter in inspect.signature(task.run).parameters.values()
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    }
    model: type[BaseModel] = create_model(name, __config__=STRICT_JSON, **fields)
    return model


def json_object() -> dict[str, Any]:
    """The body as a JSON object; no body at all reads as an empty one.

    413 past MAX_CONTENT_LENGTH (Flask, as the body is read), 415 for another content
    type, 400 for anything else that is not a JSON object.
    """
    data = request.get_data()
    # Werkzeug cuts a body sent without Content-Length (chunked) at the limit, silently:
    # whatever follows the cut makes it too large.
    cut_at_limit = request.content_length is None and len(data) >= current_app.config["MAX_CONTENT_LENGTH"]
    if cut_at_limit and request.environ["wsgi.input"].read(1):
        abort(413)
    if not data:
        return {}
    if not request.is_json:
        abort(415, description="Send parameters as application/json.")
    try:
        body = json.loads(data, parse_float=_number, parse_constant=_refuse)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past Python's limit
        abort(400, description="The body is not valid JSON.")
    if not isinstance(body, dict):
        abort(400, description="The body must be a JSON object.")
    return body


def _number(literal: str) -> float:
    """A number written with a fraction or an exponent: ``750.0`` is the integer 750, as JSON Schema counts it.

    The description says ``integer`` for an ``int`` parameter, and JSON Schema takes 750.0
    for one; strict validation would refuse it as a float.
    """
    number = float(literal)
    return int(number) if number.is_integer() else number


def _refuse(constant: str) -> float:
    """NaN and Infinity are not JSON, though Python's parser takes them."""
    raise ValueError(constant)
