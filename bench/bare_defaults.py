"""A bare Celery app with Celery's OWN defaults: the reference bench/defaults.py compares the factory's to.

    FLASK_CONFIG=bench.yaml celery -A bench.bare_defaults worker --include=app.tasks

Only the broker and result backend URLs are set, read from FLASK_CONFIG's `celery:`
section; none of the factory's defaults apply (app/settings/celery_defaults.py): acks
early, a prefetch of 4 a process, no STARTED state, no time limits, Celery's own Redis
backend. No project code is imported here, so nothing of the factory's (its kombu and
Redis fixes included) is in the worker but the sample task it is given with `--include`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import yaml
from celery import Celery

# The tasks' names as bench.tasks.NOOP and bench.drains.STORED_NOOP register them; written
# out, not imported: no project code is imported here (see above).
NOOP = "bench.noop"
STORED_NOOP = "bench.stored_noop"
NOW = "bench.now"


def urls() -> dict[str, str]:
    """broker_url and result_backend from the bench's config file (FLASK_CONFIG), nothing else."""
    settings = yaml.safe_load(Path(os.environ["FLASK_CONFIG"]).read_text())["celery"]
    return {"broker_url": settings["broker_url"], "result_backend": settings["result_backend"]}


celery = Celery("bare-defaults")
celery.conf.update(urls())


@celery.task(name=NOOP, ignore_result=True)  # type: ignore[untyped-decorator]
def noop() -> None:
    """Nothing, as bench.tasks.noop: its result is not stored."""


@celery.task(name=STORED_NOOP)  # type: ignore[untyped-decorator]
def stored_noop() -> None:
    """Nothing, as bench.drains.stored_noop: its result (None) is stored."""


@celery.task(name=NOW)  # type: ignore[untyped-decorator]
def now() -> str:
    """The time, as bench.tasks.now: the worker of Flask's example's pattern end to end (bench/dispatch.py)."""
    return datetime.now(UTC).isoformat()
