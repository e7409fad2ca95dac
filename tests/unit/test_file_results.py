"""The file result backend that writes records whole (app/fixes/file_results.py)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import IO

from celery import Celery
from celery.backends.filesystem import FilesystemBackend

from app.fixes.file_results import WholeRecordFilesystemBackend


def test_a_reader_never_sees_a_record_half_written(tmp_path: Path) -> None:
    """While one thread rewrites a record, another reads it, 20,000 times: always whole."""
    backend = WholeRecordFilesystemBackend(app=Celery(set_as_current=False), url=f"file://{tmp_path}")
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
    finally:
        done.set()
        writer.join()
    assert seen == {len(record)}
    assert [path.name for path in tmp_path.iterdir() if path.suffix == ".part"] == []  # no part file left


def read_while_rewriting(backend_class: type[FilesystemBackend], tmp_path: Path) -> list[bytes | None]:
    """What a reader sees of a record between the moment its rewrite opens a file and the moment it writes."""
    seen: list[bytes | None] = []

    def open_then_read(path: bytes, mode: str) -> IO[bytes]:
        opened: IO[bytes] = open(path, mode)  # noqa: SIM115  (returned open, as `open` itself)
        if "w" in mode:
            seen.append(backend.get(b"record"))
        return opened

    backend = backend_class(app=Celery(set_as_current=False), url=f"file://{tmp_path}")
    backend.set(b"record", b"old")
    backend.open = open_then_read  # the `open` it was given, as Celery allows
    backend.set(b"record", b"new")
    assert backend.get(b"record") == b"new"
    return seen


def test_a_reader_sees_the_old_record_until_the_new_one_is_whole(tmp_path: Path) -> None:
    """Between a rewrite's open and its write, a reader still reads the old record."""
    assert read_while_rewriting(WholeRecordFilesystemBackend, tmp_path) == [b"old"]


def test_upstream_celerys_file_backend_still_empties_a_record_before_writing_it(tmp_path: Path) -> None:
    """Celery's own FilesystemBackend.set opens the record with "wb": a reader in between reads an empty file."""
    seen = read_while_rewriting(FilesystemBackend, tmp_path)
    assert seen == [b""], (
        f"upstream fixed Celery's FilesystemBackend.set: a reader during a rewrite saw {seen}, not an empty "
        "record: remove app/fixes/file_results.py (docs/upstream.md)"
    )


def test_a_stored_result_reads_back(tmp_path: Path) -> None:
    """A task's record, which Celery's JSON serializer hands over as text, is read back as stored."""
    backend = WholeRecordFilesystemBackend(app=Celery(set_as_current=False), url=f"file://{tmp_path}")
    backend.store_result("task-1", {"answer": "naïve 42"}, "SUCCESS")
    meta = backend.get_task_meta("task-1")
    assert (meta["status"], meta["result"]) == ("SUCCESS", {"answer": "naïve 42"})
