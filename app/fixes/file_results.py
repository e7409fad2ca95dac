"""Celery's file result backend, writing each record whole, its states only forward (final_states.py).

Celery's ``FilesystemBackend.set`` empties a record, then writes it: a reader in between
(``GET`` while the task reports progress) sees no record (404). CELERY_DEFAULTS selects this
class for ``file://``. Delete once Celery writes a record whole (the template's docs/upstream.md).
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
        written = path + f".{uuid.uuid4().hex}.part".encode()
        with self.open(self._filename(b".lock"), "ab") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released as the file closes
            if not replaces(status(self.get(key)), status(value)):
                return
            with self.open(written, "wb") as output:
                output.write(value if isinstance(value, bytes) else str(value).encode())
            os.replace(written, path)
