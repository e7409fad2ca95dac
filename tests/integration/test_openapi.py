"""Fuzz the API against its own OpenAPI description, with a real broker, backend and worker."""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

import pytest
from celery.worker import WorkController
from flask import Blueprint, Flask

from app.web.auth import new_token
from app.web.task_api import expose
from tests.integration.conftest import WriteConfig, create_app_from
from tests.tasks import typed_task

if TYPE_CHECKING:
    import schemathesis

pytestmark = pytest.mark.integration


@pytest.fixture
def secured_app(write_config: WriteConfig, embedded_worker: WorkController) -> Flask:
    """An app with authentication on, on the session worker's queue, and its one client's token in `TOKEN`.

    Beside the sample it exposes a task of typed parameters (a datetime, a UUID, a decimal, an Enum).
    """
    app = create_app_from(write_config("main", auth={"tokens": {"fuzzer": TOKEN_LINE.split(": ", 1)[1].strip('"')}}))
    typed = Blueprint("typed", __name__)
    expose(typed, "/typed/", typed_task)
    app.register_blueprint(typed)
    return app


TOKEN, TOKEN_LINE = new_token("fuzzer")


def test_api_matches_its_openapi_description(secured_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated valid and invalid requests, with the client's token: never a 5xx, every response as described.

    Schemathesis also sends each operation with a wrong token, and expects the 401.
    """
    app = secured_app
    # The tasks it starts stay short (the description served states the limit too).
    monkeypatch.setitem(app.config, "SAMPLE_TASK_MAX_SECONDS", 0.1)
    # Operations are iterated here rather than with `schema.parametrize()`, whose fixture
    # support (schemathesis 4.32) breaks on pytest 9. Imported here: loading schemathesis
    # and hypothesis takes a second, which the unit tier's collection need not pay.
    import schemathesis
    from hypothesis import given, settings
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    # Every route served but the description itself: a task exposed with expose() adds its own.
    served = {
        (method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in ("static", "contract.openapi")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert {(operation.method.upper(), operation.path) for operation in operations} == served

    for operation, mode in itertools.product(operations, GenerationMode):
        takes_input = any(operation.iter_parameters()) or len(operation.body) > 0
        if mode is GenerationMode.NEGATIVE and not takes_input:
            continue  # nothing to make invalid

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=40, deadline=None, database=None)
        def check(case: schemathesis.Case) -> None:
            # A key the generator repeats with other parameters is rightly 422, which this
            # check would take for a valid request refused.
            reused_key = "Idempotency-Key" in (case.headers or {})
            excluded = [positive_data_acceptance] if reused_key else []
            case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, excluded_checks=excluded)

        check()
    # The tasks the fuzzer queued are of no interest; later tests should not wait behind them.
    app.extensions["celery"].control.purge()
