"""What every rule shares: its metadata, the policy object built from it, and property access.

Properties reach a rule as the engine sends them: camelCase keys, numbers as floats, wrapped in
pulumi_policy's unknown-checking proxies. Reading a value that is unknown during a preview
raises `UnknownValueError`, which the policy SDK reports as an advisory "can't run" note.
Rules match resource types by module and name, so versioned tokens
(`azure-native:storage/v20240101:StorageAccount`) are checked like the default ones.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

from gpustack import catalog, facts, regions

PACK_NAME = "gpustack-azure"
MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

ENVIRONMENTS = ("dev", "staging", "prod")
# Rules that depend on the environment read it from their config; unconfigured stacks are
# treated as production, the strictest reading.
ENVIRONMENT_SETTING: dict[str, dict[str, Any]] = {
    "environment": {
        "type": "string",
        "enum": list(ENVIRONMENTS),
        "default": "prod",
        "description": "The environment this stack is (dev, staging or prod).",
    }
}

# Environments that are production-like: staging rehearses prod, so the rules that guard
# production's resilience check both unless a policy config narrows them.
PRODUCTION_LIKE = ("staging", "prod")


def environment_scope(*default: str) -> dict[str, dict[str, Any]]:
    """The `environment` setting plus `environments`, the environments the rule checks."""
    return {
        **ENVIRONMENT_SETTING,
        "environments": {
            "type": "array",
            "items": {"type": "string", "enum": list(ENVIRONMENTS)},
            "default": list(default),
            "description": "Environments this rule checks; in the others it passes.",
        },
    }


def in_scope(config: Mapping[str, Any]) -> bool:
    """True when the stack's environment is one the rule's `environments` setting names."""
    return config["environment"] in config["environments"]


# Rule areas, in the order the documentation lists them.
AREAS = ("security", "reliability", "gpu", "cost", "tagging")


@dataclass(frozen=True)
class Rule:
    """A rule's metadata: stable id, what it checks, why, how to fix it, and where it comes from."""

    id: str
    area: str
    title: str
    why: str
    fix: str
    severity: Severity
    level: EnforcementLevel
    references: tuple[str, ...]
    # PSRule for Azure / Checkov rule ids this rule mirrors.
    mirrors: tuple[str, ...] = ()
    # JSON-schema properties of the rule's config, each with a default.
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def defaults(self) -> dict[str, Any]:
        """The config a rule runs with when the policy config leaves it out."""
        return {key: spec["default"] for key, spec in self.settings.items() if "default" in spec}

    def schema(self) -> PolicyConfigSchema | None:
        """The config schema the Pulumi CLI validates the policy config against."""
        return PolicyConfigSchema(properties=dict(self.settings)) if self.settings else None


# Every rule of the pack by id, filled as the rule modules are imported.
RULES: dict[str, Rule] = {}
# The `module:Name` kinds each resource rule checks; a rule absent here checks every type.
RESOURCE_KINDS: dict[str, frozenset[str]] = {}


def applies_to(policy_name: str, resource_type: str) -> bool:
    """False only for a resource rule of this pack that ignores `resource_type` by its kinds."""
    kinds = RESOURCE_KINDS.get(policy_name)
    return kinds is None or kind_of(resource_type) in kinds

Report = Callable[[str], None]
StackReport = Callable[[str, str | None], None]


# --- property access ---------------------------------------------------------------------


def is_list(value: Any) -> bool:
    """True for lists (and their proxies), false for strings."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def dig(value: Any, *path: str | int) -> Any:
    """The value at a camelCase path, or None when a step is missing."""
    for key in path:
        if isinstance(key, int):
            if not is_list(value) or key >= len(value):
                return None
            value = value[key]
        else:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        if value is None:
            return None
    return value


def items(value: Any) -> list[Any]:
    """The elements of a list value; [] for anything else."""
    return list(value) if is_list(value) else []


def lower(value: Any) -> str | None:
    """A string value lowercased (ARM compares most enum values case-insensitively)."""
    return value.lower() if isinstance(value, str) else None


def one_of(value: Any, *options: str) -> bool:
    """Case-insensitive membership for string values."""
    return lower(value) in {option.lower() for option in options}


def number(value: Any) -> float | None:
    """A number input (floats on the wire; autoscale capacities are strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


# The sentinels the engine sends for values a preview cannot know yet.
UNKNOWNS = frozenset({
    UNKNOWN_STRING_VALUE, UNKNOWN_BOOLEAN_VALUE, UNKNOWN_NUMBER_VALUE, UNKNOWN_ARRAY_VALUE,
    UNKNOWN_OBJECT_VALUE, UNKNOWN_ASSET_VALUE, UNKNOWN_ARCHIVE_VALUE,
})


def given(value: Any, *path: str) -> bool:
    """True when the input at a camelCase path is set, without reading its value.

    A value unknown during a preview counts as set: the program passed an Output there (a
    generated password, a public IP's id), which is what rules about presence judge. An
    unknown object above the last step hides whether the key is there: that raises
    `UnknownValueError`, as reading it would.
    """
    for index, key in enumerate(path):
        if not isinstance(value, Mapping):
            return False
        target = value["__target"] if _is_proxy(value) else value
        if key not in target:
            return False
        value = target[key]
        if isinstance(value, str) and value in UNKNOWNS:
            if index == len(path) - 1:
                return True
            raise UnknownValueError(value, list(path[: index + 1]))
    return value is not None


def plain(value: Any) -> Any:
    """Unwrap the policy SDK's proxies into plain dicts and lists (unknowns kept as sentinels)."""
    if isinstance(value, Mapping):
        target = value["__target"] if _is_proxy(value) else value
        return {key: plain(target[key]) for key in target}
    if is_list(value):
        target = value["__target"] if _is_proxy(value) else value
        return [plain(item) for item in target]
    return value


def _is_proxy(value: Any) -> bool:
    return type(value).__module__ == "pulumi_policy.proxy"


def kind_of(token: str) -> str:
    """`module:Name` for an azure-native type token, any API version; other tokens unchanged."""
    match = _TOKEN.match(token)
    if match is None:
        return token
    module = _MODULE_ALIASES.get(match["module"], match["module"])
    return f"{module}:{match['name']}"


_TOKEN = re.compile(r"^azure-native:(?P<module>[^:/]+)(?:/[^:]+)?:(?P<name>[^:]+)$")
# azure-native v2 kept Microsoft.Insights types in `insights`; v3 moved them to `monitor`.
_MODULE_ALIASES = {"insights": "monitor"}

_VERSIONED = re.compile(r"^azure-native:[^:/]+/v(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})[^:]*:[^:]+$")


def api_version(token: str) -> str | None:
    """The ARM API date (`2026-02-01`) a versioned azure-native token pins; None for default ones.

    A default token (`azure-native:keyvault:Vault`) uses the API version of the program's own
    SDK, which rules cannot see; defaults that changed in a newer API version are read from
    here, and the older behaviour is assumed for default tokens.
    """
    match = _VERSIONED.match(token)
    if match is None:
        return None
    return f"{match['y']}-{match['m']}-{match['d']}"


def arm_leaf(arm_id: Any) -> str | None:
    """The last segment of an ARM id (a role definition GUID, a resource name)."""
    if not isinstance(arm_id, str) or not arm_id.strip("/"):
        return None
    return arm_id.rstrip("/").rsplit("/", 1)[-1]


class Deferred:
    """Judge what is known now, and say afterwards what could not be judged during a preview.

    Reading an unknown value raises `UnknownValueError`, which the policy SDK turns into an
    advisory "can't run" note for the whole rule. A rule over many elements (NSG rules,
    authorized IP ranges) would then drop the violations its known elements show, and a
    preview gate would pass. `each` and `check` keep going past unknown elements and `finish`
    raises the first unknown afterwards, so known violations are reported and the note still
    appears.
    """

    def __init__(self) -> None:
        self.error: UnknownValueError | None = None

    def each(self, values: Any) -> Iterator[Any]:
        """The known elements of a list value; unknown elements are remembered."""
        if not is_list(values):
            return
        for index in range(len(values)):
            try:
                value = values[index]
            except UnknownValueError as error:
                self.error = self.error or error
                continue
            yield value

    def check(self, judge: Callable[..., Any], *args: Any) -> Any:
        """`judge(*args)`, or None when it reads an unknown value (remembered)."""
        try:
            return judge(*args)
        except UnknownValueError as error:
            self.error = self.error or error
            return None

    def finish(self) -> None:
        """Raise the first unknown value met, if any, for the SDK to report."""
        if self.error is not None:
            raise self.error


def internet_source(prefix: Any) -> bool:
    """True for an NSG source meaning anyone on the Internet: `*`, `Internet`, any `/0` CIDR."""
    text = lower(prefix)
    if text is None:
        return False
    text = text.strip()
    if text in {p.lower() for p in policy_fact("internet_sources")["prefixes"]}:
        return True
    try:
        return ipaddress.ip_network(text, strict=False).prefixlen == 0
    except ValueError:
        return False


def from_internet(rule: object) -> bool:
    """True for an inbound Allow security rule whose source includes the whole Internet.

    One known Internet source decides it even when the rule's other sources are unknown
    during a preview; otherwise an unknown source raises `UnknownValueError`.
    """
    if not one_of(dig(rule, "direction"), "Inbound") or not one_of(dig(rule, "access"), "Allow"):
        return False
    deferred = Deferred()
    sources = [deferred.check(dig, rule, "sourceAddressPrefix")]
    sources += list(deferred.each(deferred.check(dig, rule, "sourceAddressPrefixes")))
    if any(internet_source(source) for source in sources):
        return True
    deferred.finish()
    return False


def carries_ports(rule: object) -> bool:
    """False for protocols without ports (ICMP, ESP, AH): their port fields open nothing."""
    portless = policy_fact("nsg_protocols")["portless"]
    return not one_of(dig(rule, "protocol"), *portless)


def port_ranges(rule: object) -> list[tuple[int, int]]:
    """A rule's destination ports as inclusive (low, high) ranges; '*' is every port."""
    values = [dig(rule, "destinationPortRange"), *items(dig(rule, "destinationPortRanges"))]
    ranges = []
    for value in values:
        if value is None:
            continue
        text = str(value).strip()
        if text in ("*", ""):
            ranges.append((0, 65535))
            continue
        low, _, high = text.partition("-")
        try:
            ranges.append((int(float(low)), int(float(high or low))))
        except ValueError:
            continue
    return ranges


# --- facts ---------------------------------------------------------------------------------


def policy_fact(section: str) -> Any:
    """A section of gpustack/data/policy_facts.yaml."""
    return facts.load("policy_facts")[section]


@functools.cache
def size_facts(size: str) -> catalog.VmSize | None:
    """The catalog entry for a VM size, or None when the catalog does not know it."""
    try:
        return catalog.lookup(size)
    except catalog.UnknownVmSizeError:
        return None


def is_gpu_size(size: Any) -> bool:
    """True for GPU sizes: by the catalog, else by Azure's naming (the N family)."""
    if not isinstance(size, str) or not size:
        return False
    known = size_facts(size)
    if known is not None:
        return known.is_gpu
    prefixes = policy_fact("size_naming")["gpu_family_prefixes"]
    return any(size.lower().startswith(prefix.lower()) for prefix in prefixes)


def has_infiniband(size: Any) -> bool:
    """True for sizes the catalog lists with an InfiniBand back-end network."""
    known = size_facts(size) if isinstance(size, str) and size else None
    return known is not None and known.has_infiniband


def known_size(size: Any) -> catalog.VmSize | None:
    """The catalog entry for a size name, or None (not a string, or not in the catalog).

    Rules that depend on a size's capabilities skip sizes the catalog does not know, rather
    than demand a fix the size may not allow; `gpustack-vm-size-known` reports those sizes.
    """
    return size_facts(size) if isinstance(size, str) and size else None


def gpu_count(size: Any) -> int | None:
    """GPUs per VM of a size; None for sizes the catalog does not know."""
    known = size_facts(size) if isinstance(size, str) and size else None
    return known.gpu_count if known is not None else None


# --- resources as rules read them --------------------------------------------------------


class Resource:
    """One resource: its type, name, URN, inputs (proxied), options and dependencies."""

    def __init__(
        self,
        type: str,
        name: str,
        urn: str,
        props: Mapping[str, Any],
        *,
        protect: bool = False,
        ignore_changes: Sequence[str] = (),
        config: Mapping[str, Any] | None = None,
        dependencies: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.type = type
        self.kind = kind_of(type)
        self.name = name
        self.urn = urn
        self.props = props
        self.protect = protect
        self.ignore_changes = tuple(ignore_changes)
        self.config = dict(config or {})
        self._dependencies = {key: set(urns) for key, urns in (dependencies or {}).items()}

    @classmethod
    def from_args(cls, args: ResourceValidationArgs, rule: Rule) -> Resource:
        """The resource an Analyze call is about, with the rule's effective config."""
        return cls(
            args.resource_type,
            args.name,
            args.urn,
            args.props,
            protect=bool(args.opts.protect),
            ignore_changes=list(args.opts.ignore_changes or []),
            config={**rule.defaults(), **args.get_config()},
        )

    @classmethod
    def from_stack(cls, resource: PolicyResource) -> Resource:
        """A resource of an AnalyzeStack call, with its property dependencies."""
        return cls(
            resource.resource_type,
            resource.name,
            resource.urn,
            resource.props,
            protect=bool(resource.opts.protect),
            ignore_changes=list(resource.opts.ignore_changes or []),
            dependencies={
                key: [dep.urn for dep in deps]
                for key, deps in (resource.property_dependencies or {}).items()
            },
        )

    def get(self, *path: str | int) -> Any:
        """The input at a camelCase path, or None."""
        return dig(self.props, *path)

    def known(self, *path: str | int) -> Any:
        """Like `get`, but None for a value unknown during preview (for matching, not judging)."""
        try:
            return plain(self.get(*path))
        except UnknownValueError:
            return None

    def depends_on(self, prop: str) -> set[str]:
        """URNs the input `prop` was computed from."""
        return self._dependencies.get(prop, set())

    def is_a(self, *kinds: str) -> bool:
        """True when the resource is of one of the `module:Name` kinds."""
        return self.kind in kinds

    def _plain_inputs(self) -> Any:
        # Stack rules share one Resource per stack resource (`_StackResources`): unwrap once.
        cached = self.__dict__.get("_plain")
        if cached is None:
            cached = self.__dict__["_plain"] = plain(self.props)
        return cached

    def plain_view(self) -> dict[str, Any]:
        """The `{"urn", "type", "name", "inputs"}` shape the toolkit's reports take."""
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "inputs": self._plain_inputs(),
            "propertyDependencies": {k: sorted(v) for k, v in self._dependencies.items()},
            # Only provider resources are priced; components and other packages are not Azure's.
            "custom": self.type.startswith("azure-native:"),
        }


class _StackResources:
    """The `Resource` list of an AnalyzeStack call, built once for all its stack rules.

    With `policies.shared_properties` every stack policy of a call receives the same
    `PolicyResource` list object; it is recognised by identity (and held, so its id cannot be
    reused). Without it each policy gets a list of its own and each rule builds its own, as the
    SDK intends.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self, resources: Sequence[PolicyResource]) -> list[Resource]:
        last = getattr(self._local, "last", None)
        if last is not None and last[0] is resources:
            return last[1]
        built = [Resource.from_stack(r) for r in resources]
        self._local.last = (resources, built)
        return built


_STACK_RESOURCES = _StackResources()


class Stack:
    """All resources of an AnalyzeStack call, with look-ups across them."""

    def __init__(self, args: StackValidationArgs, rule: Rule) -> None:
        self._args = args
        self.resources = _STACK_RESOURCES.get(args.resources)
        self.by_urn = {r.urn: r for r in self.resources}
        self.config = {**rule.defaults(), **args.get_config()}

    def not_applicable(self, reason: str) -> None:
        """End the check: the rule does not apply to this stack (raises, as the SDK does)."""
        self._args.not_applicable(reason)

    def of(self, *kinds: str) -> list[Resource]:
        """Resources of the given `module:Name` kinds, in plan order."""
        return [r for r in self.resources if r.kind in kinds]

    def refers_to(self, source: Resource, prop: str, target: Resource, *segments: str) -> bool:
        """True when `source`'s input `prop` points at `target`.

        By property dependency (directly, or through one resource in between such as a blob
        service), else by an ARM id or name ending in `/<segment>/<target name>` for the target's
        name inputs in `segments` (pairs of ARM type segment and name input).
        """
        direct = source.depends_on(prop)
        if target.urn in direct:
            return True
        for urn in direct:
            between = self.by_urn.get(urn)
            if between is not None and any(
                target.urn in urns for urns in between._dependencies.values()
            ):
                return True
        return self.id_refers_to(source.known(prop), target, *segments)

    def referenced(
        self, source: Resource, prop: str, arm_names: Mapping[str, tuple[str, str]]
    ) -> set[str]:
        """URNs `source`'s input `prop` points at, by the same tests as `refers_to`.

        One pass over the source instead of one `refers_to` per candidate target: stack rules
        that match every setting against every resource stay linear on large stacks.
        `arm_names` maps the target kinds to their ARM type segment and name input.
        """
        found = set(source.depends_on(prop))
        for urn in list(found):
            between = self.by_urn.get(urn)
            if between is not None:
                for urns in between._dependencies.values():
                    found |= urns
        found |= self.named_by(source.known(prop), arm_names)
        return found

    def named_by(self, reference: Any, arm_names: Mapping[str, tuple[str, str]]) -> set[str]:
        """URNs of the resources of `arm_names`' kinds an ARM id or bare name designates."""
        reference = lower(reference)
        if not reference:
            return set()
        index = self._name_index(tuple(sorted(arm_names.items())))
        parts = reference.strip("/").split("/")
        found = set(index.get(("", reference), ()))
        for segment, name in itertools.pairwise(parts):
            found |= index.get((segment, name), set())
        return found

    def _name_index(
        self, arm_names: tuple[tuple[str, tuple[str, str]], ...]
    ) -> dict[tuple[str, str], set[str]]:
        cache = self.__dict__.setdefault("_name_indexes", {})
        if arm_names not in cache:
            index: dict[tuple[str, str], set[str]] = {}
            for kind, (segment, name_input) in arm_names:
                for target in self.of(kind):
                    name = lower(target.known(name_input))
                    if name:
                        index.setdefault((segment.lower(), name), set()).add(target.urn)
                        index.setdefault(("", name), set()).add(target.urn)
            cache[arm_names] = index
        return cache[arm_names]

    def id_refers_to(self, reference: Any, target: Resource, *segments: str) -> bool:
        """True when an ARM id or name (a string input) names `target` (see `refers_to`)."""
        reference = lower(reference)
        if not reference:
            return False
        for segment, name_input in zip(segments[::2], segments[1::2], strict=True):
            name = lower(target.known(name_input))
            if not name:
                continue
            if reference == name:
                return True
            marker = f"/{segment.lower()}/{name}"
            at = reference.find(marker)
            end = at + len(marker)
            if at >= 0 and (end == len(reference) or reference[end] == "/"):
                return True
        return False


# --- AKS node pools, separate or inline --------------------------------------------------


@dataclass(frozen=True)
class NodePool:
    """An AKS node pool: a separate AgentPool resource or one of a cluster's agentPoolProfiles."""

    label: str
    props: Mapping[str, Any]
    inline: bool

    def get(self, *path: str | int) -> Any:
        """The pool's input at a camelCase path, or None."""
        return dig(self.props, *path)

    @property
    def size(self) -> Any:
        """The pool's VM size name."""
        return self.get("vmSize")

    @property
    def is_system(self) -> bool:
        """True for System-mode pools (inline profiles default to System when alone)."""
        return one_of(self.get("mode"), "System")

    @property
    def autoscaled(self) -> bool:
        """True when the cluster autoscaler manages the pool's node count."""
        return self.get("enableAutoScaling") is True

    @property
    def spot(self) -> bool:
        """True for Spot pools."""
        return one_of(self.get("scaleSetPriority"), "Spot")

    @property
    def floor(self) -> float | None:
        """The fewest nodes the pool runs: minCount when autoscaled, else count."""
        return number(self.get("minCount" if self.autoscaled else "count"))


def node_pools(resource: Resource) -> list[NodePool]:
    """The AKS node pools a resource declares: one for an AgentPool, its profiles for a cluster."""
    if resource.is_a("containerservice:AgentPool"):
        name = resource.get("agentPoolName") or resource.name
        return [NodePool(f"node pool {name}", resource.props, inline=False)]
    if resource.is_a("containerservice:ManagedCluster"):
        pools = []
        for index, profile in enumerate(items(resource.get("agentPoolProfiles"))):
            name = dig(profile, "name") or f"#{index}"
            pools.append(NodePool(f"inline node pool {name}", profile, inline=True))
        return pools
    return []


def taints(pool: NodePool) -> list[str]:
    """The pool's node taints, normalised to `key=value:Effect` strings."""
    return [t.strip() for t in items(pool.get("nodeTaints")) if isinstance(t, str)]


# --- building policies ---------------------------------------------------------------------


def resource_rule(
    rule: Rule, *kinds: str
) -> Callable[[Callable[[Resource, Report], None]], ResourceValidationPolicy]:
    """Turn a check of one resource into a policy that runs on resources of `kinds`."""

    def build(check: Callable[[Resource, Report], None]) -> ResourceValidationPolicy:
        def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
            if kinds and kind_of(args.resource_type) not in kinds:
                return
            check(Resource.from_args(args, rule), lambda message: report_violation(message, None))

        policy = ResourceValidationPolicy(validate=validate, **_policy_fields(rule))
        if kinds:
            RESOURCE_KINDS[rule.id] = frozenset(kinds)
        return policy

    return build


def stack_rule(
    rule: Rule,
) -> Callable[[Callable[[Stack, StackReport], None]], StackValidationPolicy]:
    """Turn a check of the whole stack into a stack policy."""

    def build(check: Callable[[Stack, StackReport], None]) -> StackValidationPolicy:
        def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
            def report(message: str, urn: str | None = None) -> None:
                report_violation(message, urn)

            check(Stack(args, rule), report)

        return StackValidationPolicy(validate=validate, **_policy_fields(rule))

    return build


def _policy_fields(rule: Rule) -> dict[str, Any]:
    if rule.id in RULES:
        raise ValueError(f"rule id {rule.id} is declared twice")
    if rule.area not in AREAS:
        raise ValueError(f"rule {rule.id}: area {rule.area!r} is not one of {', '.join(AREAS)}")
    RULES[rule.id] = rule
    return {
        "name": rule.id,
        "description": rule.title,
        "enforcement_level": rule.level,
        "config_schema": rule.schema(),
        "display_name": rule.title,
        "severity": rule.severity,
        "tags": [rule.area, *rule.mirrors],
        "remediation_steps": rule.fix,
        "url": rule.references[0],
    }


def names(values: Iterable[Any]) -> str:
    """A readable list of values for messages."""
    shown = [str(v) for v in values]
    return ", ".join(shown) if shown else "(none)"


# --- VMs and scale sets ----------------------------------------------------------------------


def vm_size(resource: Resource) -> str | None:
    """A VM's hardwareProfile.vmSize or a scale set's sku.name."""
    if resource.is_a("compute:VirtualMachineScaleSet"):
        size = resource.get("sku", "name")
    else:
        size = resource.get("hardwareProfile", "vmSize")
    return size if isinstance(size, str) else None


def vm_profile(resource: Resource, *path: str) -> Any:
    """A VM property, read from a scale set's virtualMachineProfile when it is one."""
    if resource.is_a("compute:VirtualMachineScaleSet"):
        return resource.get("virtualMachineProfile", *path)
    return resource.get(*path)


def nic_configurations(resource: Resource) -> list[Any]:
    """A VM's or scale set's inline NIC configurations."""
    return items(vm_profile(resource, "networkProfile", "networkInterfaceConfigurations"))


def is_windows(resource: Resource) -> bool:
    """True for a Windows VM or scale set: by its OS configuration, OS disk type or image.

    Programs often leave windowsConfiguration out (it is optional); the OS disk's osType or a
    Windows marketplace publisher then says it, as PSRule for Azure (IsWindowsOS) and Checkov
    (CKV_AZURE_1) read it.
    """
    if vm_profile(resource, "osProfile", "windowsConfiguration") is not None:
        return True
    if one_of(vm_profile(resource, "storageProfile", "osDisk", "osType"), "Windows"):
        return True
    publisher = vm_profile(resource, "storageProfile", "imageReference", "publisher")
    return one_of(publisher, *policy_fact("windows_images")["publishers"])


def has_no_blob_service(account: Resource) -> bool:
    """True for storage account kinds without a blob service (FileStorage: file shares only)."""
    return one_of(account.get("kind"), *policy_fact("storage_without_blobs")["kinds"])


def zoneless_region(resource: Resource) -> bool:
    """True for a resource whose location is an Azure region without availability zones.

    ARM accepts display names ("North Central US"); an unset location (the resource group's)
    or one the region list (gpustack/data/azure_regions.yaml) does not know is not assumed to
    lack zones.
    """
    region = (lower(resource.get("location")) or "").replace(" ", "")
    return region in regions.azure_regions() and region not in regions.availability_zone_regions()
