"""Command-line file arguments: checked before any work starts, written safely after.

Shared by `gpustack plan` and `gpustack diff`; every failure is a `UsageError` whose message
names the option and the file.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


class UsageError(Exception):
    """A command-line argument or the file it names is unusable; the message says which."""


def read_text_argument(path: Path, option: str) -> str:
    """The UTF-8 text of a file named on the command line, or a `UsageError` naming both."""
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory; give a file")
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{option} {path}: no such file") from None
    except UnicodeDecodeError:
        raise UsageError(f"{option} {path}: not a UTF-8 text file") from None
    except OSError as error:
        raise UsageError(f"{option} {path}: cannot read ({error.strerror})") from None


def check_out_path(out: Path | None, option: str = "--out") -> None:
    """Refuse an output path that cannot be written, before any work is done.

    Missing parent directories are created at write time (CI writes `plan/<env>.md`), so the
    nearest existing ancestor must be a writable directory.
    """
    if out is None:
        return
    if out.is_dir():
        raise UsageError(f"{option} {out}: is a directory; give a file name")
    if out.exists() and not os.access(out, os.W_OK):
        raise UsageError(f"{option} {out}: the file is not writable")
    ancestor = out.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{option} {out}: {ancestor} is a file, not a directory")
    # os.access says yes to root everywhere; a real probe also catches read-only file systems.
    try:
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as error:
        raise UsageError(f"{option} {out}: cannot write in {ancestor} ({error.strerror})") from None


def emit(text: str, out: Path | None) -> None:
    """Write a report to stdout, or to `out` (creating its directories)."""
    if out is None:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            silence_stdout()
        except OSError as error:  # a full disk or a closed descriptor: not a bug of ours
            silence_stdout()
            raise UsageError(f"cannot write the report to stdout ({error.strerror})") from None
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        raise UsageError(f"--out {out}: cannot write ({error.strerror})") from None
    print(f"wrote {out}", file=sys.stderr)


def silence_stdout() -> None:
    """The reader went away (`| head`): drop what is left instead of failing at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


__all__ = ["UsageError", "check_out_path", "emit", "read_text_argument", "silence_stdout"]
