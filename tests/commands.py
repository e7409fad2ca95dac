"""The command blocks of the README and docs/, and the script that runs them as a reader would.

A ``sh`` or ``python`` fenced block is a command the reader runs. The HTML comment just before
one may say it is not run, and why (sybil's ``<!-- skip: next "reason" -->``), or that it
starts a server that keeps running (``<!-- background: URL -->``): the next blocks run once
URL answers, and the server gets Ctrl+C (SIGINT to its process group) at the end.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import NamedTuple

from sybil import Document
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer, FencedCodeBlockLexer

from tests import ROOT

COMMANDS = ("sh", "python")
# Fences a reader would take for commands but which no evaluator knows: use `sh` or `python`.
AMBIGUOUS = ("bash", "shell", "console", "py", "pycon", "zsh")
PAGES = [ROOT / "README.md", *sorted(ROOT.glob("docs/*.md"))]
# What `git clone` would not bring: the developer's caches, builds, local data and secrets.
_NOT_CLONED = shutil.ignore_patterns(
    ".git", ".venv", ".nox", "*_cache", "__pycache__", "_build", "mutants", "artifacts", "htmlcov", ".coverage*"
)


class Block(NamedTuple):
    """A fenced code block: where it is, its language and source, and what the comment before it says."""

    where: str
    language: str
    source: str
    skip: str | None = None
    background: str | None = None


def blocks(page: Path) -> list[Block]:
    """Every fenced block of `page` with a language, in order, each with its directive (if any)."""
    document = Document(page.read_text(encoding="utf-8"), str(page))
    regions = [
        *FencedCodeBlockLexer(language=r"\S+")(document),
        *DirectiveInHTMLCommentLexer(directive="skip|background", arguments=".+?")(document),
    ]
    found: list[Block] = []
    directive: dict[str, str] = {}
    for region in sorted(regions, key=lambda region: region.start):
        lexemes = region.lexemes
        if "directive" in lexemes:
            directive = {lexemes["directive"]: lexemes["arguments"].strip()}
            continue
        line = document.text.count("\n", 0, region.start) + 1
        where = f"{page.relative_to(ROOT)}:{line}"
        found.append(Block(where, lexemes["language"], str(lexemes["source"]), **directive))
        directive = {}
    return found


def skip_reason(block: Block) -> str:
    """The reason a skip directive gives (``next "reason"``), or '' when it gives none."""
    when, _, reason = (block.skip or "").partition(" ")
    return reason.strip().strip('"') if when == "next" else ""


def script(page_blocks: list[Block]) -> str:
    """A bash script running each block that is not skipped, in order, in one shell, as a reader pastes them."""
    # Job control (-m): each server in a process group of its own, which Ctrl+C's SIGINT reaches whole.
    stop = 'for pid in "${servers[@]}"; do kill -INT -- "-$pid" || true; done; wait'
    lines = ["set -euo pipefail", "set -m", "servers=()", f"trap '{stop}' EXIT"]
    for block in page_blocks:
        if block.language not in COMMANDS or block.skip:
            continue
        lines.append(f"echo {shlex.quote('== ' + block.where)} >&2")
        body = block.source if block.language == "sh" else f"python - <<'PYTHON_BLOCK'\n{block.source}PYTHON_BLOCK"
        if block.background:
            log = shlex.quote(f"server-{len(lines)}.log")
            lines += [f"(\n{body}) >{log} 2>&1 &", 'servers+=("$!")']
            lines.append(f"until curl -sf {shlex.quote(block.background)} >/dev/null; do")
            lines.append(f'  kill -0 "$!" 2>/dev/null || {{ cat {log} >&2; exit 1; }}; sleep 0.1; done')
        else:
            lines.append(body)
    return "\n".join(lines) + "\n"


def fresh_copy(destination: Path) -> Path:
    """The repository as a clone of it would be: no caches, virtualenvs, local data or secrets."""
    shutil.copytree(ROOT, destination, ignore=_not_cloned, symlinks=True)
    return destination


def _not_cloned(folder: str, names: list[str]) -> set[str]:
    left_out = set(_NOT_CLONED(folder, names))
    path = Path(folder)
    if path.parent == ROOT / "var":
        left_out |= {name for name in names if name != ".gitkeep"}
    if path == ROOT / "secrets":
        left_out |= {name for name in names if not name.endswith(".example.yaml")}
    return left_out
