"""Convert each resource's properties once per Analyze call, not once per policy.

Also: run only the policies that can apply to a resource's type, and build each resource's
options and provider once per call (see `share_property_conversions`).

pulumi-policy 1.21's servicer (`_PolicyAnalyzerServicer.Analyze`) turns the request's protobuf
properties into Python values and wraps them in an unknown-checking proxy inside its loop over
policies: with this pack's 46 resource policies that is 46 identical conversions per resource,
about 80 % of the pack's time (measured in-process: 383 resources/s, 1,978 with this change).
AnalyzeStack does the same for every resource once per stack policy.
The conversions are pure and the proxy is read-only, so one shared result is equivalent. The
change is scoped to the pinned SDK version and is a no-op on any other.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from inspect import isawaitable
from typing import Any

import pulumi_policy.policy as servicer_module
from google.protobuf import json_format
from pulumi.runtime.proto import analyzer_pb2 as proto
from pulumi_policy.policy import EnforcementLevel, StackValidationArgs, StackValidationPolicy
from pulumi_policy.proxy import UnknownValueError
from pulumi_policy.version import VERSION

from policies.rulebook import applies_to

# The SDK version whose Analyze loop this was measured against (requirements.txt pins it).
MEASURED_SDK_VERSION = "1.21.0"
# Enough for a large stack's AnalyzeStack call; each entry is one resource's properties.
MEMO_ENTRIES = 20_000


class _RecentResults:
    """Remember, per thread, results for recent arguments, compared by identity.

    Analyze converts one message once per policy; AnalyzeStack converts every resource's message
    once per stack policy, so the memo holds a stack's worth of entries. The gRPC server runs
    calls on a thread pool and one thread handles one call at a time, so a per-thread memo never
    mixes up two resources. Entries hold their argument, so its id cannot be reused.
    """

    def __init__(self, convert: Callable[[Any], Any], capacity: int = MEMO_ENTRIES) -> None:
        self._convert = convert
        self._capacity = capacity
        self._local = threading.local()

    def __call__(self, argument: Any) -> Any:
        local = self._local
        # Analyze asks for the same message once per policy in a row: check the last one first.
        if getattr(local, "last", None) is argument:
            return local.result
        result = self._lookup(argument)
        local.last, local.result = argument, result
        return result

    def _lookup(self, argument: Any) -> Any:
        entries: dict[int, tuple[Any, Any]] | None = getattr(self._local, "entries", None)
        if entries is None:
            entries = self._local.entries = {}
        key = id(argument)
        hit = entries.get(key)
        if hit is not None and hit[0] is argument:
            return hit[1]
        result = self._convert(argument)
        entries[key] = (argument, result)
        if len(entries) > self._capacity:
            del entries[next(iter(entries))]  # the oldest entry: dicts keep insertion order
        return result


class _SameContent:
    """MessageToDict shared for messages of equal content (their deterministic bytes).

    AnalyzeStack's resources carry the same properties as the Analyze calls before it, in
    other message objects; equal bytes convert to equal values, so one conversion serves both.
    """

    def __init__(self, capacity: int = MEMO_ENTRIES) -> None:
        self._capacity = capacity
        self._local = threading.local()

    def __call__(self, message: Any) -> Any:
        entries: dict[bytes, Any] | None = getattr(self._local, "entries", None)
        if entries is None:
            entries = self._local.entries = {}
        key = message.SerializeToString(deterministic=True)
        result = entries.get(key)
        if result is None:
            result = entries[key] = json_format.MessageToDict(message)
            if len(entries) > self._capacity:
                del entries[next(iter(entries))]
        return result


class _JsonFormat:
    """`json_format` with MessageToDict shared for the same message or the same content."""

    def __init__(self) -> None:
        self._message_to_dict = _RecentResults(_SameContent())

    def MessageToDict(self, message: Any, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return json_format.MessageToDict(message, *args, **kwargs)
        return self._message_to_dict(message)

    def __getattr__(self, name: str) -> Any:
        return getattr(json_format, name)


class _Memo:
    """A servicer method `(self, request)` memoized per request object (see `_RecentResults`)."""

    def __init__(self, method: Callable[[Any, Any], Any]) -> None:
        self._method = method
        self._servicer: Any = None
        self._results = _RecentResults(lambda request: self._method(self._servicer, request))

    def __get__(self, servicer: Any, owner: type | None = None) -> Callable[[Any], Any]:
        def call(request: Any) -> Any:
            self._servicer = servicer  # one pack, one servicer: the memo is never shared
            return self._results(request)

        return call


_current = threading.local()


class _PoliciesForType(list):  # type: ignore[type-arg]
    """The servicer's policy list; inside Analyze, iterates only the policies for its type.

    A resource rule returns at once for types outside its kinds (`rulebook.resource_rule`), so
    skipping it is the same verdict without the SDK's per-policy set-up (arguments, options,
    provider, a report closure), which cost more than the rules. Policies the rulebook does not
    know (another pack's) always run.
    """

    def __init__(self, policies: Any) -> None:
        super().__init__(policies)
        self._by_type: dict[str, list[Any]] = {}

    def __iter__(self) -> Any:
        stack_policies = getattr(_current, "stack_policies", None)
        if stack_policies is not None:
            return iter(stack_policies)
        resource_type = getattr(_current, "resource_type", None)
        if resource_type is None:
            return super().__iter__()
        subset = self._by_type.get(resource_type)
        if subset is None:
            subset = self._by_type[resource_type] = [
                p for p in super().__iter__() if applies_to(p.name, resource_type)
            ]
        return iter(subset)


def _analyze_for_type(analyze: Callable[..., Any]) -> Callable[..., Any]:
    def run(servicer: Any, request: Any, context: Any) -> Any:
        _current.resource_type = request.type
        try:
            return analyze(servicer, request, context)
        finally:
            _current.resource_type = None

    return run


_COLLECTOR = "gpustack-internal-stack-collector"


def _analyze_stack_once(analyze_stack: Callable[..., Any]) -> Callable[..., Any]:
    """AnalyzeStack that builds the stack's resources once, not once per stack policy.

    pulumi-policy 1.21 converts and links every resource anew for each stack policy. Here the
    SDK's own loop runs once, with a single collecting policy, to build the linked
    `PolicyResource` list; then each stack policy is validated against that list exactly as the
    SDK's loop body does (level, config, report closure, preview unknowns, not-applicable).
    The pack's rules only read the list, so sharing it is the same verdict (pinned by a test).
    """

    def run(servicer: Any, request: Any, context: Any) -> Any:
        captured: list[Any] = []
        collector = StackValidationPolicy(
            name=_COLLECTOR,
            description="builds the stack's resources once",
            validate=lambda args, _report: captured.append(args.resources),
        )
        _current.stack_policies = [collector]
        try:
            analyze_stack(servicer, request, context)
        finally:
            _current.stack_policies = None
        if not captured:  # the collector was disabled by config: fall back to the SDK's way
            return analyze_stack(servicer, request, context)
        resources = captured[0]
        response = proto.AnalyzeResponse()
        pack_name = servicer._PolicyAnalyzerServicer__policy_pack_name
        pack_version = servicer._PolicyAnalyzerServicer__policy_pack_version
        stack_tags = servicer._PolicyAnalyzerServicer__stack_tags
        for policy in servicer._PolicyAnalyzerServicer__policies:
            level = servicer._get_enforcement_level(policy)
            if level == EnforcementLevel.DISABLED or not isinstance(policy, StackValidationPolicy):
                continue
            if level == EnforcementLevel.REMEDIATE:
                level = EnforcementLevel.MANDATORY
            report = servicer._create_report_violation(
                response, policy.name, policy.description, level, policy.severity)
            args = StackValidationArgs(
                resources, servicer._get_policy_config(policy.name), stack_tags)
            try:
                result = policy.validate(args, report)
                if isawaitable(result):
                    loop = asyncio.new_event_loop()
                    loop.run_until_complete(asyncio.Task(result, loop=loop))
                    loop.close()
            except UnknownValueError as e:
                response.diagnostics.append(proto.AnalyzeDiagnostic(
                    policyName=policy.name,
                    policyPackName=pack_name,
                    policyPackVersion=pack_version,
                    message=(f"can't run policy '{policy.name}' from policy pack "
                             f"'{pack_name}@v{pack_version}' during preview: {e.message}"),
                    urn="",
                    description=policy.description,
                    enforcementLevel=servicer._map_enforcement_level(EnforcementLevel.ADVISORY),
                ))
            except servicer_module._NotApplicableError as e:
                response.not_applicable.append(proto.PolicyNotApplicable(
                    policy_name=policy.name, reason=e.reason or ""))
        return response

    return run


_SERVICER = servicer_module._PolicyAnalyzerServicer
# The SDK as shipped, captured before anything here replaces a piece of it.
_SDK_FUNCTIONS = {
    name: getattr(servicer_module, name)
    for name in ("json_format", "deserialize_properties", "unknown_checking_proxy")
}
_SDK_METHODS = {
    name: _SERVICER.__dict__[name]
    for name in ("__init__", "Analyze", "AnalyzeStack", "_get_resource_options",
                 "_get_provider_resource")
}


def share_property_conversions() -> bool:
    """Install the shared conversions; False (and nothing changed) on an unmeasured SDK.

    Idempotent: each call installs fresh wrappers around the SDK as shipped.
    """
    if VERSION != MEASURED_SDK_VERSION:
        return False
    init = _SDK_METHODS["__init__"]

    def __init__(self: Any, name: str, version: str, policies: Any, *rest: Any) -> None:
        init(self, name, version, _PoliciesForType(policies), *rest)

    methods = {
        "__init__": __init__,
        "Analyze": _analyze_for_type(_SDK_METHODS["Analyze"]),
        "AnalyzeStack": _analyze_stack_once(_SDK_METHODS["AnalyzeStack"]),
        "_get_resource_options": _Memo(_SDK_METHODS["_get_resource_options"]),
        "_get_provider_resource": _Memo(_SDK_METHODS["_get_provider_resource"]),
    }
    for name, method in methods.items():
        setattr(_SERVICER, name, method)
    servicer_module.json_format = _JsonFormat()  # type: ignore[assignment]
    servicer_module.deserialize_properties = _RecentResults(
        _SDK_FUNCTIONS["deserialize_properties"])
    servicer_module.unknown_checking_proxy = _RecentResults(
        _SDK_FUNCTIONS["unknown_checking_proxy"])
    return True


def restore_sdk() -> None:
    """Put the SDK back as shipped (for comparing verdicts with and without the speed-ups)."""
    for name, method in _SDK_METHODS.items():
        setattr(_SERVICER, name, method)
    for name, function in _SDK_FUNCTIONS.items():
        setattr(servicer_module, name, function)
