"""The offline engine: run a Pulumi program for one stack against Azure-like answers.

It loads the program's `Pulumi.yaml` and `Pulumi.<stack>.yaml`, starts the program in its own
runtime and environment with the stack config as the Pulumi CLI hands it over (gpustack/hosts/),
answers its ResourceMonitor and Engine calls (gpustack/monitor_server.py) and records every
resource registration (inputs as the engine sees them, camelCase, and the resource options).
An in-process variant runs Python programs under `pulumi.runtime.set_mocks` with the same
answers and recorder, for tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import os
import runpy
import sys
import threading
import traceback
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc as pulumi_rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime import stack as pulumi_stack
from pulumi.runtime.rpc import UNKNOWN
from pulumi.runtime.sync_await import _sync_await

from gpustack.hosts import ProgramError, ProgramRunError, run_program
from gpustack.hosts import python_exec as shim
from gpustack.mocks import WHOLLY_UNKNOWN_KEY, AzureMocks, InvokeRefused, ProviderCheckFailure
from gpustack.project import ConfigOverride, ProjectError, StackProject, load_project
from gpustack.stack_outputs import StackOutputs

__all__ = [
    "SECRET_KEY",
    "Plan",
    "PlannedResource",
    "ProgramError",
    "ProjectError",
    "RecordingMonitor",
    "capture",
    "run_plan",
]

# The mocks answer one request at a time. They resolve the SDKs' classes, and azure-native
# loads its modules lazily: on Python before 3.12, two threads loading a lazy module at once can
# leave it half-loaded for the rest of the process (seen here: `pulumi_azure_native.storage`
# without `StorageAccount` after a plan), and the monitor and the SDK's executor both answer on
# several threads.
MOCKS_LOCK = threading.RLock()

# Property-value signatures of the Pulumi wire format, as the SDK itself spells them.
_SIG_KEY: str = pulumi_rpc._special_sig_key
_SECRET_SIG: str = pulumi_rpc._special_secret_sig
_RESOURCE_SIG: str = pulumi_rpc._special_resource_sig
_OUTPUT_SIG: str = pulumi_rpc._special_output_value_sig
SECRET_KEY = "__secret__"
"""Captured inputs wrap secret values as `{SECRET_KEY: value}`."""


class DuplicateUrnError(Exception):
    """Two resources would get the same URN; the Pulumi engine refuses that, and so do we."""


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
    """What the offline engine could not answer faithfully (a Helm chart not rendered, another
    stack's outputs), once each, sorted: requests arrive in a racy order."""

    def custom_resources(self) -> list[PlannedResource]:
        """Resources a provider would create (components and providers excluded)."""
        return [
            r for r in self.resources if r.custom and not r.type.startswith("pulumi:providers:")
        ]

    def by_type(self, token: str) -> list[PlannedResource]:
        """Resources of one type token."""
        return [r for r in self.resources if r.type == token]


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that also records each RegisterResource request's options.

    `project` and `stack` name the URNs; without them the SDK's current settings do (in-process).
    A second registration of one URN raises `DuplicateUrnError`, as the Pulumi engine refuses it.
    """

    def __init__(
        self, mocks: pulumi.runtime.Mocks, project: str | None = None, stack: str | None = None
    ) -> None:
        super().__init__(mocks)
        self.registrations: list[PlannedResource] = []
        self.failures: list[str] = []
        self.project = project
        self.stack = stack
        # URN -> where it was declared; claimed under the lock before answering, because
        # registrations arrive on several threads at once.
        self._claimed: dict[str, str] = {}
        self._claim_lock = threading.Lock()
        # Out of process, a resource the program passes as a value (a component's args, an
        # input) reaches the mocks as its id (a custom resource) or URN, as the Python SDK
        # deserializes a reference to a module it has not loaded. Without this, a reference to
        # a type whose Python SDK module the planner imported (for a TypeScript program's
        # shapes) is constructed here as a Python resource, which has no engine to read it.
        self.plain_references = False

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """URNs as the engine makes them: the root stack does not qualify its children's types."""
        if parent and parent.split("::")[2] == "pulumi:pulumi:Stack":
            parent = ""
        if self.project is None or self.stack is None:
            return super().make_urn(parent, type_, name)
        if parent:
            type_ = parent.split("::")[2].split("$")[-1] + "$" + type_
        return f"urn:pulumi:{self.stack}::{self.project}::{type_}::{name}"

    def Invoke(self, request: Any) -> Any:
        with MOCKS_LOCK:
            return self._invoke(request)

    def _default_provider_denied(self, token: str, provider: str) -> str | None:
        """The engine's refusal of `token` on its package's default provider, when the program
        gave no provider and the stack disables that default (see `AzureMocks`)."""
        if provider or token.startswith("pulumi:") or not isinstance(self.mocks, AzureMocks):
            return None
        return self.mocks.default_provider_denied(token)

    def _invoke(self, request: Any) -> Any:
        denied = self._default_provider_denied(request.tok, request.provider)
        if denied:
            raise InvokeRefused(denied)
        if self.plain_references:
            request = with_plain_references(request, "args")
        response = super().Invoke(request)
        answer = getattr(response, "return")
        if WHOLLY_UNKNOWN_KEY in answer.fields:
            # The mocks declined the invoke (preview, resource still being created).
            answer.Clear()
            response.unknown = True
        return response

    def ReadResource(self, request: Any) -> Any:
        with MOCKS_LOCK:
            denied = self._default_provider_denied(request.type, request.provider)
            if denied:
                # The SDK reports a read's position inside its own `get`: name the read.
                message = f"{denied} (reading '{request.name}' with .get())"
                self.failures.append(message)
                raise ProviderCheckFailure(message)
            return super().ReadResource(request)

    def RegisterResource(self, request: Any) -> Any:
        with MOCKS_LOCK:
            return self._register(request)

    def _register(self, request: Any) -> Any:
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        urn = self.make_urn(request.parent, request.type, request.name)
        where = _source_text(request)
        with self._claim_lock:
            first = self._claimed.get(urn)
            if first is None:
                self._claimed[urn] = where
        if first is not None:
            places = sorted({first, where} - {""})
            declared = f" (declared at {' and '.join(places)})" if places else ""
            message = f"Duplicate resource URN '{urn}'; try giving it a unique name{declared}"
            # Remembered here too: the SDK may only attach the error to the resource's outputs.
            self.failures.append(message)
            raise DuplicateUrnError(message)
        denied = request.custom and self._default_provider_denied(request.type, request.provider)
        if denied:
            message = f"{denied} (declared at {where})" if where else denied
            self.failures.append(message)
            raise ProviderCheckFailure(message)
        try:
            response = super().RegisterResource(
                with_plain_references(request, "object") if self.plain_references else request
            )
        except ProviderCheckFailure as failure:
            # The SDK raises it in its own code, far from the program's line: name the line
            # that declared the resource, as for a duplicate URN.
            message = f"{failure} (declared at {where})" if where else str(failure)
            # Remembered here too: the SDK may only attach the error to the resource's outputs.
            self.failures.append(message)
            raise ProviderCheckFailure(message) from None
        _mark_additional_secrets(response.object, request.additionalSecretOutputs)
        inputs = from_struct(request.object)
        if request.remote and isinstance(self.mocks, AzureMocks):
            # The engine would have the provider construct it (a multi-language component
            # such as helm.v4.Chart); offline there is no provider, so it has no children.
            self.mocks.note(
                f"{request.type} {request.name}: a component its provider builds; its "
                "children are not planned offline"
            )
        if isinstance(self.mocks, AzureMocks):
            # What the provider's Check adds (azure-native's default location), as policies see.
            inputs = self.mocks.checked_inputs(request.type, inputs, request.provider)
        # Dependencies are sets to the engine; the SDK sends them in hash order, which changes
        # from process to process. Sorted, they are the same bytes on every run.
        property_dependencies = {
            key: sorted(request.propertyDependencies[key].urns)
            for key in sorted(request.propertyDependencies)
        }
        implied = {urn for urns in property_dependencies.values() for urn in urns}
        options = {
            "protect": bool(request.protect),
            "retainOnDelete": bool(request.retainOnDelete),
            "deleteBeforeReplace": bool(request.deleteBeforeReplace),
            "ignoreChanges": list(request.ignoreChanges),
            "replaceOnChanges": list(request.replaceOnChanges),
            "additionalSecretOutputs": list(request.additionalSecretOutputs),
            "dependsOn": sorted(urn for urn in request.dependencies if urn not in implied),
            # A provider reference is "<provider urn>::<provider id>".
            "provider": request.provider.rsplit("::", 1)[0] if request.provider else None,
        }
        aliases = _aliases(request)
        if aliases:
            options["aliases"] = aliases
        if request.deletedWith:
            options["deletedWith"] = request.deletedWith
        declared = _declared_at(request)
        source = {"file": declared[0], "line": declared[1]} if declared else None
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
                dependencies=sorted(request.dependencies),
                property_dependencies=property_dependencies,
                source=source,
                outputs=dict(registered.state) if registered else {},
                id=(registered.id or None) if registered else None,
            )
        )
        return response


def _mark_additional_secrets(state: Any, names: Any) -> None:
    """Mark the outputs `additional_secret_outputs` names as secret, as the engine does.

    The engine's step executor (pulumi/pulumi `pkg/resource/deploy/step_executor.go`) makes
    each named output a secret before answering the registration, so the program reads it as
    a secret and `pulumi stack output` shows `[secret]`. `id` cannot be made secret there.
    """
    for name in names:
        if name == "id" or name not in state.fields:
            continue
        value = state.fields[name]
        if _signed(value, _SECRET_SIG):
            continue
        wrapped = struct_pb2.Value()
        wrapped.struct_value.fields[_SIG_KEY].string_value = _SECRET_SIG
        wrapped.struct_value.fields["value"].CopyFrom(value)
        value.CopyFrom(wrapped)


def _signed(value: Any, signature: str) -> bool:
    """Whether a wire value is the SDKs' special object with `signature` (secret, resource)."""
    return value.WhichOneof("kind") == "struct_value" and (
        _SIG_KEY in value.struct_value.fields
        and value.struct_value.fields[_SIG_KEY].string_value == signature
    )


def _source_text(request: Any) -> str:
    declared = _declared_at(request)
    return f"{os.path.basename(declared[0])}:{declared[1]}" if declared else ""


def _declared_at(request: Any) -> tuple[str, int] | None:
    """The file and line that declared the resource: the SDK's source position, unless that
    lies in an installed package and the stack the SDK sent names a line outside one.

    The Node.js SDK takes the frame a fixed depth below `Resource`'s constructor, which for a
    class with one more level (an explicit `Provider`, a Helm `Chart`) is the package's own
    file (`node_modules/@pulumi/provider.ts`, as its source map names it); the next frames,
    which it sends as `stackTrace`, hold the program's line.
    """
    positions = []
    if request.HasField("sourcePosition") and request.sourcePosition.uri:
        positions.append(request.sourcePosition)
    if request.HasField("stackTrace"):
        positions += [frame.pc for frame in request.stackTrace.frames if frame.pc.uri]
    places = [
        (urllib.parse.unquote(position.uri.removeprefix("file://")), position.line)
        for position in positions
    ]
    for place in places:
        if "node_modules" not in Path(place[0]).parts:
            return place
    return places[0] if places else None


def _aliases(request: Any) -> list[Any]:
    """The aliases the program gave.

    Type-only aliases (a type token and nothing else) are the SDKs' record of a resource's
    older type tokens, not the program's intent: left out here, as the shim drops them before
    registration.
    """
    recorded: list[Any] = []
    for alias in request.aliases:
        if alias.HasField("spec"):
            spec = json_format.MessageToDict(alias.spec)
            if spec.get("parentUrn", request.parent) in ("", request.parent):
                spec.pop("parentUrn", None)
            if set(spec) <= {"type"}:
                continue
            recorded.append(dict(sorted(spec.items())))
        else:
            recorded.append(alias.urn)
    recorded.extend(request.aliasURNs)
    return recorded


def with_plain_references(request: Any, field: str) -> Any:
    """A copy of `request` whose `field` holds each resource reference as its id or URN.

    The same value `pulumi.runtime.rpc.deserialize_resource` gives for a reference to a module
    it has not loaded: a custom resource's id (unknown while it is empty), else its URN.
    """
    struct = getattr(request, field)
    if not _has_reference(struct):
        return request
    copy = type(request)()
    copy.CopyFrom(request)
    _replace_references(getattr(copy, field))
    return copy


def _children(value: Any) -> list[Any]:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return list(value.struct_value.fields.values())
    if kind == "list_value":
        return list(value.list_value.values)
    return []


def wire_values(struct: Any) -> Iterator[Any]:
    """Every value in a wire struct, nested ones included."""
    pending = list(struct.fields.values())
    while pending:
        value = pending.pop()
        yield value
        pending.extend(_children(value))


def _has_reference(struct: Any) -> bool:
    return any(_signed(value, _RESOURCE_SIG) for value in wire_values(struct))


def _replace_references(struct: Any) -> None:
    pending = list(struct.fields.values())
    while pending:
        value = pending.pop()
        if _signed(value, _RESOURCE_SIG):
            fields = value.struct_value.fields
            if "id" in fields:
                plain = fields["id"].string_value or pulumi_rpc.UNKNOWN
            else:
                plain = fields["urn"].string_value
            value.string_value = plain
            continue
        pending.extend(_children(value))


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
        # Sorted: the wire's map order is not the program's, and must not reach the plan.
        return {key: _unwrap(value[key]) for key in sorted(value)}
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
    recorder = shim.StackRecorder(pulumi)
    pulumi.runtime.register_stack_transformation(recorder)
    with collector_paused():
        _sync_await(_run_and_settle(_started(recorder, declare)))
        order = _sync_await(recorder.urns())
    return in_constructor_order(monitor.registrations, order)


def run_plan(
    program_dir: Path | str,
    stack: str,
    preview: bool = False,
    config_overrides: Sequence[ConfigOverride] = (),
    *,
    stack_outputs: Sequence[StackOutputs] = (),
    in_process: bool = False,
    optimize: bool = True,
) -> Plan:
    """Run the Pulumi program in `program_dir` for `stack` offline and record the plan.

    The program runs in its own runtime and environment (gpustack/hosts/) against the monitor
    and engine services of `gpustack.monitor_server`, as under the Pulumi CLI. `in_process`
    runs it inside this interpreter under `pulumi.runtime.set_mocks` instead (Python programs
    only; same answers and recorder): for tests and benchmarks that plan many times.
    `optimize=False` (in process only) keeps the SDKs' type-only aliases and the garbage
    collector on, as the engine did before: the benchmarks' baseline. The plan is the same.
    `config_overrides` are `--config KEY=VALUE` values, applied over the stack file;
    `stack_outputs` other stacks' outputs for the program's `StackReference`s.
    """
    project = load_project(Path(program_dir), stack, config_overrides)
    mocks = AzureMocks(preview=preview, config=project.config, stack_outputs=stack_outputs)
    for note in project.notes:
        mocks.note(note)
    if in_process:
        return _run_in_process(project, mocks, optimize)
    from gpustack.monitor_server import MonitorServer

    unknowns_by_result = project.runtime == "nodejs"
    with MonitorServer(mocks, project.name, stack, unknowns_by_result=unknowns_by_result) as server:
        try:
            run = run_program(
                project,
                server.address,
                server.address,
                project.config,
                project.secret_keys,
                preview,
                os.environ,
            )
        except ProgramRunError as error:
            _raise_engine_failures(server)
            raise pulumi.RunError(str(error)) from None
        except ProgramError as error:
            _show_program_logs(server)
            _raise_engine_failures(server)
            if mocks.notes:
                # What the mocks could not answer (a Helm chart not rendered) often explains it.
                raise ProgramError(
                    error.detail + "".join(f"\n  note: {note}" for note in mocks.notes),
                    fault=error.fault,
                ) from None
            raise
        _show_program_logs(server)
        _raise_engine_failures(server)
        for note in run.notes:
            print(note, file=sys.stderr)
        resources = in_constructor_order(server.registrations, run.constructor_order)
        outputs = _wire_outputs(server.stack_outputs or {})
    return Plan(
        project=project.name,
        stack=stack,
        program_dir=project.program_dir,
        preview=preview,
        resources=resources,
        outputs=outputs,
        config=project.config,
        notes=_notes(mocks),
    )


def _notes(mocks: AzureMocks) -> list[str]:
    """The plan's notes, sorted, with any `--stack-outputs` stack the program never read."""
    mocks.note_unread_stack_outputs()
    return sorted(mocks.notes)


def _show_program_logs(server: Any) -> None:
    """Warnings and errors the program logged (`pulumi.log.warn/error`), as the CLI shows them."""
    for entry in server.logs:
        if entry.severity in ("WARNING", "ERROR"):
            print(f"{entry.severity.lower()}: {entry.message}", file=sys.stderr)


def _raise_engine_failures(server: Any) -> None:
    """What the engine itself refused (duplicate URNs) or got wrong (planner bugs) comes first."""
    if server.planner_faults:
        raise ProgramError(server.planner_faults[0], fault="planner")
    if server.failures:
        raise ProgramError(server.failures[0], fault="program")


def in_constructor_order(
    registrations: list[PlannedResource], order: list[str] | None
) -> list[PlannedResource]:
    """Registrations sorted by the program's constructor order; the rest keep arrival order.

    Registration RPCs arrive from the SDK's thread pool in a racy order; the order in which the
    program constructed its resources is what it means, and the same on every run.
    """
    if not order:
        return list(registrations)
    # A URN can come twice: the Node.js SDK constructs a resource again (`opts.urn`, no
    # registration) when it reads a resource reference back, e.g. a resource given in a
    # component's args. Its place is where the program constructed it first.
    position: dict[str, int] = {}
    for index, urn in enumerate(order):
        position.setdefault(urn, index)
    last = len(position)
    return sorted(registrations, key=lambda r: position.get(r.urn, last))


def _wire_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    """Stack outputs as the wire carried them, shown as the Pulumi CLI shows them.

    Each unknown or secret value is marked where it sits: an exported object keeps its known
    fields beside a `<computed>` or `[secret]` one, as `pulumi preview` and `pulumi stack
    output` show it; an output that is wholly unknown or secret is marked whole.
    """
    return {name: to_display(_without_resource_marker(value)) for name, value in outputs.items()}


# The SDKs mark an exported resource with this key in a preview only, for the engine's diff;
# the CLI drops it from what it shows (pkg/backend/display `massageStackPreviewAdd`).
_RESOURCE_MARKER = "@isPulumiResource"


def _without_resource_marker(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _without_resource_marker(item)
            for key, item in value.items()
            if key != _RESOURCE_MARKER
        }
    if isinstance(value, list):
        return [_without_resource_marker(item) for item in value]
    return value


def _run_in_process(project: StackProject, mocks: AzureMocks, optimize: bool = True) -> Plan:
    if project.runtime != "python":
        raise ProjectError(f"{project.program_dir}: in-process plans run Python programs only")
    preview = mocks.preview
    monitor = RecordingMonitor(mocks)
    collector = collector_paused() if optimize else contextlib.nullcontext()
    with _program_environment(project), collector:
        _reset_runtime()
        pulumi.runtime.set_all_config(project.config, project.secret_keys)
        pulumi_mocks.set_mocks(
            mocks, project=project.name, stack=project.stack, preview=preview, monitor=monitor
        )
        recorder = shim.StackRecorder(pulumi, drop_type_aliases=optimize)
        pulumi.runtime.register_stack_transformation(recorder)
        try:
            _sync_await(_run_and_settle(_started(recorder, lambda: _run_main(project.main))))
        except pulumi.RunError:
            raise
        except ProjectError:
            raise
        except Exception as error:
            if monitor.failures:
                raise ProgramError(monitor.failures[0]) from None
            message = _describe_program_error(error, project.program_dir)
            # What the mocks could not answer (a Helm chart not rendered) often explains it.
            message += "".join(f"\n  note: {note}" for note in mocks.notes)
            raise ProgramError(message) from None
        if monitor.failures:
            raise ProgramError(monitor.failures[0])
        order = _sync_await(recorder.urns())
        outputs = _resolve_outputs()
    return Plan(
        project=project.name,
        stack=project.stack,
        program_dir=project.program_dir,
        preview=preview,
        resources=in_constructor_order(monitor.registrations, order),
        outputs=outputs,
        config=project.config,
        notes=_notes(mocks),
    )


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection while a plan or a policy run makes its short-lived objects.

    Full collections over the objects the SDKs' imports leave on the heap (~430k for
    azure-native) cost more than the run itself; what the run leaves behind is freed by
    reference counting or by the first collection after it.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _started(recorder: Any, program: Callable[[], object]) -> Callable[[], object]:
    """`program`, telling `recorder` first that the task running it is the program's own."""

    def run() -> object:
        recorder.starting()
        return program()

    return run


async def _run_and_settle(program: Callable[[], object]) -> None:
    """Run `program`, then wait until every RPC and output it started has finished.

    See `gpustack.hosts.python_exec.settle` for why this does not use the SDK's own loop.
    """
    error: BaseException | None = None
    try:
        result = program()
        if inspect.isawaitable(result):
            await result
    except BaseException as caught:  # re-raised once the runtime has settled
        error = caught
    try:
        await shim.settle()
    finally:
        await pulumi_stack._shutdown_callbacks()
    if error is not None:
        raise error


def _run_main(main: Path) -> None:
    runpy.run_path(str(main), run_name="__main__")


def _reset_runtime() -> None:
    """Forget a previous program's root stack so several plans can run in one process.

    The SDK reads the root stack from the `settings.ROOT` context variable; `set_mocks` only
    makes a new Stack when that is empty.
    """
    pulumi_settings.ROOT.set(None)
    with contextlib.suppress(Exception):
        pulumi_settings.SETTINGS.rpc_manager.clear()
    pulumi_settings.SETTINGS.outputs.clear()


def _resolve_outputs() -> dict[str, Any]:
    """The root stack's outputs, serialized as the SDK sends them to the engine, then shown.

    Going through the wire form makes in-process and out-of-process plans show the same
    values (numbers as floats, names sorted, secrets and unknowns marked).
    """
    root = pulumi_settings.get_root_resource()
    exported = getattr(root, "outputs", {}) or {}
    struct = _sync_await(pulumi_rpc.serialize_properties(exported, {}))
    return _wire_outputs(from_struct(struct))


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
