"""The offline engine: run a Pulumi Python program for one stack under Azure-like mocks.

It loads the program's `Pulumi.yaml` and `Pulumi.<stack>.yaml`, sets the stack config as the
Pulumi CLI would, runs the program's entry point with the real Pulumi SDK, and records every
resource registration (inputs as the engine sees them, camelCase, and the resource options).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import runpy
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc as pulumi_rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime import stack as pulumi_stack
from pulumi.runtime.rpc import UNKNOWN
from pulumi.runtime.sync_await import _sync_await

from gpustack.mocks import WHOLLY_UNKNOWN_KEY, AzureMocks
from gpustack.project import ConfigOverride, ProjectError, StackProject, load_project

# Property-value signatures of the Pulumi wire format, as the SDK itself spells them.
_SIG_KEY: str = pulumi_rpc._special_sig_key
_SECRET_SIG: str = pulumi_rpc._special_secret_sig
_RESOURCE_SIG: str = pulumi_rpc._special_resource_sig
_OUTPUT_SIG: str = pulumi_rpc._special_output_value_sig
SECRET_KEY = "__secret__"
"""Captured inputs wrap secret values as `{SECRET_KEY: value}`."""


class ProgramError(Exception):
    """The user's program failed: the message names its own file and line, not the engine's."""


@dataclass
class PlannedResource:
    """One registered resource, as the engine saw it."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    options: dict[str, Any]
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    source: dict[str, Any] | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The resource in the plan JSON contract (docs/plan-json.md)."""
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "id": self.id,
            "inputs": to_display(self.inputs),
            "options": self.options,
            "source": self.source,
        }

    def analyzer_view(self) -> dict[str, Any]:
        """The shape `gpustack.analyzer.run_policy_pack` takes."""
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "inputs": self.inputs,
            "options": self.options,
            "dependencies": self.dependencies,
            "propertyDependencies": self.property_dependencies,
        }


@dataclass
class Plan:
    """Everything a run of the program declared."""

    project: str
    stack: str
    program_dir: Path
    preview: bool
    resources: list[PlannedResource]
    outputs: dict[str, Any]
    config: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    """What the offline engine could not answer faithfully (e.g. Helm charts not rendered)."""

    def custom_resources(self) -> list[PlannedResource]:
        """Resources a provider would create (components and providers excluded)."""
        return [
            r for r in self.resources if r.custom and not r.type.startswith("pulumi:providers:")
        ]

    def by_type(self, token: str) -> list[PlannedResource]:
        """Resources of one type token."""
        return [r for r in self.resources if r.type == token]


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that also records each RegisterResource request's options."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[PlannedResource] = []

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """URNs as the engine makes them: the root stack does not qualify its children's types."""
        if parent and parent.split("::")[2] == "pulumi:pulumi:Stack":
            parent = ""
        return super().make_urn(parent, type_, name)

    def Invoke(self, request: Any) -> Any:
        response = super().Invoke(request)
        answer = getattr(response, "return")
        if WHOLLY_UNKNOWN_KEY in answer.fields:
            # The mocks declined the invoke (preview, resource still being created).
            answer.Clear()
            response.unknown = True
        return response

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs = from_struct(request.object)
        if isinstance(self.mocks, AzureMocks):
            # What the provider's Check adds (azure-native's default location), as policies see.
            inputs = self.mocks.checked_inputs(request.type, inputs, request.provider)
        property_dependencies = {
            key: list(deps.urns) for key, deps in request.propertyDependencies.items()
        }
        implied = {urn for urns in property_dependencies.values() for urn in urns}
        options = {
            "protect": bool(request.protect),
            "retainOnDelete": bool(request.retainOnDelete),
            "deleteBeforeReplace": bool(request.deleteBeforeReplace),
            "ignoreChanges": list(request.ignoreChanges),
            "replaceOnChanges": list(request.replaceOnChanges),
            "additionalSecretOutputs": list(request.additionalSecretOutputs),
            "dependsOn": [urn for urn in request.dependencies if urn not in implied],
            # A provider reference is "<provider urn>::<provider id>".
            "provider": request.provider.rsplit("::", 1)[0] if request.provider else None,
        }
        source = None
        if request.HasField("sourcePosition") and request.sourcePosition.uri:
            source = {
                "file": request.sourcePosition.uri.removeprefix("file://"),
                "line": request.sourcePosition.line,
            }
        registered = self.resources.get(response.urn)
        self.registrations.append(
            PlannedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                custom=bool(request.custom),
                inputs=inputs,
                options=options,
                dependencies=list(request.dependencies),
                property_dependencies=property_dependencies,
                source=source,
                outputs=dict(registered.state) if registered else {},
                id=(registered.id or None) if registered else None,
            )
        )
        return response


def from_struct(struct: Any) -> dict[str, Any]:
    """Engine properties as plain Python: unknowns kept as `UNKNOWN`, secrets wrapped."""
    return _unwrap(json_format.MessageToDict(struct))


def _unwrap(value: Any) -> Any:
    if isinstance(value, dict):
        signature = value.get(_SIG_KEY)
        if signature == _SECRET_SIG:
            return {SECRET_KEY: _unwrap(value.get("value"))}
        if signature == _RESOURCE_SIG:
            return value.get("urn")
        if signature == _OUTPUT_SIG:
            if "value" not in value:
                return UNKNOWN
            inner = _unwrap(value["value"])
            return {SECRET_KEY: inner} if value.get("secret") else inner
        return {key: _unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unwrap(item) for item in value]
    return value


def to_display(value: Any) -> Any:
    """JSON-friendly view: unknowns as "<computed>", secrets as "[secret]"."""
    if value == UNKNOWN:
        return "<computed>"
    if isinstance(value, dict):
        if SECRET_KEY in value and len(value) == 1:
            return "[secret]"
        return {key: to_display(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_display(item) for item in value]
    return value


def capture(
    declare: Callable[[], object],
    *,
    project: str = "test",
    stack: str = "test",
    preview: bool = False,
    config: dict[str, str] | None = None,
) -> list[PlannedResource]:
    """Run `declare` (which declares resources) under the Azure mocks; return what it registered.

    The unit-test entry point for components: the same mocks and recorder as `gpustack plan`.
    """
    mocks = AzureMocks(preview=preview)
    monitor = RecordingMonitor(mocks)
    _reset_runtime()
    pulumi.runtime.set_all_config(config or {}, [])
    pulumi_mocks.set_mocks(mocks, project=project, stack=stack, preview=preview, monitor=monitor)
    _sync_await(_run_and_settle(declare))
    return monitor.registrations


def run_plan(
    program_dir: Path | str,
    stack: str,
    preview: bool = False,
    config_overrides: Sequence[ConfigOverride] = (),
) -> Plan:
    """Run the Pulumi program in `program_dir` for `stack` under mocks and record the plan."""
    project = load_project(Path(program_dir), stack, config_overrides)
    mocks = AzureMocks(preview=preview)
    monitor = RecordingMonitor(mocks)
    with _program_environment(project):
        _reset_runtime()
        pulumi.runtime.set_all_config(project.config, project.secret_keys)
        pulumi_mocks.set_mocks(
            mocks, project=project.name, stack=stack, preview=preview, monitor=monitor
        )
        try:
            _sync_await(_run_and_settle(lambda: _run_main(project.main)))
        except pulumi.RunError:
            raise
        except ProjectError:
            raise
        except Exception as error:
            message = _describe_program_error(error, project.program_dir)
            # What the mocks could not answer (a Helm chart not rendered) often explains it.
            message += "".join(f"\n  note: {note}" for note in mocks.notes)
            raise ProgramError(message) from None
        outputs = _resolve_outputs()
    return Plan(
        project=project.name,
        stack=stack,
        program_dir=project.program_dir,
        preview=preview,
        resources=monitor.registrations,
        outputs=outputs,
        config=project.config,
        notes=list(mocks.notes),
    )


async def _run_and_settle(program: Callable[[], object]) -> None:
    """Run `program`, then wait until every RPC and output it started has finished.

    The SDK's `run_pulumi_func` waits for outstanding outputs with `asyncio.wait(...,
    FIRST_COMPLETED)` in a loop, which re-registers a callback on every pending output each
    round: quadratic in the outputs a large program creates. Waiting for all of them at once
    settles the same work in linear time; errors surface exactly as before.
    """
    error: BaseException | None = None
    try:
        result = program()
        if inspect.isawaitable(result):
            await result
    except BaseException as caught:  # re-raised once the runtime has settled
        error = caught
    try:
        await _settle()
    finally:
        await pulumi_stack._shutdown_callbacks()
    if error is not None:
        raise error


async def _settle() -> None:
    rpc_manager = pulumi_settings._get_rpc_manager()
    while True:
        while rpc_manager.rpcs:
            await rpc_manager.rpcs.pop()
        if rpc_manager.unhandled_exception is not None:
            raise rpc_manager.unhandled_exception.with_traceback(
                rpc_manager.exception_traceback
            )
        with pulumi_settings.SETTINGS.lock:
            pending = list(pulumi_settings.SETTINGS.outputs)
            pulumi_settings.SETTINGS.outputs.clear()
        if pending:
            done, _ = await asyncio.wait(pending)
            for task in done:
                task.result()
            continue
        if not rpc_manager.rpcs:
            return


def _run_main(main: Path) -> None:
    runpy.run_path(str(main), run_name="__main__")


def _reset_runtime() -> None:
    """Forget a previous program's root stack so several plans can run in one process."""
    pulumi_settings.SETTINGS.root_resource = None  # type: ignore[attr-defined]
    # The SDK keeps the root stack in a ContextVar: without this, a previous program's stack
    # outputs would show up in the next plan's outputs.
    pulumi_settings.ROOT.set(None)
    with contextlib.suppress(Exception):
        pulumi_settings.SETTINGS.rpc_manager.clear()
    pulumi_settings.SETTINGS.outputs.clear()


def _resolve_outputs() -> dict[str, Any]:
    root = pulumi_settings.get_root_resource()
    exported = getattr(root, "outputs", {}) or {}
    resolved: dict[str, Any] = {}
    for name, value in exported.items():
        output = pulumi.Output.from_input(value)
        known = _sync_await(output.is_known())
        secret = _sync_await(output.is_secret())
        if secret:
            resolved[name] = "[secret]"
        elif not known:
            resolved[name] = "<computed>"
        else:
            resolved[name] = to_display(_sync_await(output.future()))
    return resolved


@contextlib.contextmanager
def _program_environment(project: StackProject) -> Iterator[None]:
    """Run with the program's directory as cwd and first on sys.path, as the language host does."""
    previous_cwd = Path.cwd()
    previous_path = list(sys.path)
    program_dir = str(project.main.parent)
    os.chdir(program_dir)
    sys.path.insert(0, program_dir)
    try:
        yield
    finally:
        os.chdir(previous_cwd)
        sys.path[:] = previous_path


def _describe_program_error(error: BaseException, program_dir: Path) -> str:
    """The exception with the innermost frame inside the user's program, like a Python traceback."""
    frames = traceback.extract_tb(error.__traceback__)
    root = str(program_dir.resolve())
    own = [f for f in frames if str(Path(f.filename).resolve()).startswith(root)]
    own = [f for f in own if "/.venv/" not in f.filename and "site-packages" not in f.filename]
    where = ""
    if os.environ.get("GPUSTACK_DEBUG"):
        where = "\n" + "".join(traceback.format_exception(error)).rstrip()
    elif not own:
        where = "\n  (raised outside the program's files; set GPUSTACK_DEBUG=1 for the traceback)"
    if own:
        frame = own[-1]
        where = f"\n  at {os.path.relpath(frame.filename, root)}:{frame.lineno}"
        if frame.line:
            where += f"\n    {frame.line}"
    return f"{type(error).__name__}: {error}{where}"
