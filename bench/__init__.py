"""Benchmarks of the running stack: `nox -s bench` (see README, "Benchmarks")."""

from pathlib import Path

# The repository: gunicorn, the workers and pytest run from here.
ROOT = Path(__file__).resolve().parents[1]
