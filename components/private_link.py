"""`PrivateLink`: a private endpoint for one target sub-resource, with its private DNS.

For a target such as a storage account's `blob` endpoint it creates the private DNS zone(s) the
target needs (or uses the central zones the caller hands over by id), links each created zone to
the spoke VNet, then the private endpoint and the DNS zone group that registers its A records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network, privatedns

from components.conventions import ComponentContext, PrivateEndpointTarget, child_options
from gpustack import facts

# Private DNS zones and their VNet links are global resources.
# Source: https://learn.microsoft.com/azure/dns/private-dns-privatednszone
PRIVATE_DNS_LOCATION = "global"


@dataclass(frozen=True)
class PrivateLinkArgs:
    """The resource to reach privately, which of its sub-resources, and where the endpoint goes."""

    context: ComponentContext
    private_endpoints: PrivateEndpointTarget
    # ARM id of the resource behind the endpoint (storage account, vault, registry, ...).
    resource_id: pulumi.Input[str]
    # Key in gpustack/data/private_dns_zones.yaml: `blob`, `dfs`, `vault`, `acr`, ...
    target: str


class PrivateLink(pulumi.ComponentResource):
    """A private endpoint whose DNS zone group points at the right `privatelink.*` zones."""

    endpoint_id: pulumi.Output[str]
    zone_ids: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: PrivateLinkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:network:PrivateLink", name, None, opts)
        context = args.context
        target = args.private_endpoints
        self.zone_names = facts.private_dns_zone(args.target, region=context.location)
        self.group_id = facts.private_dns_group_id(args.target)

        # Zones first: central (hub) zones by id, else one zone per name linked to the spoke.
        self.zones: dict[str, privatedns.PrivateZone] = {}
        self.vnet_links: dict[str, privatedns.VirtualNetworkLink] = {}
        self.zone_ids: dict[str, pulumi.Output[str]] = {}
        for zone_name in self.zone_names:
            if zone_name in target.dns_zone_ids:
                # The hub team owns central zones and their links to the hub's DNS resolver.
                self.zone_ids[zone_name] = pulumi.Output.from_input(target.dns_zone_ids[zone_name])
                continue
            zone = privatedns.PrivateZone(
                f"{name}-{zone_name}",
                private_zone_name=zone_name,
                resource_group_name=context.resource_group_name,
                location=PRIVATE_DNS_LOCATION,
                tags=dict(context.tags),
                opts=child_options(self),
            )
            self.vnet_links[zone_name] = privatedns.VirtualNetworkLink(
                f"{name}-{zone_name}-link",
                private_zone_name=zone.name,
                resource_group_name=context.resource_group_name,
                location=PRIVATE_DNS_LOCATION,
                virtual_network=privatedns.SubResourceArgs(id=target.vnet_id),
                # Endpoint records come from the zone group; VMs must not register here.
                registration_enabled=False,
                tags=dict(context.tags),
                opts=child_options(self),
            )
            self.zones[zone_name] = zone
            self.zone_ids[zone_name] = zone.id

        self.endpoint = network.PrivateEndpoint(
            f"{name}-pe",
            resource_group_name=context.resource_group_name,
            location=context.location,
            subnet=network.SubnetArgs(id=target.subnet_id),
            private_link_service_connections=[
                network.PrivateLinkServiceConnectionArgs(
                    name=f"{name}-{self.group_id}",
                    private_link_service_id=args.resource_id,
                    group_ids=[self.group_id],
                )
            ],
            tags=dict(context.tags),
            opts=child_options(self),
        )
        self.zone_group = network.PrivateDnsZoneGroup(
            f"{name}-dns",
            private_dns_zone_group_name="default",
            private_endpoint_name=self.endpoint.name,
            resource_group_name=context.resource_group_name,
            private_dns_zone_configs=[
                network.PrivateDnsZoneConfigArgs(
                    # Config names may not contain dots: Azure's portal uses the dashed zone name.
                    name=zone_name.replace(".", "-"),
                    private_dns_zone_id=self.zone_ids[zone_name],
                )
                for zone_name in self.zone_names
            ],
            opts=child_options(self),
        )

        self.endpoint_id = self.endpoint.id
        self.register_outputs({"endpointId": self.endpoint_id, "zoneIds": self.zone_ids})


def with_zones(
    target: PrivateEndpointTarget, zone_ids: Mapping[str, pulumi.Input[str]]
) -> PrivateEndpointTarget:
    """The same target, reusing `zone_ids` so later endpoints don't create those zones again."""
    return dataclasses.replace(target, dns_zone_ids={**target.dns_zone_ids, **zone_ids})
