"""Workarounds for faults of Celery, kombu and py-amqp: delete one once a release fixes it (its tests say when)."""

from __future__ import annotations

import fnmatch
import functools
import logging
from importlib import metadata

logger = logging.getLogger(__name__)

# The releases the workarounds were proven on (the code they rely on: tests/unit/test_upstream_canaries.py).
PROVEN = {"celery": "5.7.0", "kombu": "5.7.*", "amqp": "5.4.2"}


def _warn_if_unproven() -> None:
    """One line when Celery, kombu or py-amqp is a release the workarounds were not proven on."""
    unproven = ", ".join(
        f"{package} {installed} (proven on {proven})"
        for package, proven in PROVEN.items()
        if not fnmatch.fnmatchcase(installed := metadata.version(package), proven)
    )
    if unproven:
        logger.warning("not the upstream releases app/fixes/ was proven on: %s; see docs/upstream.md", unproven)


# Once per process, though every create_app() calls it (a function of its own: mutmut mutates no decorated one).
warn_if_unproven = functools.cache(_warn_if_unproven)
