"""The `gpustack` console script (and `python -m gpustack`): `gpustack.cli`, started early.

Loading gpustack (the Pulumi SDK, gRPC) takes about a fifth of a second before `gpustack plan`
can start the program's own interpreter, which then spends as long loading the same SDK. For
a Python program, this module starts that interpreter first (`hosts.python.prelaunch`: no
program code runs until the plan hands it its arguments), then imports and runs the CLI, so
the two loads overlap. Only what is needed to find the program is read here, with modules
that load in milliseconds; anything unusual (a command other than `plan`, `--help`, a project
that does not load, a virtualenv still to build) just skips the early start, and the CLI
reports the problem as it always does.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import NoReturn


def run() -> NoReturn:
    """Start the program's interpreter ahead when `sys.argv` plans a Python program, then run
    the CLI (`gpustack.cli.run`, which exits)."""
    quiet_grpc_core(os.environ)
    prelaunch_for(sys.argv[1:])
    from gpustack.cli import run as run_cli

    run_cli()


def quiet_grpc_core(environ: MutableMapping[str, str]) -> None:
    """gRPC's C core logs at ERROR only, unless the user asks for more (`GRPC_VERBOSITY`).

    grpcio (1.68 and later) writes some INFO lines to stderr before absl's logging is set up:
    when the monitor stops while a client transport is still closing (a Node.js program that
    ended early), `I... chttp2_transport.cc] ...: Got goaway [2] ... Cancelling all calls`
    appeared under the plan's error now and then (grpc/grpc#38767). It must be set before
    grpc loads.
    """
    environ.setdefault("GRPC_VERBOSITY", "ERROR")


def prelaunch_for(argv: Sequence[str]) -> bool:
    """Start the interpreter of the program `argv` plans, when it can be; True when started."""
    if not argv or argv[0] != "plan" or {"-h", "--help"} & set(argv):
        return False
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--program", type=Path)
    parser.add_argument("--stack", "-s", default="dev")
    try:
        known, _ = parser.parse_known_args(argv[1:])
    except SystemExit:  # a malformed command line: the CLI's own parser says what is wrong
        return False
    try:
        from gpustack.hosts import python as python_host
        from gpustack.project import find_program, load_project

        program = known.program if known.program is not None else find_program(Path.cwd())
        if program is None:
            return False
        project = load_project(program, known.stack)
        if project.runtime != "python":
            return False
        return python_host.prelaunch(project, os.environ)
    except Exception:  # the plan itself meets and reports whatever went wrong here
        return False
