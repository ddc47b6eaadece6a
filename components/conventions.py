"""The arguments every component shares, spelled the same way everywhere.

Like Azure Verified Modules' shared interfaces: learn `ComponentContext` once and every
component reads the same. Stateful resources take their options from `stateful_options`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi


@dataclass(frozen=True)
class ComponentContext:
    """Where and how a component deploys: resource group, region, tags, logs, protection."""

    resource_group_name: pulumi.Input[str]
    location: str
    tags: Mapping[str, str] = field(default_factory=dict)
    # Log Analytics workspace id that diagnostic settings send to; None turns them off.
    diagnostics: pulumi.Input[str] | None = None
    # Protect and retain stateful resources (staging and prod); explicit in dev.
    protect: bool = False

    def with_tags(self, extra: Mapping[str, str]) -> ComponentContext:
        """The same context with more tags."""
        return ComponentContext(
            self.resource_group_name,
            self.location,
            {**self.tags, **extra},
            self.diagnostics,
            self.protect,
        )


def child_options(
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] | None = None,
    **kwargs: object,
) -> pulumi.ResourceOptions:
    """Options for a component's child: parented to the component."""
    return pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on or []), **kwargs)  # type: ignore[arg-type]


def stateful_options(
    parent: pulumi.Resource, context: ComponentContext, **kwargs: object
) -> pulumi.ResourceOptions:
    """Options for resources that hold data: protected and retained when the context says so."""
    return pulumi.ResourceOptions(
        parent=parent,
        protect=context.protect,
        retain_on_delete=context.protect,
        **kwargs,  # type: ignore[arg-type]
    )
