"""`ContainerRegistry`: a private Azure Container Registry for model-serving and job images.

Premium, because a registry without public network access is reached only through a private
endpoint, a Premium feature (so are geo-replication, zone redundancy, the retention policy for
untagged manifests and the export policy). Entra ID only: no admin user, no anonymous pull;
AcrPull at the registry's own scope for exactly the identities that pull (the AKS kubelet
identity, the VM pools' node identity). Facts: gpustack/data/serving.yaml, container_registry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import authorization, containerregistry

from components.conventions import (
    ComponentContext,
    IdentityRef,
    PrivateEndpointTarget,
    child_options,
    stateful_options,
)
from components.diagnostics import send_diagnostics
from components.identity import assign_role
from components.private_link import PrivateLink, PrivateLinkArgs
from gpustack import facts

AUTONAME_SUFFIX_LENGTH = 8
PULL_ROLE = "acr_pull"


def registry_facts() -> dict[str, object]:
    """The container_registry section of gpustack/data/serving.yaml."""
    found: dict[str, object] = facts.load("serving")["container_registry"]
    return found


@dataclass(frozen=True)
class ContainerRegistryArgs:
    """Where the registry lives, who pulls from it, and its replicas and retention."""

    context: ComponentContext
    private_endpoints: PrivateEndpointTarget | None = None
    # Identities that pull images, by a short name (e.g. "aks-kubelet", "vm-nodes").
    pull_identities: Mapping[str, IdentityRef] = field(default_factory=dict)
    # A second region that replicates every image; None keeps one region.
    geo_replica_location: str | None = None
    untagged_retention_days: int = 7
    zone_redundant: bool = True


class ContainerRegistry(pulumi.ComponentResource):
    """Premium ACR: no public endpoint, no admin user, no anonymous pull, AcrPull per puller."""

    registry_id: pulumi.Output[str]
    registry_name: pulumi.Output[str]
    login_server: pulumi.Output[str]
    pull_assignments: dict[str, authorization.RoleAssignment]

    def __init__(
        self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:registry:ContainerRegistry", name, None, opts)
        context = args.context
        rules = registry_facts()
        logical_name = re.sub(r"[^a-z0-9]", "", name.lower()) + "acr"
        longest = int(str(rules["name_max"])) - AUTONAME_SUFFIX_LENGTH
        if len(logical_name) > longest:
            raise ValueError(
                f"ContainerRegistry name {name!r} is too long: {logical_name!r} plus the "
                f"{AUTONAME_SUFFIX_LENGTH}-character auto-name suffix exceeds {rules['name_max']}"
            )
        low, high = int(str(rules["retention_days_min"])), int(str(rules["retention_days_max"]))
        if not low <= args.untagged_retention_days <= high:
            raise ValueError(
                f"untagged_retention_days {args.untagged_retention_days} is outside {low}-{high}"
            )
        if args.geo_replica_location == context.location:
            raise ValueError(
                f"geo_replica_location {args.geo_replica_location} is the registry's own region"
            )
        sku = str(rules["private_link_sku"])
        zone_redundancy = (
            containerregistry.ZoneRedundancy.ENABLED
            if args.zone_redundant
            else containerregistry.ZoneRedundancy.DISABLED
        )

        self.registry = containerregistry.Registry(
            logical_name,
            resource_group_name=context.resource_group_name,
            location=context.location,
            sku=containerregistry.SkuArgs(name=containerregistry.SkuName(sku)),
            # Entra ID tokens only: the admin user's shared password and anonymous pull are off.
            admin_user_enabled=False,
            anonymous_pull_enabled=False,
            public_network_access=containerregistry.PublicNetworkAccess.DISABLED,
            # Trusted Azure services (ACR Tasks, Defender scanning) are not let through either;
            # allowing them is an explicit loosening.
            network_rule_bypass_options=containerregistry.NetworkRuleBypassOptions.NONE,
            network_rule_set=containerregistry.NetworkRuleSetArgs(
                default_action=containerregistry.DefaultAction.DENY
            ),
            zone_redundancy=zone_redundancy,
            policies=containerregistry.PoliciesArgs(
                retention_policy=containerregistry.RetentionPolicyArgs(
                    days=args.untagged_retention_days,
                    status=containerregistry.PolicyStatus.ENABLED,
                ),
                # Images cannot be exported (az acr import/pipelines) out of a private registry.
                export_policy=containerregistry.ExportPolicyArgs(
                    status=containerregistry.ExportPolicyStatus.DISABLED
                ),
            ),
            tags=dict(context.tags),
            opts=stateful_options(self, context),
        )

        # Replicas before the private endpoint: the endpoint maps each region's data endpoint.
        self.replica: containerregistry.Replication | None = None
        if args.geo_replica_location is not None:
            self.replica = containerregistry.Replication(
                f"{name}-{args.geo_replica_location}",
                registry_name=self.registry.name,
                resource_group_name=context.resource_group_name,
                location=args.geo_replica_location,
                region_endpoint_enabled=True,
                zone_redundancy=zone_redundancy,
                tags=dict(context.tags),
                opts=child_options(self),
            )

        self.private_link: PrivateLink | None = None
        if args.private_endpoints is not None:
            self.private_link = PrivateLink(
                f"{name}-registry",
                PrivateLinkArgs(
                    context=context,
                    private_endpoints=args.private_endpoints,
                    resource_id=self.registry.id,
                    target="acr",
                ),
                opts=child_options(self, depends_on=[r for r in (self.replica,) if r]),
            )

        # Pull only, at the registry itself: never AcrPush, never the resource group.
        self.pull_assignments = {
            who: assign_role(
                self,
                f"{name}-{who}-acr-pull",
                principal_id=identity.principal_id,
                role=PULL_ROLE,
                scope=self.registry.id,
            )
            for who, identity in args.pull_identities.items()
        }

        send_diagnostics(self, name, self.registry, context)

        self.registry_id = self.registry.id
        self.registry_name = self.registry.name
        self.login_server = self.registry.login_server
        self.register_outputs(
            {
                "registryId": self.registry_id,
                "registryName": self.registry_name,
                "loginServer": self.login_server,
            }
        )

    @property
    def private_dns_zone_ids(self) -> dict[str, pulumi.Output[str]]:
        """The registry's private DNS zone by name, for later endpoints to reuse."""
        return dict(self.private_link.zone_ids) if self.private_link else {}

    def image(self, repository_and_tag: str) -> pulumi.Output[str]:
        """The full reference of an image in this registry: `<login server>/<repo>:<tag>`."""
        return self.login_server.apply(lambda server: f"{server}/{repository_and_tag}")
