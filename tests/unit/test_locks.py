"""The requirements locks: each source (requirements*.in) compiled, every dependency pinned with its hashes.

`nox -s lock` compiles them (uv); compiling again here would need the network, so these checks read the
files: a source changed without its lock recompiled, or a lock edited by hand, fails them.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests import ROOT

SOURCES = pytest.mark.parametrize(
    "source", sorted(ROOT.glob("requirements*.in")), ids=lambda source: source.name.removesuffix(".in")
)
# One package of a lock as uv writes it: the pin and its markers, its hashes, then `# via` lines
# naming what needs it (`-r requirements.in` for a source's own requirements).
ENTRY = re.compile(
    r"^(?P<name>[A-Za-z0-9][\w.-]*)==(?P<version>[^\s;]+)(?: ; [^\\\n]+)? \\\n"
    r"(?P<hashes>(?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)"
    r"(?P<via>(?:    #.*\n)*)",
    re.MULTILINE,
)


class Pin(NamedTuple):
    """A locked release: its version and the hashes of its files."""

    version: str
    hashes: frozenset[str]


class Source(NamedTuple):
    """What a source names: its requirements and those of the sources it includes (-r), and the locks of both."""

    requirements: list[Requirement]
    included: list[Path]
    constraints: list[Path]


def read_source(path: Path) -> Source:
    """The source at `path`, the sources it includes (-r) read into it."""
    source = Source([], [], [])
    for line in path.read_text().splitlines():
        line = line.split(" #")[0].strip()
        option, _, argument = line.partition(" ")
        if option == "-r":
            included = read_source(path.parent / argument)
            source.requirements.extend(included.requirements)
            source.included.extend([path.parent / argument, *included.included])
            source.constraints.extend(included.constraints)
        elif option == "-c":
            source.constraints.append(path.parent / argument)
        elif line and not line.startswith("#"):
            source.requirements.append(Requirement(line))
    return source


def read_lock(path: Path) -> dict[str, set[Pin]]:
    """Each package of the lock at `path` (a source's path names its lock): its pins, several where markers fork it."""
    pins: dict[str, set[Pin]] = {}
    for entry in ENTRY.finditer(path.with_suffix(".txt").read_text()):
        hashes = frozenset(re.findall(r"sha256:(\w+)", entry["hashes"]))
        pins.setdefault(canonicalize_name(entry["name"]), set()).add(Pin(entry["version"], hashes))
    return pins


def direct_names(path: Path) -> set[str]:
    """The packages the lock of `path` says a source asked for (`# via -r <source>.in`)."""
    entries = ENTRY.finditer(path.with_suffix(".txt").read_text())
    return {canonicalize_name(entry["name"]) for entry in entries if re.search(r"-r \S+\.in\b", entry["via"])}


@SOURCES
def test_every_line_of_a_lock_is_a_pin_with_its_hashes_or_a_comment(source: Path) -> None:
    """No unpinned, unhashed, editable or URL line, which `pip install --require-hashes` would refuse."""
    text = source.with_suffix(".txt").read_text()
    left = [line for line in ENTRY.sub("", text).splitlines() if line and not line.startswith("#")]
    assert (left, bool(ENTRY.search(text))) == ([], True)


@SOURCES
def test_a_lock_has_the_requirements_of_its_source_at_versions_it_allows(source: Path) -> None:
    """Added, removed or re-pinned in the source without `nox -s lock`: the lock disagrees."""
    requirements = read_source(source).requirements
    pins = read_lock(source)
    assert direct_names(source) == {canonicalize_name(requirement.name) for requirement in requirements}
    refused = [
        f"{requirement} locked at {pin.version}"
        for requirement in requirements
        for pin in pins[canonicalize_name(requirement.name)]
        if not requirement.specifier.contains(pin.version, prereleases=True)
    ]
    assert refused == []


@SOURCES
def test_a_lock_has_what_the_extras_its_source_asks_for_need(source: Path) -> None:
    """An extra added to the source (`celery[auth]`) without `nox -s lock` leaves its packages (cryptography) out.

    Read from the installed distributions: the unit tier runs on the development lock, which has them.
    """
    pins = read_lock(source)
    missing = []
    for requirement in (requirement for requirement in read_source(source).requirements if requirement.extras):
        for needed in map(Requirement, metadata.requires(requirement.name) or []):
            environments = [{"extra": extra} for extra in requirement.extras]
            wanted = needed.marker is None or any(needed.marker.evaluate(env) for env in environments)
            if wanted and canonicalize_name(needed.name) not in pins:
                missing.append(f"{needed.name} (for {requirement})")
    assert missing == []


@SOURCES
def test_a_lock_pins_what_its_constraints_and_included_sources_lock_exactly_as_they_do(source: Path) -> None:
    """The development lock has the runtime lock's versions and files, and so on for every `-c` and `-r` layer.

    So the locks installed side by side (runtime and OpenTelemetry, development and docs) never disagree.
    """
    pins = read_lock(source)
    layers = read_source(source)
    # Each layer's lock, and whether all of it must be here (an included source's) or only what both have.
    locks = {path.with_suffix(".txt"): False for path in layers.constraints}
    locks.update({path.with_suffix(".txt"): True for path in layers.included})
    differ = [
        f"{name}: {lock.name} locks {sorted(layer_pins)}"
        for lock, whole in locks.items()
        for name, layer_pins in read_lock(lock).items()
        if (whole or name in pins) and pins.get(name) != layer_pins
    ]
    assert differ == []
