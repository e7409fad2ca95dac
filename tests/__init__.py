"""The test suite; ROOT is the repository, where subprocesses run `cli.py` and the worker."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
