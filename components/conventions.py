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


@dataclass(frozen=True)
class IdentityRef:
    """A user-assigned managed identity handed from one component to another."""

    id: pulumi.Input[str]
    principal_id: pulumi.Input[str]
    client_id: pulumi.Input[str]


@dataclass(frozen=True)
class BlobMountTarget:
    """What a node needs to mount model storage with BlobFuse2 through a managed identity."""

    account_name: pulumi.Input[str]
    containers: Sequence[str]
    # The identity BlobFuse2 authenticates as (its client id goes in the config).
    identity: IdentityRef | None = None


@dataclass(frozen=True)
class PrivateEndpointTarget:
    """Where private endpoints go: the subnet, and the VNet their DNS zones link to.

    `dns_zone_ids` maps a zone name to an existing central zone's id (hub-and-spoke); zones not
    listed are created in the stack's resource group.
    """

    subnet_id: pulumi.Input[str]
    vnet_id: pulumi.Input[str]
    dns_zone_ids: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class MonitoringTargets:
    """The workspaces monitored resources report to."""

    log_analytics_workspace_id: pulumi.Input[str]
    azure_monitor_workspace_id: pulumi.Input[str] | None = None
