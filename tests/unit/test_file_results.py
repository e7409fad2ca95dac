"""The file result backend that writes records whole (app/fixes/file_results.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from celery import Celery
from celery.backends.filesystem import FilesystemBackend

from app.fixes.file_results import WholeRecordFilesystemBackend


@pytest.mark.parametrize(
    ("backend_class", "torn"),
    [(FilesystemBackend, True), (WholeRecordFilesystemBackend, False)],
    ids=["celerys-own-tears-records", "whole-records"],
)
def test_a_reader_never_sees_a_record_half_written(
    tmp_path: Path, backend_class: type[FilesystemBackend], torn: bool
) -> None:
    """While one thread rewrites a record, another reads it: always whole (Celery's own: sometimes empty)."""
    backend = backend_class(app=Celery(), url=f"file://{tmp_path}")
    record = b"x" * 100_000
    backend.set(b"record", record)
    seen: set[int] = set()
    done = threading.Event()

    def rewrite() -> None:
        while not done.is_set():
            backend.set(b"record", record)

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        for _ in range(20_000):
            seen.add(len(backend.get(b"record") or b""))
            if len(seen) > 1:  # a torn read: enough
                break
    finally:
        done.set()
        writer.join()
    assert (seen != {len(record)}) is torn
    assert [path.name for path in tmp_path.iterdir() if path.suffix == ".part"] == []  # no part file left


def test_a_stored_result_reads_back(tmp_path: Path) -> None:
    """A task's record, which Celery's JSON serializer hands over as text, is read back as stored."""
    backend = WholeRecordFilesystemBackend(app=Celery(set_as_current=False), url=f"file://{tmp_path}")
    backend.store_result("task-1", {"answer": "naïve 42"}, "SUCCESS")
    meta = backend.get_task_meta("task-1")
    assert (meta["status"], meta["result"]) == ("SUCCESS", {"answer": "naïve 42"})
