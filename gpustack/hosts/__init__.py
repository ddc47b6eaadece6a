"""Language hosts: start a Pulumi program in its own runtime against our monitor and engine.

Like the Pulumi CLI's language hosts (`pulumi-language-python`, `pulumi-language-nodejs`), a
host starts the program as a child process in the program's own environment (its virtualenv,
its node_modules), pointed at a ResourceMonitor and an Engine gRPC address, with the stack's
config in `PULUMI_CONFIG` / `PULUMI_CONFIG_SECRET_KEYS`. The program talks to those services
only; the host waits for it and turns every way it can fail into a `ProgramError` that says
whose fault it is.

`run_program` is the one entry point; it dispatches on `Pulumi.yaml`'s `runtime.name`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from gpustack.project import StackProject

Fault = Literal["program", "environment", "planner"]

_FAULT_LABELS: dict[str, str] = {
    "program": "the program failed",
    "environment": "the program's environment is not usable",
    "planner": "gpustack failed (a planner bug, not your program's: please report it)",
}


class ProgramError(Exception):
    """The plan failed; the message names the program's file and line where there is one.

    `fault` says whose it is: `"program"` (the program raised or exited), `"environment"`
    (virtualenv creation, a missing module, a missing runtime) or `"planner"` (a bug here).
    """

    def __init__(self, message: str, fault: Fault = "program") -> None:
        super().__init__(message)
        self.detail = message
        self.fault: Fault = fault

    def __str__(self) -> str:
        return f"{self.label}: {self.detail}"

    @property
    def label(self) -> str:
        """A short phrase naming whose fault this is, for the user."""
        return _FAULT_LABELS[self.fault]


class ProgramRunError(ProgramError):
    """The program raised `pulumi.RunError`: a message for the user, shown as is (no stack)."""

    def __str__(self) -> str:
        return self.detail


@dataclass
class ProgramRun:
    """What a finished, successful program run tells the engine besides its registrations.

    `constructor_order`: resource URNs in the order the program constructed them, when the host
    can tell (registrations reach the monitor in a racy order; the engine sorts by this).
    `None` keeps arrival order. `stdout`/`stderr`: the program's output (capped).
    """

    constructor_order: list[str] | None = None
    stdout: str = ""
    stderr: str = ""
    notes: list[str] = field(default_factory=list)


def run_program(
    project: StackProject,
    monitor_address: str,
    engine_address: str,
    config: Mapping[str, str],
    secret_keys: list[str],
    preview: bool,
    env: Mapping[str, str],
) -> ProgramRun:
    """Run `project`'s program to completion against the monitor and engine at these addresses.

    `config` is the stack config as the CLI hands it over (`namespace:key` -> string),
    `secret_keys` the keys among it that are secrets, `preview` whether this is a dry run
    (`pulumi preview`), `env` the environment for the child process (the host adds the Pulumi
    variables). Raises `ProgramError` on every failure, with its `fault`.
    """
    runtime = project.runtime
    try:
        host = importlib.import_module(f"gpustack.hosts.{runtime}")
    except ModuleNotFoundError as error:
        if error.name != f"gpustack.hosts.{runtime}":
            raise
        raise ProgramError(
            f"runtime {runtime} not supported yet ({project.program_dir / 'Pulumi.yaml'})",
            fault="environment",
        ) from None
    result: ProgramRun = host.run_program(
        project, monitor_address, engine_address, config, secret_keys, preview, env
    )
    return result
