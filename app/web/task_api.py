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
import warnings
from types import SimpleNamespace
from typing import Any

from celery import Task, uuid
from flask import Blueprint, abort, current_app, request, url_for
from flask.sansio.blueprints import BlueprintSetupState
from kombu.utils.json import dumps
from pydantic import BaseModel, ConfigDict, PydanticUserError, ValidationError, create_model

from app.observability.metrics import PUBLISH_SECONDS
from app.settings import ConfigError
from app.web.contract import json_object
from app.web.dependencies import CONFIRM_TIMEOUT, dependency
from app.web.idempotency import parse_key, submit_once
from app.web.unfinished_tasks import unfinished_slot

# JSON gives no NaN, no infinities, and no "5" for 5.
STRICT_JSON = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class ExposeError(TypeError):
    """A task expose() cannot serve: the app is not made (an entrypoint prints one line, exit 2)."""


def expose(bp: Blueprint, rule: str, task: Task) -> None:
    """Serve ``POST rule`` on ``bp``, in each app it is registered on: start ``task`` with the body's arguments."""
    bp.record(lambda state: _serve(state, rule, task))


def _serve(state: BlueprintSetupState, rule: str, task: Task) -> None:
    celery_app = state.app.extensions["celery"]
    if (own := celery_app.tasks.get(task.name)) is None:
        raise ExposeError(f"expose({rule!r}): {task.name} is no task of this app's Celery: declare it @shared_task")
    if not isinstance(own, celery_app.Task):  # without id record, owner, app context, run guard: GET would 404
        raise ExposeError(f"expose({rule!r}): {task.name} is not of the factory's task class (a base= of its own?)")
    if own.ignore_result:  # nothing stored: GET would answer PENDING for ever, DELETE 202 after it ran
        if celery_app.conf.task_ignore_result:
            reason = f"expected false: GET /task/<id> reads the state of {task.name} (or give it ignore_result=False)"
            raise ConfigError(state.app.config["CONFIG_FILE"], "celery.task_ignore_result", reason)
        raise ExposeError(f"expose({rule!r}): {task.name} has ignore_result=True, but GET /task/<id> reads its state")
    if "<" in rule:  # a variable would reach the view, not the task
        raise ExposeError(f"expose({rule!r}): a rule without variables: the task's arguments come from the JSON body")
    # Built now, not at the first POST: a signature pydantic cannot read fails the app, naming the task.
    parameters = signature_model(own, own.name)
    # Named, as Flask-Limiter needs; its parameters kept for the OpenAPI description (web/contract.py).
    view = functools.update_wrapper(functools.partial(start, task.name, parameters), start)
    view.parameters = parameters  # type: ignore[attr-defined]
    endpoint = f"start_{task.name.rsplit('.', 1)[-1]}"
    # Named as Flask names it, whose own check of a taken name is an assertion (a traceback, not one line).
    if ".".join(part for part in (state.name_prefix, state.name, endpoint) if part) in state.app.view_functions:
        raise ExposeError(
            f"expose({rule!r}): another task is {endpoint} on this blueprint: name one @shared_task(name=)"
        )
    # `POST /task` too: a redirect to the slash would answer an HTML page.
    state.add_url_rule(rule, endpoint, view, methods=["POST"], strict_slashes=False)


def start(task_name: str, parameters: type[BaseModel]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The view of every exposed task: queue it with the body's keyword arguments, or 400 naming each one at fault."""
    task = current_app.extensions["celery"].tasks[task_name]  # this app's, not the process's default app's
    try:  # read as JSON, strictly: a date from its ISO text, no "5" for 5
        checked = parameters.model_validate_json(json.dumps(body := json_object()))
    except ValidationError as error:
        if (first := error.errors()[0])["type"] == "json_invalid":  # too deep for pydantic, a lone surrogate
            abort(400, description=f"The body cannot be checked: {first['msg'].split(' at line')[0]}.")
        problems = [f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in error.errors()]
        abort(400, description="Parameter " + "; parameter ".join(problems) + ".")
    kwargs = checked.model_dump(exclude_unset=True)
    for name, value in kwargs.items():
        try:
            dumps(value)  # type: ignore[no-untyped-call]  # kombu's JSON: dates, times, UUIDs, decimals as such
        except TypeError:  # a set, a Path, an Enum: this parameter as JSON has it
            kwargs[name] = checked.model_dump(mode="json", include={name})[name]
    return accept(task, kwargs, body)


def accept(task: Task, kwargs: dict[str, Any], body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Queue ``task`` with ``kwargs`` (valid), once per Idempotency-Key: 202, its id and Location; 503, 429.

    The key's request is known by its ``body`` as sent, which any process reads alike (a set's order may differ).
    """
    celery_app = current_app.extensions["celery"]
    key = request.headers.get("Idempotency-Key", type=parse_key)

    def send(task_id: str | None = None) -> str:
        task_id = task_id or uuid()
        with unfinished_slot(celery_app, task_id) as slot:  # 429 past the client's cap (unfinished_tasks.py)
            return str(task.apply_async(kwargs=kwargs, task_id=task_id, slot=slot, confirm_timeout=CONFIRM_TIMEOUT).id)

    # The id record is written first (celery_app.FlaskTask): if that fails, nothing is published.
    with dependency("result backend"), dependency("broker"), PUBLISH_SECONDS.time():
        task_id = send() if key is None else submit_once(celery_app, key, {task.name: body}, send)
    return {"task_id": task_id, "state": "PENDING"}, 202, {"Location": url_for("tasks.task_status", task_id=task_id)}


def signature_model(task: Task, name: str) -> type[BaseModel]:
    """The model named ``name`` of the task's keyword arguments (a bound task's ``self`` left out), strict as JSON."""
    parameters = inspect.signature(task.run).parameters.values()
    run = inspect.unwrap(task.run)  # the task's own function, under Celery's wrappers (autoretry_for, pydantic=True)
    if unnamed := [
        each.name for each in parameters if each.kind not in (each.POSITIONAL_OR_KEYWORD, each.KEYWORD_ONLY)
    ]:
        raise ExposeError(f"{name}: a JSON body gives keyword arguments, none to {', '.join(unnamed)}")
    # The parameters' annotations only: a return type, or ``self``'s, may be imported for type checkers alone.
    annotations = {each.name: run.__annotations__[each.name] for each in parameters if each.name in run.__annotations__}
    try:
        hints = typing.get_type_hints(
            SimpleNamespace(__annotations__=annotations), run.__globals__, include_extras=True
        )
    except NameError as error:  # a type imported only `if TYPE_CHECKING:`: pydantic needs it as the app runs
        raise ExposeError(f"{name}: cannot read the annotations of its parameters: {error}") from error
    fields: dict[str, Any] = {
        each.name: (hints.get(each.name, Any), ... if each.default is each.empty else each.default)
        for each in parameters
    }
    try:
        with warnings.catch_warnings():  # a parameter named `validate`, `copy`, `schema` hides BaseModel's old methods
            warnings.filterwarnings("ignore", r"Field name .* shadows an attribute in parent", UserWarning)
            model: type[BaseModel] = create_model(name, __config__=STRICT_JSON, **fields)
    except PydanticUserError as error:  # a type pydantic cannot check, such as a client's class
        reason = str(error).split(". ")[0]  # not pydantic's advice, for a model made here
        raise ExposeError(f"{name}: {reason}: make it a pydantic model, or a type pydantic knows") from error
    return model
