"""Sphinx settings for the documentation (`nox -s docs`: warnings are errors).

The template's and a service's alike: copier copies this file and the `generated` extension
as they are, and the project's name comes from app/service.py, which it writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).parent
# The repository, for `app` (the generated pages call create_app()), and the local extension.
sys.path[:0] = [str(DOCS.parent), str(DOCS / "_ext")]

from app.service import NAME  # noqa: E402  (needs the path above)

project = NAME
extensions = ["myst_parser", "generated"]
# Heading anchors make `page.md#a-heading` links checked targets: a broken one is a warning.
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = project
# Nothing fetched from elsewhere at build or read time: no mermaid, no external intersphinx.
nitpicky = True
