"""The benchmarks' tasks on a bare Celery app (no Flask, no app context), for comparison.

celery -A bench.bare worker    # reads FLASK_CONFIG like the real worker
"""

from datetime import UTC, datetime

from celery import Celery

from app.settings import load_config
from app.settings.celery_defaults import celery_settings
from bench.tasks import NOOP, NOW

celery = Celery("bare")
celery.config_from_object(celery_settings(load_config()["CELERY"]))


@celery.task(name=NOOP, ignore_result=True)  # type: ignore[untyped-decorator]
def noop() -> None:
    """Nothing, as bench.tasks.noop."""


@celery.task(name=NOW, ignore_result=False)  # type: ignore[untyped-decorator]
def now() -> str:
    """The time, as bench.tasks.now."""
    return datetime.now(UTC).isoformat()
