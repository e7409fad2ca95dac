"""Canaries: each fails when upstream code that a workaround of app/fixes/ replaces or relies on changes.

The workarounds were proven against this code (docs/upstream.md); when it changes, what they
assume may no longer hold, and nothing else would say so. The "upstream still has the fault"
tests are beside each fix's own (test_kombu_poll.py, test_upstream_faults.py, ...).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import textwrap
from importlib import metadata

import pytest

# The one record of the upstream code each workaround depends on, and how (the comments): the SHA-256 of its
# source as the installed file has it (a patch applied in memory does not count), dedented, decorators included;
# the workaround in app/fixes/; the code, as module:qualified.name.
RECORDED = """
# amqp_blocked.py replaces py-amqp's handler of connection.blocked, which only calls a callback kombu never
# gives it, and which each connection binds when it is made; it drops the connection as collect() does; kombu
# gives up at once on the error it raises (ensure() retries only recoverable errors).
ccfcb015852f584b956aa6820e949edd7c731ecc3a59748425daed66b53f405f  fixes/amqp_blocked.py amqp.connection:Connection._on_blocked
de0856a51512401fc54c3b86fc4181c7e5263f2d700f1398e649d19d3cd0cda0  fixes/amqp_blocked.py amqp.connection:Connection._setup_listeners
6a32b27307f1a0e8f1f6187af1ecf4319abe71c6c66271fe3af0ca753c68b055  fixes/amqp_blocked.py amqp.connection:Connection.collect
e77d745e84b04091f4c9cabf53a21d82eb6e10dbb20fb425f32e63dd7f94ce90  fixes/amqp_blocked.py kombu.transport.pyamqp:Transport.establish_connection
4075a112eb4c764334465299ccdbd9c929f7119e31381859503e36377cd5bc11  fixes/amqp_blocked.py kombu.connection:Connection.ensure
# database_results.py wraps prepare_models, which retries create_all on any DatabaseError (unreachable too),
# and gives its own SessionManager the engine callback DatabaseBackend.__init__ resolved.
28e27882fa2a0c0904ad6ba1359856c4aa6248a719c678a95d2ecccd621f906d  fixes/database_results.py celery.backends.database.session:SessionManager.prepare_models
89f8f1c9b2b554705cc08b5952e7e487bca5dc461dff22ae2a097d7333a84360  fixes/database_results.py celery.backends.database.session:SessionManager.__init__
cbe8767382448b0b07a800f9083256312004116c6822582b4b58dbced5c054fa  fixes/database_results.py celery.backends.database:DatabaseBackend.__init__
# file_results.py replaces set (opens with "wb", which empties the record, then writes); get is the reader,
# _filename the path both use.
56ba9b0f99db8748b4b68206ef5ad5d515aa5129ed5832f56bbd24a9298a5173  fixes/file_results.py celery.backends.filesystem:FilesystemBackend.set
0d9b97a19d61aec7e07032651a03ce1d036c65e1424c5666fe8fb864fe9ab599  fixes/file_results.py celery.backends.filesystem:FilesystemBackend.get
68c1965921a934a98129290e812d170650b202e8a99bbd04a4d12240dded4c5b  fixes/file_results.py celery.backends.filesystem:FilesystemBackend._filename
# kombu_poll.py wraps each poller _create_poller makes (from __init__, the poller property, reset) because
# create_loop polls with its full timeout while call_soon, from the loop's own thread, does not wake it; it is
# installed at worker_init, which setup_instance sends before the hub exists; the callback that waits is
# Celery's late ack (call_soon_ack).
186a2b494b6da57e7f7ec98c03281b0b6fbc003bce504ee22a1b2fb64ab0d362  fixes/kombu_poll.py kombu.asynchronous.hub:Hub.create_loop
9ec88f2af16789a8db4928a7ae79b83e3eb4fb8f36e5139ebd430f89fa80ab87  fixes/kombu_poll.py kombu.asynchronous.hub:Hub.call_soon
b999c2a4d7aceb26183b1f2453624184b9f59fa4dc686778b712110a0fc49585  fixes/kombu_poll.py kombu.asynchronous.hub:Hub._create_poller
d94c0e52cda419de2cd7a3d691079cc3161ea0cfa251fa86e0c45ae3163ee29b  fixes/kombu_poll.py kombu.asynchronous.hub:Hub.reset
5a893d4afe10a2a6cb40b168add3ab24bf83df53bd8a1c8a9e03debcbe3d7dec  fixes/kombu_poll.py kombu.asynchronous.hub:Hub.poller
b57f055d07759c08946b1d102ca19055f7b935fd652e2da9f835bd3813649b81  fixes/kombu_poll.py celery.worker.worker:WorkController.setup_instance
bdb21bba911d22b72fa792823e2c4a2c06ef2fab97aaf704c46894a2cf1f6091  fixes/kombu_poll.py celery.worker.consumer.consumer:Consumer.call_soon_ack
# redis_results.py replaces on_task_call (subscribes as it sends), _store_result (reads, then writes) and _set
# (SETEX or SET, then PUBLISH); its task writes do what set does (size check, then ensure: retries), others go
# through set; they mirror _set_with_state;
# AsyncResult.get() still subscribes when it starts to wait (_add_pending_result).
3aefd80e320b7a134ee7b5bf08dd60f5126c3347d715d132f560c3b8fb720a07  fixes/redis_results.py celery.backends.redis:RedisBackend.on_task_call
f43059ebe446d43d25b6c4cca6d4daa53da6ec086d897b46482b9584e8c070d3  fixes/redis_results.py celery.backends.base:BaseKeyValueStoreBackend._store_result
7996c210d39a35ef17fb5d5412b854dd2a8930595eeb2a454d7ef61ee20ae044  fixes/redis_results.py celery.backends.redis:RedisBackend._set
a6ef6953d47016a113d4639750ad3a87b01df3d52cacf33d9f42514f4757a23d  fixes/redis_results.py celery.backends.redis:RedisBackend.set
f2739e9621f14f6be8a5c45f7427d3b4cd1c142f0aa6f1e1b7d9f31f8546385a  fixes/redis_results.py celery.backends.redis:RedisBackend._set_with_state
fc71f93392abd0bcd2e29c4e7ac444316883ca281941fa6ab869171565e04232  fixes/redis_results.py celery.backends.asynchronous:AsyncBackendMixin._add_pending_result
# redis_waits.py wraps _wait_for_pending, which reads once (on_wait_for_pending, the read it repeats, before it sets
# the caller's on_message), then has the drain loop call on_interval after each wait (drain_events: one message,
# or a second of none); _consume_from sends SUBSCRIBE without waiting for Redis's reply.
355cdaac17af0f6bebcdd2fe10d0d0af903651d375b591151702437185b030c9  fixes/redis_waits.py  celery.backends.asynchronous:BaseResultConsumer._wait_for_pending
b7fd23cc08c3cf2ef036239563e3c0f075792106f70dc62b63f6cac218112bff  fixes/redis_waits.py  celery.backends.asynchronous:Drainer.drain_events_until
860a23c8135465a911442d0a5be246c9030e1a07e2cd84c1ed0f072c95d1d0f9  fixes/redis_waits.py  celery.backends.redis:ResultConsumer.on_wait_for_pending
40717fd9ddbfac3d4cb4e648963d08039cc688a264507821a227e1c80e0e3707  fixes/redis_waits.py  celery.backends.redis:ResultConsumer.drain_events
b6f9ae001f2e7d16e2df22fe7adaedebbb10e760c215e3220e6f4f50ab2ff33c  fixes/redis_waits.py  celery.backends.redis:ResultConsumer._consume_from
# fixes/malformed_messages.py wraps the default strategy's handler: the consumer rejects InvalidTaskError from it
# and stops the worker on anything else; the strategy and Request.__init__ unpack the body into three.
3107b2ffefc9347f326bfa66599a5a1ea1813b15f98dd257ee5d57964c0c4e4c  fixes/malformed_messages.py celery.worker.consumer.consumer:Consumer.create_task_handler
7d90575ada5eb1dc30982842b3fc836dbca2cf0b801594ad6d5e1b9e2836dd63  fixes/malformed_messages.py celery.worker.strategy:default
ba563d6610efd1434df4f90866908f7c64db0b916e254071600ee8de131afddb  fixes/malformed_messages.py celery.worker.request:Request.__init__
# fixes/final_states.py: the cache backend's set is replaced under a lock; the database backend's _store_result
# locks an existing row and hands it to _update_result, where a state that is to stay is kept.
9f8da41fcee674917c4b6cf3359745a7e64e20d8f1129cb3544654fb7274faf0  fixes/final_states.py celery.backends.cache:CacheBackend.set
387e892b14f1ea3001e49752f3fe5eaa2dc43986f87384a6df1832c81a3b8770  fixes/final_states.py celery.backends.database:DatabaseBackend._store_result
6ab9372bba1205b3790e2d34db85a0994c2191fe3827e6f74b39019b815ae6b5  fixes/final_states.py celery.backends.database:DatabaseBackend._update_result
# tasking/runs.py and celery_app.FlaskTask: the tracer calls a custom __call__ with the request pushed, stores
# STARTED before it only when track_started (off here: only_run stores it), acknowledges on Ignore and stores
# nothing; a held-back duplicate is sent again with signature_from_request; retries are Celery's autoretry,
# whose backoff factor and cap are whole seconds.
b2945aec38e1872e25bfb625e3857a10776fb3192954be239881aed915dc3dc4  tasking/runs.py     celery.app.trace:build_tracer
c665698a780cc4d34a8ecad840f65f1475ee613b3bf4e8e4b18c4e4e6ae85195  tasking/runs.py     celery.app.task:Task.signature_from_request
4a97591ccc3e0012dfca2310af5deb574710ec813e07531fc3ae6c68641aa08f  celery_app.py       celery.app.autoretry:add_autoretry_behaviour
101854a643d79cd6c9ce360b328a91e107f3a191e0d6337e2b86d00b31a68598  celery_app.py       celery.utils.time:get_exponential_backoff_interval
"""  # noqa: E501
ROWS = [line.split() for line in RECORDED.splitlines() if line and not line.startswith("#")]


def upstream_source(name: str) -> str:
    """The source of `module:Class.function` as its module's file has it, dedented; empty if it is gone."""
    module, _, qualified_name = name.partition(":")
    source = inspect.getsource(importlib.import_module(module))
    node: ast.FunctionDef | ast.ClassDef | ast.Module = ast.parse(source)
    for part in qualified_name.split("."):
        found = next((child for child in ast.iter_child_nodes(node) if getattr(child, "name", None) == part), None)
        if not isinstance(found, ast.FunctionDef | ast.ClassDef):
            return ""
        node = found
    first = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
    return textwrap.dedent("".join(source.splitlines(keepends=True)[first - 1 : node.end_lineno]))


@pytest.mark.parametrize(("recorded", "fix", "name"), ROWS, ids=[name for _, _, name in ROWS])
def test_upstream_code_is_what_the_workaround_was_proven_against(recorded: str, fix: str, name: str) -> None:
    """The installed upstream function hashes as recorded; the message says what changed and what to do."""
    source = upstream_source(name)
    actual = hashlib.sha256(source.encode()).hexdigest()
    package = name.split(".", 1)[0]
    changed = "is not the code that workaround was proven against" if source else "is gone"
    assert actual == recorded, (
        f"upstream code changed: {name} ({package} {metadata.version(package)} installed), which "
        f"app/{fix} replaces or relies on, {changed}. "
        f"Re-read it; check that the workaround's reasoning (its docstring, docs/upstream.md) still holds and its "
        f"tests and the reproduction in docs/upstream.md still pass; then record its new SHA-256 in "
        f"tests/unit/test_upstream_canaries.py: {actual}"
    )
