"""wrk driving the soak: a POST, then a GET of a Location answered, in turn, until enough POSTs were answered."""

from __future__ import annotations

import re
import signal
import subprocess
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass

CLIENTS = 16
THREADS = 2

# Each wrk thread keeps the Locations its POSTs were answered in a FIFO and GETs the oldest
# whenever it has one, else POSTs: POSTs and GETs alternate, each task is read once. Each
# thread prints its count of POSTs answered every PROGRESS_EVERY; the caller interrupts
# wrk once they add up to the target. (A thread that stopped itself early would leave
# connections open that gunicorn's sync workers wait on, stalling the other threads.)
PROGRESS_EVERY = 50
PROGRESS = re.compile(r"soak: thread (\d+), (\d+) posts")
WRK_SCRIPT = """
wrk.headers["Connection"] = "close"
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  every = tonumber(args[1])
  posts, gets, failed = 0, 0, 0
  locations, first, last = {}, 1, 0
end

function request()
  if first <= last then
    local location = locations[first]
    locations[first] = nil
    first = first + 1
    return wrk.format("GET", location)
  end
  return wrk.format("POST", "/task/")
end

function response(status, headers, body)
  local location = headers["Location"] or headers["location"]
  if status == 202 and location then
    posts = posts + 1
    last = last + 1
    locations[last] = (location:gsub("^https?://[^/]+", ""))
  elseif status == 200 then
    gets = gets + 1
  else
    failed = failed + 1
  end
  if status == 202 and posts % every == 0 then
    io.write(string.format("soak: thread %d, %d posts\\n", id, posts))
    io.stdout:flush()
  end
end

function done(summary, latency, requests)
  local posts, gets, failed = 0, 0, 0
  for _, thread in ipairs(threads) do
    posts = posts + thread:get("posts")
    gets = gets + thread:get("gets")
    failed = failed + thread:get("failed")
  end
  io.write(string.format("soak: %d posts, %d gets, %d failed\\n", posts, gets, failed))
end
"""


@dataclass(frozen=True)
class Answered:
    """What one wrk run had answered: POSTs (202 with a Location) and GETs (200)."""

    posts: int
    gets: int
    seconds: float


def wrk_soak(base_url: str, posts: int, clients: int = CLIENTS, threads: int = THREADS) -> Answered:
    """POST and GET with wrk until at least `posts` POSTs were answered; fail on any non-2xx or socket error."""
    cap = posts // 25 + 60  # seconds: even 25 POSTs a second would finish
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT)
        script.flush()
        command = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{cap}s", "-s", script.name, base_url]
        command += ["--", str(PROGRESS_EVERY)]  # the script's argument
        started = time.perf_counter()
        output = _run_until_answered(command, posts)
        seconds = time.perf_counter() - started
    totals = re.search(r"soak: (\d+) posts, (\d+) gets, (\d+) failed", output)
    if totals is None or "Non-2xx" in output or "Socket errors" in output or int(totals.group(3)):
        raise RuntimeError(f"wrk saw failed requests:\n{output}")
    answered = Answered(int(totals.group(1)), int(totals.group(2)), seconds)
    if answered.posts < posts:
        raise RuntimeError(f"only {answered.posts:,} of {posts:,} POSTs answered in {cap} s:\n{output}")
    return answered


def _run_until_answered(command: list[str], posts: int) -> str:
    """wrk's output, all but its progress lines; interrupted (SIGINT: it prints its summary) once `posts` were answered.

    SIGINT is sent again each second until wrk exits: when a running wrk thread takes the
    signal, it stops the threads, but wrk's main thread sleeps on to the end of -d.
    """
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    try:
        lines: list[str] = []
        answered: dict[str, int] = {}  # POSTs answered, by wrk thread
        while sum(answered.values()) < posts and (line := process.stdout.readline()):
            if progress := PROGRESS.match(line):
                answered[progress.group(1)] = int(progress.group(2))
            else:
                lines.append(line)
        while process.poll() is None:  # the rest of its output is a few lines: the pipe holds them
            process.send_signal(signal.SIGINT)
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1)
        lines += [line for line in process.stdout if not PROGRESS.match(line)]  # threads stop within 0.1 s
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
    if process.returncode:
        raise RuntimeError(f"wrk exited with {process.returncode}:\n{''.join(lines)}")
    return "".join(lines)
