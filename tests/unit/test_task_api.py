"""A task of the user's, exposed: served as the sample is, or refused as the app is made (app/web/task_api.py).

And what GET answers for it (app/routes.py, contract.py's JSONProvider): its own states and results.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import uuid
from decimal import Decimal
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import pytest
from celery import Celery, Task, shared_task
from celery.contrib.abortable import AbortableTask
from flask import Blueprint, Flask
from kombu.utils.json import dumps, loads
from pydantic import BaseModel, create_model

from app import create_app, create_app_or_exit, routes, tasks
from app.settings import ConfigError
from app.web import task_api
from app.web.task_api import ExposeError, expose
from tests.tasks import TYPED_BODY, TYPED_RESULT, echoed_task, typed_task
from tests.unit.conftest import IN_MEMORY_CONFIG, WriteConfig
from tests.unit.test_routes import app_exposing

if TYPE_CHECKING:
    from pathlib import Path  # for the type checker only, as a service's own tasks may import


@shared_task(ignore_result=True)  # type: ignore[untyped-decorator]
def unrecorded_task() -> None:
    """A task whose state Celery never stores."""


@shared_task(base=AbortableTask)  # type: ignore[untyped-decorator]
def abortable_task() -> None:
    """A task of a base class of Celery's own, not the factory's."""


@shared_task  # type: ignore[untyped-decorator]
def positional_task(invoice_id: int, /, *lines: int) -> None:
    """Parameters no keyword can give."""


@shared_task  # type: ignore[untyped-decorator]
def open_ended_task(**options: Any) -> None:
    """Any keyword at all."""


@shared_task  # type: ignore[untyped-decorator]
def checked_only_task(path: Path) -> None:
    """A parameter whose type exists for the type checker alone."""


@shared_task  # type: ignore[untyped-decorator]
def renamed_task(name: str) -> Path:  # type: ignore[empty-body]
    """A return type that exists for the type checker alone: only the parameters' count."""


@shared_task  # type: ignore[untyped-decorator]
def rendered_task(kind: str) -> Any:
    """Answer a value JSON has no type for."""
    return {"bytes": b"%PDF-1.7\xff", "date": dt.date(2025, 1, 2), "nested": [{"at": dt.time(3, 4)}]}[kind]


@shared_task  # type: ignore[untyped-decorator]
def checked_task(copy: str, validate: bool) -> list[object]:
    """Parameters named as BaseModel's old methods are."""
    return [copy, validate]


def line_model(field: str) -> type[BaseModel]:
    """A structure named Line with one integer `field`, as two modules may each have one."""
    return create_model("Line", **{field: (int, ...)})


LineOfItems, LineOfHours = line_model("item"), line_model("hours")


@shared_task  # type: ignore[untyped-decorator]
def itemised_task(line: LineOfItems) -> None:  # type: ignore[valid-type]
    """A parameter of one Line."""


@shared_task  # type: ignore[untyped-decorator]
def timed_task(line: LineOfHours) -> None:  # type: ignore[valid-type]
    """A parameter of another Line."""


# A task of a Celery app other than the factory's.
stranger_task = Celery(set_as_current=False).task(name="stranger", shared=False)(echoed_task.run)


class Client:
    """A class of the user's, which pydantic cannot check."""


@shared_task  # type: ignore[untyped-decorator]
def connected_task(client: Client) -> None:
    """A parameter pydantic has no schema for."""


class Size(enum.Enum):
    """An Enum inside a structure."""

    LARGE = "large"


class Parcel(BaseModel):
    """A structure holding an Enum."""

    size: Size


@shared_task  # type: ignore[untyped-decorator]
def tagged_task(
    tags: set[str], folder: PurePosixPath, parcel: Parcel, when: dt.datetime, label: str = ""
) -> list[object]:
    """Parameters kombu's JSON has no type for (a set, a path, an Enum in a structure), one it has, one left out."""
    return [sorted(tags), folder, parcel, when, label]


@shared_task(bind=True, pydantic=True)  # type: ignore[untyped-decorator]
def parcel_task(self: Task, parcel: Parcel) -> str:
    """Bound, and given the structure as such by Celery's pydantic=True."""
    return type(parcel).__name__


@pytest.mark.parametrize(
    ("rule", "task", "message"),
    [
        ("/unrecorded/", unrecorded_task, r"unrecorded_task has ignore_result=True"),
        ("/abortable/", abortable_task, r"abortable_task is not of the factory.s task class"),
        ("/stranger/", stranger_task, r"expose\('/stranger/'\): stranger is no task of this app's Celery"),
        ("/invoices/<int:invoice_id>", echoed_task, r"a rule without variables"),
        ("/positional/", positional_task, r"positional_task: .* none to invoice_id, lines$"),
        ("/open/", open_ended_task, r"open_ended_task: .* none to options"),
        ("/checked/", checked_only_task, r"checked_only_task: .*name 'Path' is not defined"),
        (
            "/connected/",
            connected_task,
            r"connected_task: Unable to .* for <class .*Client'>: make it a pydantic model",
        ),
    ],
    ids=[
        "stores-no-state",
        "another-base",
        "another-celery-app",
        "variable-rule",
        "positional-only",
        "any-keyword",
        "type-checking-only",
        "no-schema",
    ],
)
def test_a_task_expose_cannot_serve_is_refused_as_the_app_is_made(
    write_config: WriteConfig, rule: str, task: Task, message: str
) -> None:
    """Instead of a 404 for ever, a PENDING for ever or a 500 at each POST: create_app() fails, naming it."""
    with pytest.raises(ExposeError, match=message):
        app_exposing(write_config, rule, task)


@shared_task(name="billing.typed_task")  # type: ignore[untyped-decorator]
def billing_typed_task() -> None:
    """Another module's `typed_task`: the same short name, so the same endpoint."""


def test_two_tasks_of_one_short_name_on_one_blueprint_are_refused(write_config: WriteConfig) -> None:
    """Their endpoints would clash (Flask's assertion, a traceback): an ExposeError saying what to rename."""
    write_config()
    bp = Blueprint("clash", __name__)
    expose(bp, "/typed/", typed_task)
    expose(bp, "/typed/again/", billing_typed_task)
    with pytest.raises(ExposeError, match=r"expose\('/typed/again/'\): another task is start_typed_task on this"):
        create_app().register_blueprint(bp)


def test_an_entrypoint_refusing_a_task_prints_one_line_and_exits_2(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As for a bad config: the reason on one line of stderr, status 2, no traceback."""
    write_config()
    bp = Blueprint("tasks", __name__)
    expose(bp, "/unrecorded/", unrecorded_task)
    monkeypatch.setattr(routes, "bp", bp)  # the routes a service's own routes.py would give
    with pytest.raises(SystemExit) as caught:
        create_app_or_exit()
    assert caught.value.code == 2
    assert capsys.readouterr() == (
        "",
        f"error: expose('/unrecorded/'): {unrecorded_task.name} has ignore_result=True,"
        " but GET /task/<id> reads its state\n",
    )


def test_a_config_that_stores_no_state_is_refused_with_the_exposed_task_named(write_config: WriteConfig) -> None:
    """``celery.task_ignore_result: true`` with the sample exposed: a ConfigError naming the file and the key."""
    path = write_config({**IN_MEMORY_CONFIG, "celery": {**IN_MEMORY_CONFIG["celery"], "task_ignore_result": True}})
    with pytest.raises(ConfigError) as raised:
        create_app()
    assert (raised.value.source, raised.value.key) == (str(path), "celery.task_ignore_result")
    assert raised.value.reason == (
        f"expected false: GET /task/<id> reads the state of {tasks.sample_task.name} (or give it ignore_result=False)"
    )


def test_a_return_type_for_the_type_checker_alone_is_not_read(write_config: WriteConfig) -> None:
    """Only the parameters' annotations make the schema: the task is served."""
    response = app_exposing(write_config, "/renamed/", renamed_task).test_client().post("/renamed/", json={"name": "a"})
    assert response.status_code == 202


def test_dates_uuids_decimals_and_enums_are_read_as_json_writes_them(write_config: WriteConfig) -> None:
    """Read strictly from ISO 8601, a UUID's or a decimal's text, an Enum's value: the task gets the types."""
    client = app_exposing(write_config, "/typed/", typed_task).test_client()
    location = client.post("/typed/", json=TYPED_BODY).headers["Location"]
    assert client.get(location).json["result"] == TYPED_RESULT
    response = client.post("/typed/", json={**TYPED_BODY, "when": "2 January"})
    assert (response.status_code, response.json["error"]["message"]) == (
        400,
        "Parameter when: Input should be a valid datetime, input is too short.",
    )


def test_dates_uuids_and_decimals_are_sent_as_such_and_fingerprinted(
    write_config: WriteConfig, sent: list[dict[str, Any]]
) -> None:
    """The message carries each as kombu's JSON does, as its type; an Enum as its value, which JSON has."""
    client = app_exposing(write_config, "/typed/", typed_task).test_client()
    replays = [client.post("/typed/", json=TYPED_BODY, headers={"Idempotency-Key": "typed"}) for _ in range(2)]
    assert [response.json["task_id"] for response in replays] == [replays[0].json["task_id"]] * 2
    assert len(sent) == 1  # the fingerprint reads dates and decimals too: the replay queued nothing
    kwargs = sent[0]["kwargs"]
    assert (
        loads(dumps(kwargs))
        == kwargs
        == {
            "when": dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
            "ref": uuid.UUID(int=1),
            "amount": Decimal("12.50"),
            "colour": "red",
        }
    )


def test_a_progress_state_of_the_tasks_own_is_answered_without_a_fraction(write_config: WriteConfig) -> None:
    """PROGRESS with a meta of the task's own (Celery's docs' current/total): the state, and no `progress`."""
    write_config()
    app = create_app()
    client, task_id = app.test_client(), str(uuid.uuid4())
    app.extensions["celery"].backend.store_result(task_id, {"current": 1, "total": 3}, "PROGRESS")
    assert client.get(f"/task/{task_id}").json == {"task_id": task_id, "state": "PROGRESS"}


@pytest.mark.parametrize(
    ("kind", "result"),
    [("bytes", "JVBERi0xLjf/"), ("date", "2025-01-02"), ("nested", [{"at": "03:04:00"}])],
    ids=["bytes-in-base64", "date-in-iso-8601", "nested-time"],
)
def test_a_result_json_has_no_type_for_is_answered_in_a_standard_form(
    write_config: WriteConfig, kind: str, result: object
) -> None:
    """Bytes in base64, dates and times in ISO 8601 wherever they are (Flask's own would say a date in HTTP's form)."""
    client = app_exposing(write_config, "/rendered/", rendered_task).test_client()
    location = client.post("/rendered/", json={"kind": kind}).headers["Location"]
    assert client.get(location).json["result"] == result


def test_a_task_called_as_a_function_runs_through_its_checkpoints(app: Flask) -> None:
    """``sample_task(seconds=0)``, as a unit test of a task calls it: no task id, nothing recorded, no error."""
    with app.app_context():
        assert isinstance(tasks.sample_task(seconds=0), dt.datetime)


def test_parameters_named_as_basemodels_methods_are_taken(write_config: WriteConfig) -> None:
    """`copy` or `validate` only hide BaseModel's deprecated methods: no warning (an error in a test run), served."""
    client = app_exposing(write_config, "/checked/", checked_task).test_client()
    location = client.post("/checked/", json={"copy": "a", "validate": True}).headers["Location"]
    assert client.get(location).json["result"] == ["a", True]


def test_two_structures_of_one_name_are_described_apart(write_config: WriteConfig) -> None:
    """Each task's `Line` is its own component, and each body refers to its own."""
    app = app_exposing(write_config, "/items/", itemised_task)
    extra = Blueprint("hours", __name__)
    expose(extra, "/hours/", timed_task)
    app.register_blueprint(extra)
    spec = app.test_client().get("/openapi.json").json
    refs = [
        spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]["line"][
            "$ref"
        ]
        for path in ("/items/", "/hours/")
    ]
    described = [spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]["required"] for ref in refs]
    assert described == [["item"], ["hours"]]


def test_what_kombus_json_cannot_carry_is_sent_as_json_has_it(
    write_config: WriteConfig, sent: list[dict[str, Any]]
) -> None:
    """A set as a list, a path as text, an Enum in a structure as its value: never an EncodeError at publish (500).

    Only those parameters: a datetime beside them is still sent as one. As the message of any body does, it
    carries the body's parameters only: the task applies its own defaults.
    """
    client = app_exposing(write_config, "/tagged/", tagged_task).test_client()
    body = {"tags": ["a"], "folder": "/srv/in", "parcel": {"size": "large"}, "when": "2025-01-02T03:04:05Z"}
    assert client.post("/tagged/", json=body).status_code == 202
    kwargs = sent[0]["kwargs"]
    assert loads(dumps(kwargs)) == kwargs == {**body, "when": dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)}


def test_a_bound_task_with_celerys_pydantic_option_gets_its_structure(write_config: WriteConfig) -> None:
    """Under Celery's pydantic=True wrapper, `self` stays out of the body; the task gets a Parcel, not a dict."""
    client = app_exposing(write_config, "/parcels/", parcel_task).test_client()
    location = client.post("/parcels/", json={"parcel": {"size": "large"}}).headers["Location"]
    assert client.get(location).json["result"] == "Parcel"


def test_a_task_exposed_at_two_rules_is_described_at_both(write_config: WriteConfig) -> None:
    """One blueprint registered twice: both paths in /openapi.json, their body described in place."""
    app = app_exposing(write_config, "/items/", itemised_task)
    again = Blueprint("items-again", __name__)
    expose(again, "/items/again/", itemised_task)
    app.register_blueprint(again)
    paths = app.test_client().get("/openapi.json").json["paths"]
    bodies = [
        paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        for path in ("/items/", "/items/again/")
    ]
    assert bodies[0] == bodies[1]
    assert bodies[0]["required"] == ["line"]


def test_a_body_too_deep_for_the_check_is_a_400_saying_so(write_config: WriteConfig) -> None:
    """Valid JSON nested past pydantic's limit, in a parameter that takes any: 400 saying why, not naming ``""``."""
    response = (
        app_exposing(write_config, "/echoed/", echoed_task)
        .test_client()
        .post("/echoed/", data='{"value": ' + "[" * 300 + "]" * 300 + "}", content_type="application/json")
    )
    assert (response.status_code, response.json["error"]["message"]) == (
        400,
        "The body cannot be checked: Invalid JSON: recursion limit exceeded.",
    )


def test_a_decimals_text_is_described_with_the_pattern_a_post_takes(write_config: WriteConfig) -> None:
    """A client (or a fuzzer) that sends text matching the description is not refused, and other text does not match."""
    app = app_exposing(write_config, "/typed/", typed_task)
    spec = app.test_client().get("/openapi.json").json
    amount = spec["paths"]["/typed/"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    text = next(branch for branch in amount["amount"]["anyOf"] if branch["type"] == "string")
    matched = [bool(re.search(text["pattern"], value)) for value in ("12.50", "-1E3", "LIMITS", "1e" + "9" * 19)]
    assert matched == [True, True, False, False]
    posted = app.test_client().post("/typed/", json={**TYPED_BODY, "amount": "-1e3"})
    assert posted.status_code == 202


def test_an_idempotency_keys_request_is_known_by_its_body_as_sent(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not by the arguments made of it: a set's order there differs between processes, the body's does not."""
    client = app_exposing(write_config, "/tagged/", tagged_task).test_client()
    fingerprinted: list[object] = []

    def submit_once(celery_app: Celery, key: str, parameters: dict[str, Any], submit: Any) -> str:
        fingerprinted.append(parameters)
        return str(submit(None))

    monkeypatch.setattr(task_api, "submit_once", submit_once)
    body = {"tags": ["b", "a", "c"], "folder": "/srv", "parcel": {"size": "large"}, "when": "2025-01-02T03:04:05Z"}
    assert client.post("/tagged/", json=body, headers={"Idempotency-Key": "k"}).status_code == 202
    assert fingerprinted == [{tagged_task.name: body}]
