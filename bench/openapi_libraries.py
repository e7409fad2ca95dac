"""Today's expose() beside APIFlask, flask-openapi3 and flask-smorest: lines, behaviour, CPU per POST.

    python -m bench.openapi_libraries [--rounds N] [--posts N] [--venv DIR]

Issue 20 asks whether a library serving schema -> validation -> OpenAPI should replace the
hand-written app/web/task_api.py and contract.py. bench/openapi_prototypes/ rebuilds
expose() on each; this installs the pinned libraries beside requirements.txt into a
virtual environment of its own (temporary, unless --venv names one to keep), and there
sends every app the same requests (today's unit tests' cases), then measures the CPU of a
process POSTing to /task/ through Flask's test client (as bench/post_cost.py's
IN_PROCESS does), the apps in turn, each round starting with the next (A B C D, B C D
A, ...). No services: memory:// broker, cache+memory:// result backend, no worker,
authentication off.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tokenize
from pathlib import Path
from typing import Any

from bench import ROOT

PINS = ["apiflask==3.1.2", "flask-openapi3==4.3.2", "flask-smorest==0.47.0"]
WEB, PROTOTYPES = ROOT / "app" / "web", ROOT / "bench" / "openapi_prototypes"
Part = tuple[Path, set[str] | None]  # a whole file, or only its named top-level functions and constants
# What the library approaches keep of today's: JSON errors and results, the YAML; pydantic's, the signature's model.
KEPT: list[Part] = [(WEB / "contract.py", {"http_error_as_json", "_written", "JSONProvider"})]
STRICT: list[Part] = [*KEPT, (WEB / "task_api.py", {"STRICT_JSON", "signature_model"})]
READING: Part = (WEB / "contract.py", {"json_object", "_number", "_refuse"})


def approach(module: str, *files: str, kept: list[Part]) -> tuple[str, list[Part]]:
    """A prototype: its module (its create_app()), its own files (whole), and what it keeps of today's."""
    return f"bench.openapi_prototypes.{module}", [*((PROTOTYPES / name, None) for name in files), *kept]


# Each approach: its module, and what it would put in app/ for expose() and /openapi.json.
APPROACHES: dict[str, tuple[str, list[Part]]] = {
    "today": ("bench.openapi_prototypes", [(WEB / "task_api.py", None), (WEB / "contract.py", None)]),
    "APIFlask 3.1.2": approach("apiflask_app", "shared.py", "signature.py", "apiflask_app.py", kept=STRICT),
    "flask-openapi3 4.3.2": approach("openapi3_app", "shared.py", "signature.py", "openapi3_app.py", kept=STRICT),
    "flask-smorest 0.47.0": approach("smorest_app", "shared.py", "smorest_app.py", kept=KEPT),
    "APIFlask, today's answers": approach(
        "apiflask_same", "shared.py", "signature.py", "apiflask_app.py", "apiflask_same.py", kept=[*STRICT, READING]
    ),
}
CONFIG = {
    "auth": False,
    "secret_key": "bench",
    "limits": {"start_rate": "1000000/second", "unfinished_tasks": 1000000, "storage_url": "memory://"},
    "sample_task_seconds": 0,
    "celery": {"broker_url": "memory://", "result_backend": "cache+memory://"},
}
JSON = "application/json"
# (what, path, the test client's keyword arguments, status, words the error message must hold): from tests/unit.
CASES: list[tuple[str, str, dict[str, Any], int, tuple[str, ...]]] = [
    ("no body", "/task/", {}, 202, ()),
    ("empty object", "/task/", {"json": {}}, 202, ()),
    ("seconds null", "/task/", {"json": {"seconds": None}}, 202, ()),
    ("unknown parameter", "/task/", {"json": {"seconds": 1, "a": 3}}, 400, ("a:",)),
    ("seconds a string", "/task/", {"json": {"seconds": "5"}}, 400, ("seconds:",)),
    ("seconds a boolean", "/task/", {"json": {"seconds": True}}, 400, ("seconds:",)),
    ("seconds negative", "/task/", {"json": {"seconds": -0.001}}, 400, ("seconds:",)),
    ("seconds past the maximum", "/task/", {"json": {"seconds": 240.001}}, 400, ("seconds:", "240")),
    ("NaN", "/task/", {"data": '{"seconds": NaN}', "content_type": JSON}, 400, ()),
    ("not an object", "/task/", {"json": [1]}, 400, ()),
    ("malformed JSON", "/task/", {"data": "{bad", "content_type": JSON}, 400, ()),
    ("nested too deep", "/task/", {"data": "[" * 5000, "content_type": JSON}, 400, ()),
    ("form-encoded", "/task/", {"data": "seconds=1", "content_type": "application/x-www-form-urlencoded"}, 415, ()),
    ("oversized", "/task/", {"data": "{}" + " " * 16 * 1024, "content_type": JSON}, 413, ()),
    ("oversized, chunked", "/task/", {"chunked": 16 * 1024 + 1}, 413, ()),
    ("invoice", "/invoices/", {"json": {"invoice_id": 7, "amount_cents": 5}}, 202, ()),
    ("invoice id 7.0", "/invoices/", {"data": '{"invoice_id": 7.0, "amount_cents": 5}', "content_type": JSON}, 202, ()),
    ("invoice id a string", "/invoices/", {"json": {"invoice_id": "7", "amount_cents": 5}}, 400, ("invoice_id:",)),
    ("invoice negative", "/invoices/", {"json": {"invoice_id": 7, "amount_cents": -1}}, 400, ("amount_cents:",)),
    ("invoice empty", "/invoices/", {"json": {}}, 400, ("invoice_id:", "amount_cents:")),
]


def line_counts(path: Path, names: set[str] | None = None) -> tuple[int, int]:
    """Its lines (those of the top-level `names` only, if given), and of those the ones holding code.

    Code: not blank, not only a comment, not part of a docstring.
    """
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    kept = {*range(1, len(source.splitlines()) + 1)} if names is None else set()
    for node in tree.body:
        if names is not None and _defined(node) in names:
            first = min([node.lineno] + [decorator.lineno for decorator in getattr(node, "decorator_list", [])])
            kept.update(range(first, (node.end_lineno or 0) + 1))
    docstrings = {
        line
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and ast.get_docstring(node) is not None
        for line in range(node.body[0].lineno, (node.body[0].end_lineno or 0) + 1)
    }
    skipped = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    code = {token.start[0] for token in tokens if token.type not in skipped} - docstrings
    return len(kept), len(code & kept)


def _defined(node: ast.stmt) -> str | None:
    """The name a top-level statement defines: a function's or class's, a constant's."""
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    return getattr(node, "name", None)


def lines_table() -> str:
    """Markdown: each approach's files, their lines and code lines."""
    rows = ["| approach | files | lines | code lines |", "|---|---|---|---|"]
    for name, (_, parts) in APPROACHES.items():
        counts = [line_counts(path, names) for path, names in parts]
        named = ", ".join(path.name + (f" ({', '.join(sorted(names))})" if names else "") for path, names in parts)
        rows.append(f"| {name} | {named} | {sum(c[0] for c in counts)} | {sum(c[1] for c in counts)} |")
    return "\n".join(rows)


def chunked(size: int) -> dict[str, Any]:
    """The test client's keyword arguments for a `size`-byte "{}   ..." body sent without Content-Length."""
    return {
        "input_stream": io.BytesIO(b"{}" + b" " * (size - 2)),
        "content_type": JSON,
        "headers": {"Transfer-Encoding": "chunked"},
        "environ_overrides": {"wsgi.input_terminated": True},  # as gunicorn and Werkzeug's server set it
    }


def differences(flask_app: Any) -> list[str]:
    """What `flask_app` answers otherwise than today's API and its description do: [] if nothing."""
    found, client = [], flask_app.test_client()
    for what, path, request, status, words in CASES:
        response = client.post(path, **(chunked(request["chunked"]) if "chunked" in request else request))
        error = (response.json or {}).get("error", {}) if response.is_json else {}
        if response.status_code != status or (status >= 400 and error.get("code") != status):
            found.append(f"{what}: {response.status_code}, not {status}")
        elif not all(word in error.get("message", "") for word in words):
            found.append(f"{what}: message {error.get('message')!r}")
    first = client.post("/task/", json={"seconds": 1}, headers={"Idempotency-Key": "k"})
    again = client.post("/task/", json={"seconds": 1}, headers={"Idempotency-Key": "k"})
    other = client.post("/task/", json={"seconds": 2}, headers={"Idempotency-Key": "k"})
    if (again.json["task_id"], other.status_code) != (first.json["task_id"], 422):
        found.append("Idempotency-Key")
    followed = [client.get(first.headers["Location"]).status_code, client.delete(first.headers["Location"]).status_code]
    if followed != [200, 202]:
        found.append(f"GET, DELETE /task/<id>: {followed}")
    flask_app.config["SAMPLE_TASK_MAX_SECONDS"] = 12.5
    spec = client.get("/openapi.json").json
    flask_app.config["SAMPLE_TASK_MAX_SECONDS"] = 240
    served = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method)
        for rule in flask_app.url_map.iter_rules()
        if rule.endpoint not in ("static", "contract.openapi")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    if {(path, method.upper()) for path, item in spec["paths"].items() for method in item} != served:
        found.append("description: not every route, or more")
    if '"maximum": 12.5' not in json.dumps(spec):
        found.append("description: the configured maximum")
    required = [spec["paths"][path]["post"]["requestBody"].get("required", False) for path in ("/task/", "/invoices/")]
    if required != [False, True]:
        found.append(f"description: body required {required}, not [False, True]")
    return found


def inside(rounds: int, posts: int) -> dict[str, Any]:
    """In the libraries' environment: each app's differences, then its CPU µs per POST /task/ in each round."""
    apps = {name: importlib.import_module(module).create_app() for name, (module, _) in APPROACHES.items()}
    found: dict[str, Any] = {"differences": {name: differences(app) for name, app in apps.items()}}
    clients = {name: app.test_client() for name, app in apps.items()}
    for client in clients.values():  # warm-up
        for _ in range(200):
            assert client.post("/task/", json={"seconds": 0}).status_code == 202
    found["cpu"] = {name: [] for name in apps}
    names = list(apps)
    for turn in range(rounds):
        for name in names[turn % len(names) :] + names[: turn % len(names)]:  # each first in turn: A B C, B C A, ...
            started = time.process_time()
            for _ in range(posts):
                clients[name].post("/task/", json={"seconds": 0})
            found["cpu"][name].append(1e6 * (time.process_time() - started) / posts)
            apps[name].extensions["celery"].control.purge()  # the memory broker keeps what no worker takes
            # The memory store of unfinished_tasks.py walks every id it keeps on each start: a cost that grows.
            apps[name].extensions["started_tasks"] = type(apps[name].extensions["started_tasks"])()
    return found


def environment(folder: Path) -> Path:
    """A virtual environment in `folder` (made unless there) with requirements.txt and PINS; its Python."""
    python = folder / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    # Two calls: requirements.txt's hashes put pip in --require-hashes mode, which PINS (versions only) fail.
    for wanted in (["-r", str(ROOT / "requirements.txt")], PINS):
        subprocess.run([str(python), "-m", "pip", "install", "-q", *wanted], check=True, stdout=subprocess.DEVNULL)
    return python


def main() -> None:
    """`python -m bench.openapi_libraries`: the lines table, then each approach's differences and CPU."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="measures of each app, in turn (default: 30)")
    parser.add_argument("--posts", type=int, default=200, help="POSTs per measure (default: 200)")
    parser.add_argument("--venv", type=Path, help="keep the libraries' environment here (made if missing)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        print(json.dumps(inside(args.rounds, args.posts)))
        return
    print(lines_table())
    with tempfile.TemporaryDirectory() as folder:
        python = environment(args.venv or Path(folder) / "venv")
        config = Path(folder) / "config.json"
        config.write_text(json.dumps(CONFIG))
        config.chmod(0o600)
        env = {**os.environ, "FLASK_CONFIG": str(config), "PYTHONPATH": str(ROOT)}
        command = [str(python), "-m", "bench.openapi_libraries", "--inside", f"--rounds={args.rounds}"]
        done = subprocess.run([*command, f"--posts={args.posts}"], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(done.stderr[-3000:])
    from bench.report import Row, table  # here: it imports the services' helpers, which the libraries' venv lacks

    found = json.loads(done.stdout.splitlines()[-1])
    print("\n| approach | answers otherwise than today |\n|---|---|")
    for name, listed in found["differences"].items():
        print(f"| {name} | {'; '.join(listed) or 'nothing'} |")
    today = next(iter(APPROACHES))
    rows = [Row("POST /task/, CPU", name, values, "µs", today) for name, values in found["cpu"].items()]
    print(f"\n{table(rows)}")


if __name__ == "__main__":
    main()
