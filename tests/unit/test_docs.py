"""The README's and docs' command blocks: each runs as written, in a fresh copy of the repository, or says why not."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ROOT
from tests.commands import AMBIGUOUS, COMMANDS, PAGES, blocks, fresh_copy, script, skip_reason

RUN = [page for page in PAGES if any(block.language in COMMANDS and not block.skip for block in blocks(page))]
# A network namespace of the blocks' own, where user namespaces are allowed (some CI runners
# forbid them: there the blocks share the machine's loopback, as a reader's shell would).
NAMESPACE = ["unshare", "--map-root-user", "--net", "sh", "-c", 'ip link set lo up && exec bash "$0"']
_PROBE = [*NAMESPACE[:-1], "ip link set lo up"]
ISOLATED = bool(shutil.which("unshare")) and subprocess.run(_PROBE, capture_output=True).returncode == 0


# A Markdown link's target; a heading's line.
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_command_block_runs_or_says_why_not(page: Path) -> None:
    """A `sh` or `python` block is run, or the comment before it gives the reason it is not; no other shell fences."""
    page_blocks = blocks(page)
    assert [block.where for block in page_blocks if block.language in AMBIGUOUS] == []
    assert [block.where for block in page_blocks if block.skip is not None and not skip_reason(block)] == []
    assert [block.where for block in page_blocks if block.background and block.language != "sh"] == []


@pytest.mark.parametrize("page", RUN, ids=_name)
def test_a_pages_commands_run_as_written_in_a_fresh_copy(page: Path, tmp_path: Path) -> None:
    """Its blocks run in order in one shell, in a copy as cloned, on a loopback of their own where the machine allows.

    There, in a new network namespace, a server a block starts on a fixed port (the quick
    start's 8080) meets nothing else on the machine, and no block reaches the network.
    """
    commands = tmp_path / "commands.sh"
    commands.write_text(script(blocks(page)), encoding="utf-8")
    clone = fresh_copy(tmp_path / "clone")
    environ = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    shell = NAMESPACE if ISOLATED else ["bash"]
    done = subprocess.run([*shell, str(commands)], cwd=clone, env=environ, capture_output=True, text=True)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def test_the_readmes_links_reach_a_file_and_its_heading() -> None:
    """Each relative link of the README (outside the docs' build) names a file that exists, and a heading of it."""
    broken = []
    for target in LINK.findall((ROOT / "README.md").read_text(encoding="utf-8")):
        if "://" in target:
            continue
        path, _, anchor = target.partition("#")
        linked = ROOT / (path or "README.md")
        if not linked.is_file() or (anchor and anchor not in _anchors(linked)):
            broken.append(target)
    assert broken == []


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub (and MyST's heading anchors) give the page's headings."""
    return {_slug(heading) for heading in HEADING.findall(page.read_text(encoding="utf-8"))}


def _slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
