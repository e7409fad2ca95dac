"""Celery's file result backend, writing each record whole.

Celery's ``FilesystemBackend.set`` empties a record's file, then writes it: a reader in
between, such as ``GET /task/<id>`` while the task reports its progress, reads an empty
record, which is taken for one that does not exist (404) and does not decode as a state.
Here a record is written to a file of its own in the same folder, then renamed over the
old one (atomic). A write takes a lock file of the folder first and moves a task's state
only forward (final_states.py), so that processes sharing the folder cannot write over
each other's SUCCESS, FAILURE or REVOKED. CELERY_DEFAULTS selects this class for
``file://`` URLs. Reproduction and proposed Celery change: docs/upstream.md.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from typing import Any

from celery.backends.filesystem import FilesystemBackend

from app.fixes.final_states import replaces, status


class WholeRecordFilesystemBackend(FilesystemBackend):  # type: ignore[misc]
    """Celery's file backend whose readers see a record's old content or its new one, never part."""

    def set(self, key: Any, value: Any) -> None:
        path = self._filename(key)  # bytes, as Celery keeps its folder and keys
        suffix = f".{uuid.uuid4().hex}.part"
        written = path + (suffix.encode() if isinstance(path, bytes) else suffix)
        with self.open(self._filename(b".lock"), "ab") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released as the file closes
            if not replaces(status(self.get(key)), status(value)):
                return
            with self.open(written, "wb") as output:
                output.write(value if isinstance(value, bytes) else str(value).encode())
            os.replace(written, path)
