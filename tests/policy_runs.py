"""Run one policy of the pack the way the policy server does, without gRPC.

Props are converted as the engine puts them on the wire (numbers as floats) and wrapped in
`unknown_checking_proxy`, exactly as `pulumi_policy` wraps them before calling a rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy

PREFIX = "urn:pulumi:dev::lab::"


def wire(value: Any) -> Any:
    """A value as a protobuf Struct carries it: ints become floats."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, Mapping):
        return {key: wire(item) for key, item in value.items()}
    if isinstance(value, Sequence):
        return [wire(item) for item in value]
    return value


def urn_of(type_: str, name: str) -> str:
    """The URN a resource of this type and name gets in the test stack."""
    return f"{PREFIX}{type_}::{name}"


def _options(protect: bool, ignore_changes: Sequence[str]) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect, list(ignore_changes), None, [], PolicyCustomTimeouts(0, 0, 0), [], None
    )


def check_resource(
    policy: ResourceValidationPolicy,
    type_: str,
    props: Mapping[str, Any],
    *,
    config: Mapping[str, Any] | None = None,
    name: str = "res",
    protect: bool = False,
    ignore_changes: Sequence[str] = (),
) -> list[str]:
    """The violation messages `policy` reports for one resource."""
    args = ResourceValidationArgs(
        type_,
        unknown_checking_proxy(wire(props)),
        urn_of(type_, name),
        name,
        _options(protect, ignore_changes),
        None,
        dict(config) if config is not None else None,
    )
    found: list[str] = []
    policy.validate(args, lambda message, urn=None: found.append(message))
    return found


@dataclass
class Declared:
    """A resource of a stack under test; `deps` maps an input to the names it was computed from."""

    type: str
    name: str
    props: Mapping[str, Any] = field(default_factory=dict)
    protect: bool = False
    deps: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @property
    def urn(self) -> str:
        return urn_of(self.type, self.name)


def stack_args(
    resources: Sequence[Declared], config: Mapping[str, Any] | None = None
) -> StackValidationArgs:
    """The arguments the policy server passes a stack policy for these resources."""
    built = {
        declared.name: PolicyResource(
            declared.type,
            unknown_checking_proxy(wire(declared.props)),
            declared.urn,
            declared.name,
            _options(declared.protect, ()),
            None,
            None,
            [],
            {},
        )
        for declared in resources
    }
    for declared in resources:
        built[declared.name].property_dependencies = {
            prop: [built[name] for name in names] for prop, names in declared.deps.items()
        }
    return StackValidationArgs(list(built.values()), dict(config) if config else None)


def check_stack(
    policy: StackValidationPolicy,
    resources: Sequence[Declared],
    *,
    config: Mapping[str, Any] | None = None,
) -> list[tuple[str, str | None]]:
    """The (message, urn) pairs `policy` reports for a stack of resources."""
    found: list[tuple[str, str | None]] = []
    policy.validate(stack_args(resources, config),
                    lambda message, urn=None: found.append((message, urn)))
    return found
