"""The generated README's "Your first task", applied as a reader would: block by block, literally.

Each code block of that section names its file on its first line (``# app/tasks.py``).
A ``python`` block is a new file, or is added at the end of a file that exists; a ``diff``
block edits a file: in each of its parts (separated by ``@@`` lines) the lines marked
``-`` and the context lines must appear in the file once, and become the ``+`` and
context lines.
"""

from __future__ import annotations

import re
from pathlib import Path

SECTION = "\n## Your first task\n"
# What that section adds, which the tests look for: the files it touches, in order, and its tests.
FILES = ["app/tasks.py", "app/routes.py", "tests/unit/test_invoices.py", "tests/integration/test_invoices.py"]
UNIT_TESTS = {"test_an_invoice_is_rendered", "test_a_negative_amount_is_refused"}
INTEGRATION_TEST = "test_an_invoice_is_rendered_by_a_worker"
BLOCK = re.compile(r"^```(python|diff)\n# (\S+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(readme: str) -> list[tuple[str, str, str]]:
    """The section's code blocks, as (kind, file, body)."""
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return BLOCK.findall(section)


def follow(service: Path) -> list[str]:
    """Do what the service's README says to add its first task; the files touched, in order."""
    touched = []
    for kind, name, body in blocks((service / "README.md").read_text(encoding="utf-8")):
        target = service / name
        if kind == "diff":
            _edit(target, body)
        elif target.exists():
            target.write_text(target.read_text(encoding="utf-8") + "\n\n" + body, encoding="utf-8")
        else:
            target.write_text(body, encoding="utf-8")
        touched.append(name)
    return touched


def _edit(target: Path, diff: str) -> None:
    for part in re.split(r"^@@\n", diff, flags=re.MULTILINE):
        lines = part.splitlines()
        old = "".join(f"{line[1:]}\n" for line in lines if line[:1] in (" ", "-"))
        new = "".join(f"{line[1:]}\n" for line in lines if line[:1] in (" ", "+"))
        text = target.read_text(encoding="utf-8")
        if text.count(old) != 1:
            raise AssertionError(f"{target.name}: the guide's lines are not in it (once):\n{old}")
        target.write_text(text.replace(old, new), encoding="utf-8")
