"""Message signing with a real broker and worker: a signed task runs; a forged or unsigned message is dropped unrun."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from celery import Celery, states
from celery.security.certificate import Certificate
from celery.security.key import PrivateKey
from celery.security.serialization import SecureSerializer
from flask import Flask
from kombu import Connection
from kombu.serialization import dumps

from tests.integration.conftest import RUN, WriteConfig, cli_worker, create_app_from, wait_for_state
from tests.signing import Signer, kombu_serializers_kept, write_signer
from tests.tasks import echoed_task

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Signing:
    """A web app that signs, its worker, the worker's log and queue, and the folder of its key."""

    app: Flask
    worker: subprocess.Popen[bytes]
    log: Path
    queue: str
    folder: Path
    service: Signer


@pytest.fixture(scope="module")
def signing(write_config: WriteConfig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signing]:
    """A web app and a `celery worker` (a process of its own) signing with the service's key, on queues of their own.

    Remote control too: a `shutdown` broadcast on the session's exchange would reach its embedded worker.
    """
    folder = tmp_path_factory.mktemp("signing")
    service = write_signer(folder, "service")
    path = write_config("signing", celery={**service.settings(), "control_exchange": f"{RUN}.signing"})
    log = folder / "worker.log"
    with kombu_serializers_kept(), cli_worker(path, log, "--loglevel=info", "--include=tests.tasks") as worker:
        app = create_app_from(path)
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text():  # from then on its remote control listens (a broadcast is not queued)
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield Signing(app, worker, log, app.extensions["celery"].conf.task_default_queue, folder, service)
    with Connection(app.extensions["celery"].conf.broker_url) as connection:  # the run's own are removed at its end
        for exchange in (f"{RUN}.signing.pidbox", f"reply.{RUN}.signing.pidbox"):
            connection.default_channel.exchange_delete(exchange)


def test_a_signing_worker_runs_what_the_signing_app_started(signing: Signing) -> None:
    """POST /task/ signs the task's message; the worker verifies it and runs the task: GET says SUCCESS."""
    client = signing.app.test_client()
    task_id = client.post("/task/").json["task_id"]
    wait_for_state(client, f"/task/{task_id}", "SUCCESS", timeout=60)


def forger(signer: Signer) -> Callable[[object], tuple[str, str, bytes]]:
    """Celery's own signing serializer, with `signer`'s key and certificate instead of the service's."""
    serializer = SecureSerializer(PrivateKey(signer.key.read_text()), Certificate(signer.certificate.read_text()))
    return lambda body: ("application/data", "utf-8", serializer.serialize(body))


@pytest.mark.parametrize(
    ("encode", "rejection"),
    [
        pytest.param(
            lambda signing: lambda body: dumps(body, serializer="json"),
            "Refusing to deserialize untrusted content of type json (application/json)",
            id="unsigned-json",
        ),
        pytest.param(
            lambda signing: forger(write_signer(signing.folder, "stranger")),
            "Unknown certificate",
            id="signed-by-an-unknown-certificate",
        ),
        pytest.param(
            lambda signing: forger(write_signer(signing.folder, "impostor", like=signing.service.certificate)),
            "Can't decode message body",
            id="signed-by-another-key-as-the-services-certificate",
        ),
    ],
)
def test_a_forged_or_unsigned_message_is_dropped_without_running(
    signing: Signing, encode: Callable[[Signing], Callable[[object], tuple[str, str, bytes]]], rejection: str
) -> None:
    """Published straight to the worker's queue: the worker logs its refusal and drops it; the task never runs.

    A signed task sent after it succeeds: the worker, which takes its queue's messages in
    order, was past the forged one. Its id stays PENDING, and the queue is empty (not requeued).
    """
    celery_app, client = signing.app.extensions["celery"], signing.app.test_client()
    task_id = str(uuid.uuid4())
    celery_app.backend.store_result(task_id, None, states.PENDING)  # as the API records a task it starts
    message = celery_app.amqp.create_task_message(task_id, echoed_task.name, (task_id,), {})
    content_type, content_encoding, body = encode(signing)(message.body)
    logged_before = signing.log.stat().st_size
    with Connection(celery_app.conf.broker_url) as connection:
        connection.Producer().publish(
            body,
            exchange="",
            routing_key=signing.queue,
            declare=[celery_app.amqp.queues[signing.queue]],  # the worker may not have declared it yet
            headers=message.headers,
            content_type=content_type,
            content_encoding=content_encoding,
            **message.properties,
        )
    signed_after = client.post("/task/").json["task_id"]
    wait_for_state(client, f"/task/{signed_after}", "SUCCESS", timeout=60)
    logged = signing.log.read_bytes()[logged_before:].decode()
    assert rejection in logged and task_id in logged, logged
    assert f"{echoed_task.name}[{task_id}]" not in logged, logged  # never received as a task, nor run
    assert client.get(f"/task/{task_id}").json["state"] == "PENDING"
    with Connection(celery_app.conf.broker_url) as connection:
        assert connection.default_channel.queue_declare(signing.queue, passive=True).message_count == 0


def test_remote_control_is_signed_too(signing: Signing) -> None:
    """A `shutdown` broadcast in plain JSON is refused; the signing app's ping, queued after it, is answered."""
    celery_app = signing.app.extensions["celery"]
    logged_before = signing.log.stat().st_size
    unsigned = Celery(set_as_current=False, broker=celery_app.conf.broker_url)
    unsigned.conf.control_exchange = celery_app.conf.control_exchange
    try:
        unsigned.control.shutdown()
    finally:
        unsigned.close()
    assert [list(reply.values()) for reply in celery_app.control.ping(timeout=30, limit=1)] == [[{"ok": "pong"}]]
    logged = signing.log.read_bytes()[logged_before:].decode()
    assert "Refusing to deserialize untrusted content of type json" in logged, logged
    assert signing.worker.poll() is None
