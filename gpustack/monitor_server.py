"""Pulumi's ResourceMonitor and Engine gRPC services, answered offline by the Azure mocks.

A program run by a language host (gpustack/hosts/) connects here exactly as it would connect to
the Pulumi CLI. Registrations, reads and invokes are answered the way pulumi's own `MockMonitor`
answers them (through `gpustack.mocks.AzureMocks`, via `gpustack.engine.RecordingMonitor`, which
also records each registration), so in-process and out-of-process plans share one source of
answers and one recorder.

Features the SDK probes for are answered honestly: those that need the engine to call back
into the program (transforms, invoke transforms, resource and error hooks) are reported as
unsupported, so a program that uses them fails with the SDK's own message instead of having
them silently ignored. `outputValues` is off, as in pulumi's mocks, so inputs arrive as plain
values.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime._grpc_settings import _GRPC_CHANNEL_OPTIONS
from pulumi.runtime.mocks import MockCallArgs, _ensure_event_loop
from pulumi.runtime.proto import (
    engine_pb2,
    engine_pb2_grpc,
    provider_pb2,
    resource_pb2,
    resource_pb2_grpc,
)
from pulumi.runtime.rpc import UNKNOWN, deserialize_properties, serialize_properties
from pulumi.runtime.sync_await import _sync_await

from gpustack.engine import (
    MOCKS_LOCK,
    DuplicateUrnError,
    RecordingMonitor,
    from_struct,
    wire_values,
    with_plain_references,
)
from gpustack.hosts.python_exec import DESCRIBE_TOKEN
from gpustack.mocks import AzureMocks, InvokeRefused, ProviderCheckFailure

STACK_TYPE = "pulumi:pulumi:Stack"

# Feature ids as the SDKs probe them (`SupportsFeature`), and whether we answer them.
FEATURES: dict[str, bool] = {
    "secrets": True,
    "resourceReferences": True,
    "outputValues": False,
    "deletedWith": True,
    "replaceWith": True,
    "aliasSpecs": True,
    "parameterization": True,
    "transforms": False,
    "invokeTransforms": False,
    "resourceHooks": False,
    "errorHooks": False,
}

_FEATURE_ENUMS: dict[str, str] = {
    "secrets": "RESOURCE_MONITOR_FEATURE_SECRETS",
    "resourceReferences": "RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES",
    "deletedWith": "RESOURCE_MONITOR_FEATURE_DELETED_WITH",
    "replaceWith": "RESOURCE_MONITOR_FEATURE_REPLACE_WITH",
    "aliasSpecs": "RESOURCE_MONITOR_FEATURE_ALIAS_SPECS",
    "parameterization": "RESOURCE_MONITOR_FEATURE_PARAMETERIZATION",
}


# `pulumirpc.Result.SKIP` (proto/pulumi/resource.proto); older Python stubs lack the name.
RESULT_SKIP = 2


def _has_unknown(struct: Any) -> bool:
    """Whether a wire struct holds the unknown sentinel anywhere."""
    return any(
        value.WhichOneof("kind") == "string_value" and value.string_value == UNKNOWN
        for value in wire_values(struct)
    )


@dataclass
class LogEntry:
    """A message the program logged through the engine (`pulumi.log.*`)."""

    severity: str
    message: str
    urn: str


def _settings_context(project: str, stack: str, preview: bool) -> contextvars.Context:
    pulumi_settings._set_project(project)
    pulumi_settings._set_stack(stack)
    # The SDK's deserializer keeps unknown inputs only in a dry run, as `set_mocks` sets it.
    pulumi_settings.SETTINGS.dry_run = preview
    return contextvars.copy_context()


class _Monitor(resource_pb2_grpc.ResourceMonitorServicer):
    def __init__(self, server: MonitorServer) -> None:
        self.server = server

    def GetDeploymentInfo(self, request: Any, context: Any) -> Any:
        features = [
            getattr(resource_pb2, _FEATURE_ENUMS[name])
            for name, supported in FEATURES.items()
            if supported and name in _FEATURE_ENUMS
        ]
        return resource_pb2.DeploymentInfo(supportedFeatures=features)

    def SupportsFeature(self, request: Any, context: Any) -> Any:
        return resource_pb2.SupportsFeatureResponse(hasSupport=FEATURES.get(request.id, False))

    def RegisterResource(self, request: Any, context: Any) -> Any:
        return self.server.guarded(context, self.server.register, request)

    def RegisterResourceOutputs(self, request: Any, context: Any) -> Any:
        return self.server.guarded(context, self.server.register_outputs, request)

    def ReadResource(self, request: Any, context: Any) -> Any:
        return self.server.guarded(context, self.server.read, request)

    def Invoke(self, request: Any, context: Any) -> Any:
        if request.tok == DESCRIBE_TOKEN:
            return self.server.guarded(context, self.server.describe, request)
        return self.server.guarded(context, self.server.recorder.Invoke, request)

    def Call(self, request: Any, context: Any) -> Any:
        return self.server.guarded(context, self.server.call, request)

    def ExistsResource(self, request: Any, context: Any) -> Any:
        return self.server.guarded(context, self.server.recorder.ExistsResource, request)

    def RegisterPackage(self, request: Any, context: Any) -> Any:
        # One reference per package and version, stable from run to run.
        ref = f"{request.name}@{request.version}"
        return resource_pb2.RegisterPackageResponse(ref=ref)

    def SignalAndWaitForShutdown(self, request: Any, context: Any) -> Any:
        return empty_pb2.Empty()


class _Engine(engine_pb2_grpc.EngineServicer):
    def __init__(self, server: MonitorServer) -> None:
        self.server = server

    def Log(self, request: Any, context: Any) -> Any:
        severity = engine_pb2.LogSeverity.Name(request.severity)
        with self.server.lock:
            self.server.logs.append(LogEntry(severity, request.message, request.urn))
        return empty_pb2.Empty()

    def GetRootResource(self, request: Any, context: Any) -> Any:
        return engine_pb2.GetRootResourceResponse(urn=self.server.root_urn or "")

    def SetRootResource(self, request: Any, context: Any) -> Any:
        self.server.root_urn = request.urn
        return engine_pb2.SetRootResourceResponse()

    def RequirePulumiVersion(self, request: Any, context: Any) -> Any:
        # There is no CLI here to be too old; the engine behaves as the current one.
        return engine_pb2.RequirePulumiVersionResponse()


class MonitorServer:
    """The monitor and engine services on one local port, recording what the program declares.

    Use as a context manager; `address` is what a language host passes as `--monitor` and
    `--engine`. After the program finished: `registrations` (arrival order), `stack_outputs`
    (the root stack's outputs as the wire carried them), `logs`, and `failures` (errors the
    engine itself raised to the program, such as a duplicate URN, or planner faults).
    """

    def __init__(
        self, mocks: AzureMocks, project: str, stack: str, *, unknowns_by_result: bool = False
    ) -> None:
        preview = bool(getattr(mocks, "preview", False))
        # See `register`: how a Node.js SDK is told to keep a full plan's unknown outputs.
        self.unknowns_by_result = unknowns_by_result and not preview
        self.recorder = RecordingMonitor(mocks, project=project, stack=stack)
        self.recorder.plain_references = True
        self.project = project
        self.stack = stack
        self.lock = threading.Lock()
        self.logs: list[LogEntry] = []
        self.failures: list[str] = []
        self.planner_faults: list[str] = []
        self.root_urn: str | None = None
        self.stack_outputs: dict[str, Any] | None = None
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor
        self._loops: list[asyncio.AbstractEventLoop] = []
        self.address = ""
        # The mocks (and the SDK's serializers) read the project, stack and dry-run flag from
        # the SDK's context-local settings; handler threads run in a copy of this context.
        self._context = contextvars.Context().run(_settings_context, project, stack, preview)

    @property
    def registrations(self) -> list[Any]:
        """Every recorded registration, in the order the requests arrived."""
        return self.recorder.registrations

    def __enter__(self) -> MonitorServer:
        # Each handler thread gets its event loop here (the SDK's (de)serializers need one), so
        # they can be closed when the server stops instead of at interpreter exit.
        self._executor = futures.ThreadPoolExecutor(
            max_workers=8, thread_name_prefix="gpustack-monitor", initializer=self._thread_loop
        )
        server = grpc.server(self._executor, options=_GRPC_CHANNEL_OPTIONS)
        resource_pb2_grpc.add_ResourceMonitorServicer_to_server(_Monitor(self), server)
        engine_pb2_grpc.add_EngineServicer_to_server(_Engine(self), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        self.address = f"127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None
            self._executor.shutdown(wait=True)
            for loop in self._loops:
                loop.close()

    def _thread_loop(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        with self.lock:
            self._loops.append(loop)

    def guarded(self, context: Any, handler: Any, request: Any) -> Any:
        """Run a handler; an error becomes a gRPC error the SDK reports, and is remembered."""
        try:
            with MOCKS_LOCK:
                return self._context.copy().run(handler, request)
        except InvokeRefused as error:
            # Raised in the program where it called the invoke, which names its own line.
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        except (DuplicateUrnError, ProviderCheckFailure) as error:
            # The engine or the provider refuses what the program declared: its fault.
            with self.lock:
                self.failures.append(str(error))
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        except Exception as error:  # a bug here: report it, never answer wrongly
            message = f"{type(error).__name__} in the monitor's {handler.__name__}: {error}"
            with self.lock:
                self.planner_faults.append(message)
            context.abort(grpc.StatusCode.INTERNAL, message)
        raise AssertionError("unreachable: context.abort raises")

    def register(self, request: Any) -> Any:
        """RegisterResource: the root stack gets its URN; the rest is answered and recorded."""
        if request.type == STACK_TYPE and not request.parent:
            urn = self.recorder.make_urn("", request.type, request.name)
            self.root_urn = urn
            return resource_pb2.RegisterResourceResponse(urn=urn)
        response = self.recorder.RegisterResource(request)
        if self.unknowns_by_result and _has_unknown(response.object):
            # Outside a dry run the Node.js SDK reads an unknown output as `undefined` unless
            # the step did not succeed (`keepUnknowns = result !== SUCCESS`, sdk/nodejs
            # runtime/resource.ts): a full plan's unknowns (provisioning states, public IPs)
            # would read as absent, and a callback on one would run on `undefined`. SKIP, a
            # step that did not run, is what these outputs are: known only after a deploy.
            response.result = RESULT_SKIP
        return response

    def describe(self, request: Any) -> Any:
        """The exec shim's description of a resource class (`TypeDescriber`): kept for the mocks
        to answer that type in the shapes of the program's own SDK; not part of the plan."""
        message = json.loads(request.args.fields["describe"].string_value)
        self.recorder.mocks.shapes.report(str(message["token"]), message["described"])
        return resource_pb2.ResourceInvokeResponse()

    def register_outputs(self, request: Any) -> Any:
        """RegisterResourceOutputs: keep the root stack's outputs (`pulumi.export`)."""
        if self.root_urn and request.urn == self.root_urn:
            self.stack_outputs = from_struct(request.outputs)
        return empty_pb2.Empty()

    def read(self, request: Any) -> Any:
        """ReadResource (`Resource.get`): answered by the mocks, references as ids or URNs."""
        return self.recorder.ReadResource(with_plain_references(request, "properties"))

    def call(self, request: Any) -> Any:
        """Call (a method on a resource): answered by the mocks' `call`, as an invoke is."""
        _ensure_event_loop()
        args = deserialize_properties(with_plain_references(request, "args").args)
        answer = self.recorder.mocks.call(MockCallArgs(request.tok, args, request.provider))
        values, failures = (answer, None) if isinstance(answer, dict) else answer
        response: dict[str, Any] = {"return": _sync_await(serialize_properties(values, {}))}
        if failures:
            response["failures"] = [
                provider_pb2.CheckFailure(property=prop, reason=reason) for prop, reason in failures
            ]
        return resource_pb2.CallResponse(**response)
