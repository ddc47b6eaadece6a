"""`GpuNetwork`: the spoke VNet with system, GPU and private-endpoint subnets, each with an NSG."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import network

from components.conventions import ComponentContext, child_options

# Lowest-precedence custom rule priority: an explicit deny that later allow rules can sit above.
# Source: https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview
DENY_INTERNET_PRIORITY = 4096


@dataclass(frozen=True)
class SubnetSpec:
    """One subnet: its CIDR and whether private endpoints live in it."""

    cidr: str
    private_endpoints: bool = False
    # Subnets an Azure service owns (Bastion) keep their mandated names and NSG rules.
    service_name: str | None = None


@dataclass(frozen=True)
class GpuNetworkArgs:
    """Address space and subnets by role (`system`, `gpu`, `endpoints`, ...)."""

    context: ComponentContext
    address_space: str
    subnets: Mapping[str, SubnetSpec] = field(default_factory=dict)


class GpuNetwork(pulumi.ComponentResource):
    """A VNet whose subnets have no default outbound access and deny inbound from the Internet."""

    vnet_id: pulumi.Output[str]
    vnet_name: pulumi.Output[str]
    subnet_ids: dict[str, pulumi.Output[str]]
    nsg_ids: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: GpuNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:network:GpuNetwork", name, None, opts)
        context = args.context
        self.vnet = network.VirtualNetwork(
            f"{name}-vnet",
            resource_group_name=context.resource_group_name,
            location=context.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[args.address_space]),
            tags=dict(context.tags),
            # Subnets are separate resources below; keep the VNet from reconciling them away.
            opts=child_options(self, ignore_changes=["subnets"]),
        )
        self.subnets: dict[str, network.Subnet] = {}
        self.nsgs: dict[str, network.NetworkSecurityGroup] = {}
        previous: network.Subnet | None = None
        for role, spec in args.subnets.items():
            nsg = self._nsg(name, role, context)
            subnet = network.Subnet(
                f"{name}-{role}",
                subnet_name=spec.service_name or f"snet-{role}",
                resource_group_name=context.resource_group_name,
                virtual_network_name=self.vnet.name,
                address_prefix=spec.cidr,
                network_security_group=network.NetworkSecurityGroupArgs(id=nsg.id),
                # No implicit outbound: egress goes through the NAT gateway, or nowhere.
                default_outbound_access=False,
                private_endpoint_network_policies=(
                    network.VirtualNetworkPrivateEndpointNetworkPolicies.ENABLED
                    if spec.private_endpoints
                    else None
                ),
                # ARM rejects concurrent subnet writes on one VNet; create them one at a time.
                opts=child_options(self, depends_on=[previous] if previous else None),
            )
            self.subnets[role] = subnet
            self.nsgs[role] = nsg
            previous = subnet

        self.vnet_id = self.vnet.id
        self.vnet_name = self.vnet.name
        self.subnet_ids = {role: subnet.id for role, subnet in self.subnets.items()}
        self.nsg_ids = {role: nsg.id for role, nsg in self.nsgs.items()}
        self.register_outputs({"vnetId": self.vnet_id, "subnetIds": self.subnet_ids})

    def _nsg(
        self, name: str, role: str, context: ComponentContext
    ) -> network.NetworkSecurityGroup:
        return network.NetworkSecurityGroup(
            f"{name}-{role}-nsg",
            resource_group_name=context.resource_group_name,
            location=context.location,
            security_rules=[
                network.SecurityRuleArgs(
                    name="deny-internet-inbound",
                    description="No inbound traffic from the Internet to this subnet.",
                    priority=DENY_INTERNET_PRIORITY,
                    direction=network.SecurityRuleDirection.INBOUND,
                    access=network.SecurityRuleAccess.DENY,
                    protocol=network.SecurityRuleProtocol.ASTERISK,
                    source_address_prefix="Internet",
                    source_port_range="*",
                    destination_address_prefix="*",
                    destination_port_range="*",
                )
            ],
            tags=dict(context.tags),
            opts=child_options(self),
        )
