"""Start a new service from this repository, with its own package name.

    python scripts/new_service.py orders ../orders-service

copies the tracked files to the destination, renames the package `app` to `orders` and
rewrites what names it (imports, dotted names in strings, paths in the tooling files),
then the new project's `nox -s unit` passes as this one's does.
"""

from __future__ import annotations

import argparse
import keyword
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "flask-celery-factory"
# This script and its test stay behind: the new service has no use for them.
LEFT_OUT = {"scripts/new_service.py", "tests/unit/test_new_service.py"}
# And so does what names them: README's section and tier rows, the CI step, mypy's folder.
LEFT_OUT_TEXT = [
    re.compile(r"^## Start a new service from this repository\n.*?(?=^## )", re.MULTILINE | re.DOTALL),
    re.compile(r"^\| template \|.*\n", re.MULTILINE),
    re.compile(r"^ *- run: nox -s tests -- -m template.*\n", re.MULTILINE),
    re.compile(r'"scripts", |, `scripts/`'),
]


def rewrite(text: str, package: str, project: str) -> str:
    """`text` with the package `app` (not Flask's `app` objects) renamed to `package`."""
    text = re.sub(r"\b(from|import) app\b", rf"\1 {package}", text)  # import statements
    text = re.sub(r"""(['"])app(['".:])""", rf"\g<1>{package}\2", text)  # "app.routes.submit", 'app:create_app()'
    text = re.sub(r"(?<![\w/.-])app/", f"{package}/", text)  # paths: app/openapi.yaml
    text = text.replace("COPY app /app/app", f"COPY {package} /app/{package}")  # the Dockerfile
    text = text.replace("!app\n", f"!{package}\n")  # .dockerignore
    for pattern in LEFT_OUT_TEXT:
        text = pattern.sub("", text)
    return text.replace(PROJECT, project)


def tracked_files() -> list[str]:
    listing = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [path for path in listing.splitlines() if path not in LEFT_OUT]


def generate(package: str, destination: Path) -> None:
    """Write the new project into `destination` (which must not exist yet)."""
    project = destination.resolve().name
    destination.mkdir(parents=True)
    for path in tracked_files():
        target = destination / re.sub(r"^app/", f"{package}/", path)
        target.parent.mkdir(parents=True, exist_ok=True)
        source = ROOT / path
        try:
            target.write_text(rewrite(source.read_text(encoding="utf-8"), package, project), encoding="utf-8")
        except UnicodeDecodeError:
            target.write_bytes(source.read_bytes())
        target.chmod(source.stat().st_mode)
    # The new name sorts elsewhere among the imports (`orders` after `bench`): re-sort them.
    sort = [sys.executable, "-m", "ruff", "check", "--quiet", "--select", "I", "--fix", "."]
    if subprocess.run(sort, cwd=destination, capture_output=True).returncode != 0:
        print("could not sort the imports: run `ruff check --select I --fix .` there", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", help="the new package name, a lower-case Python identifier")
    parser.add_argument("destination", type=Path, help="a folder that does not exist yet")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", args.package) or keyword.iskeyword(args.package):
        parser.error(f"{args.package!r} is not a lower-case Python identifier")
    if args.package in sys.stdlib_module_names or args.package in ("app", "celery", "flask", "tests", "bench"):
        parser.error(f"{args.package!r} would shadow a module the project imports")
    if args.destination.exists():
        parser.error(f"{args.destination} already exists")
    generate(args.package, args.destination)
    print(f"created {args.destination}: cd there, `git init`, then `nox -s unit`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
