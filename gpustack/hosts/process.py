"""Running a program's process for a language host: bounded output, bounded time.

Both hosts run the program the same way: its stdout and stderr are read as they come (the
program never blocks on a full pipe) and only their ends are kept; a program that writes more
than `OUTPUT_LIMIT_BYTES` to either stream, or runs longer than the plan timeout
(`GPUSTACK_PLAN_TIMEOUT`), is stopped and the plan fails with a message saying which.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from gpustack.hosts import ProgramError

OUTPUT_LIMIT_BYTES = 8 * 1024 * 1024
"""A program writing more than this to stdout or stderr is stopped: it would never end well."""
KEPT_BYTES = 256 * 1024
"""How much of the end of each stream is kept for error messages and failure parsing."""
OUTPUT_SHOWN_CHARS = 4000
"""How much of a failed program's output (the end of it) an error message shows."""
OUTPUT_SHOWN_LINES = 20
OUTPUT_LINE_CHARS = 200
TIMEOUT_ENV = "GPUSTACK_PLAN_TIMEOUT"
DEFAULT_TIMEOUT_S = 900.0
_POLL_S = 0.05


class Capture:
    """Keeps the end of a stream and counts the rest; reading never blocks the child."""

    def __init__(self) -> None:
        self.size = 0
        self.tail = b""

    def feed(self, chunk: bytes) -> None:
        """Count `chunk` and keep the last `KEPT_BYTES` of the stream."""
        self.size += len(chunk)
        self.tail = (self.tail + chunk)[-KEPT_BYTES:]

    def text(self, limit: int | None = OUTPUT_SHOWN_CHARS) -> str:
        """The kept end as text (its last `limit` characters), marked when cut."""
        text = self.tail.decode("utf-8", errors="replace")
        cut = self.size > len(self.tail)
        if limit is not None and len(text) > limit:
            text, cut = text[-limit:], True
        return "...\n" + text if cut else text


class Outcome:
    """How a program's process ended, and the ends of what it wrote."""

    def __init__(self) -> None:
        self.returncode: int | None = None
        self.stdout = Capture()
        self.stderr = Capture()
        self.overflow: str | None = None
        """The stream that passed `OUTPUT_LIMIT_BYTES`, when the program was stopped for it."""
        self.timed_out = False

    def stopped_error(self, main: Path, timeout: float) -> ProgramError | None:
        """The error for a program that was stopped (too much output, too long), else None."""
        if self.overflow is not None:
            return ProgramError(
                f"the program wrote more than {OUTPUT_LIMIT_BYTES // (1024 * 1024)} MB to "
                f"{self.overflow} and was stopped ({main}){self.excerpt()}"
            )
        if self.timed_out:
            return ProgramError(
                f"the program did not finish within {timeout:g} s and was stopped "
                f"({main}; set {TIMEOUT_ENV} to allow longer){self.excerpt()}"
            )
        return None

    def excerpt(self) -> str:
        """The last lines of each stream, indented, for an error message."""
        parts = []
        for name, capture in (("stdout", self.stdout), ("stderr", self.stderr)):
            lines = capture.text().strip().splitlines()[-OUTPUT_SHOWN_LINES:]
            if lines:
                indented = "\n".join(
                    f"    {line[:OUTPUT_LINE_CHARS]}"
                    f"{'...' if len(line) > OUTPUT_LINE_CHARS else ''}"
                    for line in lines
                )
                parts.append(f"\n  the program's {name} (end):\n{indented}")
        return "".join(parts)


def require_tool(name: str, missing: str, path: str | None = None) -> str:
    """The path of command `name` on `path` (default PATH), or the environment's fault saying
    `missing`."""
    found = shutil.which(name, path=path)
    if found is None:
        raise ProgramError(missing, fault="environment")
    return found


def timeout_seconds(env: Mapping[str, str] | None = None) -> float:
    """The plan timeout from `GPUSTACK_PLAN_TIMEOUT` (seconds), checked."""
    source = os.environ if env is None else env
    raw = source.get(TIMEOUT_ENV) or str(DEFAULT_TIMEOUT_S)
    try:
        timeout = float(raw)
    except ValueError:
        timeout = 0.0
    if not timeout > 0:  # NaN too
        raise ProgramError(
            f"{TIMEOUT_ENV}={raw!r}: expected a positive number of seconds", fault="environment"
        )
    return timeout


def run_bounded(
    command: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float
) -> Outcome:
    """Run `command` to its end, or stop it when it writes or takes too much (see module doc)."""
    return wait_bounded(start(command, env, cwd), timeout)


def start(
    command: Sequence[str], env: Mapping[str, str], cwd: Path, stdin_pipe: bool = False
) -> subprocess.Popen[bytes]:
    """Start `command` with its output piped, for `wait_bounded`; stdin is /dev/null unless
    `stdin_pipe` (the caller then writes to it and closes it)."""
    try:
        return subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as error:
        raise ProgramError(f"cannot start {command[0]}: {error}", fault="environment") from None


def wait_bounded(child: subprocess.Popen[bytes], timeout: float) -> Outcome:
    """Read a started child's output as it comes until it ends; stop it when it writes more
    than `OUTPUT_LIMIT_BYTES` to a stream or runs past `timeout` seconds from now."""
    outcome = Outcome()
    readers = [
        threading.Thread(target=_drain, args=(child, stream, capture, name, outcome), daemon=True)
        for stream, capture, name in (
            (child.stdout, outcome.stdout, "stdout"),
            (child.stderr, outcome.stderr, "stderr"),
        )
    ]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                outcome.returncode = child.wait(timeout=_POLL_S)
                break
            except subprocess.TimeoutExpired:
                if outcome.overflow is not None:
                    child.kill()
                elif time.monotonic() > deadline:
                    outcome.timed_out = True
                    child.kill()
    except BaseException:
        child.kill()
        child.wait()
        raise
    for reader in readers:
        reader.join(timeout=5)
    return outcome


def _drain(
    child: subprocess.Popen[bytes],
    stream: IO[bytes] | None,
    capture: Capture,
    name: str,
    outcome: Outcome,
) -> None:
    if stream is None:
        return
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            return
        capture.feed(chunk)
        if capture.size > OUTPUT_LIMIT_BYTES and outcome.overflow is None:
            outcome.overflow = name
            child.kill()
