"""`GpuNetwork`: the spoke VNet with system, GPU and private-endpoint subnets, each with an NSG.

Egress: subnets have no default outbound access; the system and GPU subnets leave through a NAT
gateway (GPU nodes never get public IPs). Optional: peering to a hub VNet, and Azure Bastion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
from pulumi_azure_native import network

from components.conventions import ComponentContext, child_options
from components.diagnostics import send_diagnostics
from gpustack import facts

# Lowest-precedence custom rule priority: an explicit deny that later allow rules can sit above.
# Source: https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview
DENY_INTERNET_PRIORITY = 4096


def bastion_facts() -> dict[str, Any]:
    """The AzureBastionSubnet name, size and mandated NSG rules (gpustack/data/bastion.yaml)."""
    return facts.load("bastion")


# The subnet name Azure Bastion requires.
BASTION_SUBNET_NAME: str = bastion_facts()["subnet"]["name"]


@dataclass(frozen=True)
class SubnetSpec:
    """One subnet: its CIDR, whether it holds private endpoints, whether it egresses by NAT."""

    cidr: str
    private_endpoints: bool = False
    # Subnets an Azure service owns (Bastion) keep their mandated names and NSG rules.
    service_name: str | None = None
    # Outbound Internet through the NAT gateway (nodes pull images, packages, drivers).
    nat_egress: bool = False


@dataclass(frozen=True)
class NatGatewaySpec:
    """The NAT gateway's one Standard static public IP and the zones that IP spans.

    The gateway itself is placed in no zone: one subnet holds nodes of every zone, and a zonal
    gateway would tie all their egress to one zone without isolating anything (zone isolation
    needs a subnet and a gateway per zone). The IP is zone-redundant so it survives a zone loss
    and can be moved to a zonal gateway later, keeping an allow-listed egress address.
    Source: https://learn.microsoft.com/azure/nat-gateway/nat-availability-zones
    """

    public_ip_zones: Sequence[str] = ("1", "2", "3")


@dataclass(frozen=True)
class BastionSpec:
    """Azure Bastion in the VNet's AzureBastionSubnet; Standard adds native-client tunnelling."""

    sku: Literal["Basic", "Standard"] = "Standard"


@dataclass(frozen=True)
class GpuNetworkArgs:
    """Address space, subnets by role (`system`, `gpu`, `endpoints`, ...), egress, hub, Bastion."""

    context: ComponentContext
    address_space: str
    subnets: Mapping[str, SubnetSpec] = field(default_factory=dict)
    nat_gateway: NatGatewaySpec | None = None
    # ARM id of the hub VNet to peer with; the hub's side of the peering is the hub team's.
    hub_vnet_id: str | None = None
    bastion: BastionSpec | None = None


class GpuNetwork(pulumi.ComponentResource):
    """A VNet whose subnets have no default outbound access and deny inbound from the Internet."""

    vnet_id: pulumi.Output[str]
    vnet_name: pulumi.Output[str]
    subnet_ids: dict[str, pulumi.Output[str]]
    nsg_ids: dict[str, pulumi.Output[str]]
    nat_gateway_id: pulumi.Output[str] | None
    nat_public_ip: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: GpuNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:network:GpuNetwork", name, None, opts)
        context = args.context
        self._check(args)
        self.vnet = network.VirtualNetwork(
            f"{name}-vnet",
            resource_group_name=context.resource_group_name,
            location=context.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[args.address_space]),
            tags=dict(context.tags),
            # Subnets are separate resources below; keep the VNet from reconciling them away.
            opts=child_options(self, ignore_changes=["subnets"]),
        )

        # The NAT gateway exists before the subnets that egress through it.
        self.nat_public_ip_address: network.PublicIPAddress | None = None
        self.nat_gateway: network.NatGateway | None = None
        if args.nat_gateway is not None:
            self.nat_public_ip_address = network.PublicIPAddress(
                f"{name}-nat-ip",
                resource_group_name=context.resource_group_name,
                location=context.location,
                sku=network.PublicIPAddressSkuArgs(
                    name=network.PublicIPAddressSkuName.STANDARD,
                    tier=network.PublicIPAddressSkuTier.REGIONAL,
                ),
                public_ip_allocation_method=network.IPAllocationMethod.STATIC,
                public_ip_address_version=network.IPVersion.I_PV4,
                zones=list(args.nat_gateway.public_ip_zones) or None,
                tags={**context.tags, "purpose": "nat-egress"},
                opts=child_options(self),
            )
            self.nat_gateway = network.NatGateway(
                f"{name}-nat",
                resource_group_name=context.resource_group_name,
                location=context.location,
                sku=network.NatGatewaySkuArgs(name=network.NatGatewaySkuName.STANDARD),
                public_ip_addresses=[network.SubResourceArgs(id=self.nat_public_ip_address.id)],
                # No `zones`: a no-zone gateway, see NatGatewaySpec.
                tags=dict(context.tags),
                opts=child_options(self),
            )

        self.subnets: dict[str, network.Subnet] = {}
        self.nsgs: dict[str, network.NetworkSecurityGroup] = {}
        self._bastion_ips: list[network.PublicIPAddress] = []
        previous: network.Subnet | None = None
        for role, spec in args.subnets.items():
            nsg = self._nsg(name, role, spec, context)
            nat = (
                network.SubResourceArgs(id=self.nat_gateway.id)
                if spec.nat_egress and self.nat_gateway is not None
                else None
            )
            subnet = network.Subnet(
                f"{name}-{role}",
                subnet_name=spec.service_name or f"snet-{role}",
                resource_group_name=context.resource_group_name,
                virtual_network_name=self.vnet.name,
                address_prefix=spec.cidr,
                network_security_group=network.NetworkSecurityGroupArgs(id=nsg.id),
                nat_gateway=nat,
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

        self.hub_peering: network.VirtualNetworkPeering | None = None
        if args.hub_vnet_id is not None:
            self.hub_peering = network.VirtualNetworkPeering(
                f"{name}-to-hub",
                virtual_network_peering_name="to-hub",
                resource_group_name=context.resource_group_name,
                virtual_network_name=self.vnet.name,
                remote_virtual_network=network.SubResourceArgs(id=args.hub_vnet_id),
                allow_virtual_network_access=True,
                # Traffic a hub firewall or NVA forwards (e.g. from on-premises) may enter.
                allow_forwarded_traffic=True,
                allow_gateway_transit=False,
                use_remote_gateways=False,
                # Also a write on the VNet: after the subnets, not alongside them.
                opts=child_options(self, depends_on=[previous] if previous else None),
            )

        self.bastion_host: network.BastionHost | None = None
        if args.bastion is not None:
            self.bastion_host = self._bastion(name, args.bastion, args.subnets, context)

        # Categories per type come from gpustack/data/azure_monitor.yaml (NSG events and rule
        # counters, VNet and public IP DDoS logs, Bastion session audit).
        monitored: list[pulumi.CustomResource] = [self.vnet, *self.nsgs.values()]
        monitored += [r for r in (self.nat_public_ip_address, self.bastion_host) if r is not None]
        monitored += self._bastion_ips
        for resource in monitored:
            send_diagnostics(self, resource.pulumi_resource_name, resource, context)

        self.vnet_id = self.vnet.id
        self.vnet_name = self.vnet.name
        self.subnet_ids = {role: subnet.id for role, subnet in self.subnets.items()}
        self.nsg_ids = {role: nsg.id for role, nsg in self.nsgs.items()}
        self.nat_gateway_id = self.nat_gateway.id if self.nat_gateway else None
        self.nat_public_ip = (
            self.nat_public_ip_address.ip_address.apply(lambda ip: ip or "")
            if self.nat_public_ip_address
            else None
        )
        self.register_outputs(
            {
                "vnetId": self.vnet_id,
                "subnetIds": self.subnet_ids,
                "natGatewayId": self.nat_gateway_id,
            }
        )

    @staticmethod
    def _check(args: GpuNetworkArgs) -> None:
        names = {s.service_name for s in args.subnets.values()}
        if args.bastion is not None and BASTION_SUBNET_NAME not in names:
            raise ValueError(f"Bastion needs a subnet with service_name={BASTION_SUBNET_NAME!r}")
        if args.nat_gateway is None and any(s.nat_egress for s in args.subnets.values()):
            raise ValueError("subnets ask for NAT egress but no nat_gateway is configured")

    def _nsg(
        self, name: str, role: str, spec: SubnetSpec, context: ComponentContext
    ) -> network.NetworkSecurityGroup:
        rules = [deny_internet_inbound()]
        if spec.service_name == BASTION_SUBNET_NAME:
            # Azure mandates these on AzureBastionSubnet; its inbound 443 from the Internet is the
            # one documented exception to "deny inbound from the Internet" (users reach Bastion).
            rules = [*_bastion_rules(), *rules]
        return network.NetworkSecurityGroup(
            f"{name}-{role}-nsg",
            resource_group_name=context.resource_group_name,
            location=context.location,
            security_rules=rules,
            tags=dict(context.tags),
            opts=child_options(self),
        )

    def _bastion(
        self,
        name: str,
        spec: BastionSpec,
        subnets: Mapping[str, SubnetSpec],
        context: ComponentContext,
    ) -> network.BastionHost:
        role = next(r for r, s in subnets.items() if s.service_name == BASTION_SUBNET_NAME)
        public_ip = network.PublicIPAddress(
            f"{name}-bastion-ip",
            resource_group_name=context.resource_group_name,
            location=context.location,
            sku=network.PublicIPAddressSkuArgs(
                name=network.PublicIPAddressSkuName.STANDARD,
                tier=network.PublicIPAddressSkuTier.REGIONAL,
            ),
            public_ip_allocation_method=network.IPAllocationMethod.STATIC,
            tags={**context.tags, "purpose": "bastion"},
            opts=child_options(self),
        )
        self._bastion_ips.append(public_ip)
        standard = spec.sku == "Standard"
        return network.BastionHost(
            f"{name}-bastion",
            resource_group_name=context.resource_group_name,
            location=context.location,
            sku=network.SkuArgs(name=network.BastionHostSkuName(spec.sku)),
            ip_configurations=[
                network.BastionHostIPConfigurationArgs(
                    name="bastion",
                    subnet=network.SubResourceArgs(id=self.subnets[role].id),
                    public_ip_address=network.SubResourceArgs(id=public_ip.id),
                )
            ],
            # `az network bastion ssh` (native client) needs tunnelling, a Standard feature.
            enable_tunneling=True if standard else None,
            enable_shareable_link=False if standard else None,
            tags=dict(context.tags),
            opts=child_options(self),
        )


def _bastion_rules() -> list[network.SecurityRuleArgs]:
    """The NSG rules Azure requires on AzureBastionSubnet, from gpustack/data/bastion.yaml."""
    return security_rules(bastion_facts()["nsg_rules"])


def deny_internet_inbound() -> network.SecurityRuleArgs:
    """The rule every subnet's NSG ends with: no inbound traffic from the Internet."""
    return network.SecurityRuleArgs(
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


def security_rules(table: Sequence[Mapping[str, Any]]) -> list[network.SecurityRuleArgs]:
    """Allow rules from a data table (name, why, priority, direction, protocol, source,
    destination, ports), as gpustack/data/bastion.yaml and serving.yaml write them."""
    rules = []
    for rule in table:
        ports = [str(port) for port in rule["ports"]]
        rules.append(
            network.SecurityRuleArgs(
                name=rule["name"],
                description=rule["why"],
                priority=rule["priority"],
                direction=network.SecurityRuleDirection(rule["direction"]),
                access=network.SecurityRuleAccess.ALLOW,
                protocol=network.SecurityRuleProtocol(rule["protocol"]),
                source_address_prefix=rule["source"],
                source_port_range="*",
                destination_address_prefix=rule["destination"],
                destination_port_range=ports[0] if len(ports) == 1 else None,
                destination_port_ranges=ports if len(ports) > 1 else None,
            )
        )
    return rules


@dataclass(frozen=True)
class ServiceSubnet:
    """A subnet a service owns (API Management, Managed Lustre), and its NSG."""

    subnet: network.Subnet
    nsg: network.NetworkSecurityGroup


def service_subnet(
    parent: pulumi.Resource,
    name: str,
    *,
    context: ComponentContext,
    vnet_name: pulumi.Input[str],
    cidr: str,
    rules: Sequence[network.SecurityRuleArgs] = (),
    nat_gateway_id: pulumi.Input[str] | None = None,
    depends_on: Sequence[pulumi.Resource] = (),
) -> ServiceSubnet:
    """A dedicated subnet in an existing VNet with its own NSG: `rules`, then deny-Internet.

    Like GpuNetwork's subnets it has no default outbound access. `depends_on` should hold the
    VNet's other subnet writers: ARM rejects concurrent subnet writes on one VNet.
    """
    nsg = network.NetworkSecurityGroup(
        f"{name}-nsg",
        resource_group_name=context.resource_group_name,
        location=context.location,
        security_rules=[*rules, deny_internet_inbound()],
        tags=dict(context.tags),
        opts=child_options(parent),
    )
    subnet = network.Subnet(
        name,
        subnet_name=f"snet-{name}",
        resource_group_name=context.resource_group_name,
        virtual_network_name=vnet_name,
        address_prefix=cidr,
        network_security_group=network.NetworkSecurityGroupArgs(id=nsg.id),
        nat_gateway=network.SubResourceArgs(id=nat_gateway_id) if nat_gateway_id else None,
        default_outbound_access=False,
        opts=child_options(parent, depends_on=depends_on),
    )
    send_diagnostics(parent, f"{name}-nsg", nsg, context)
    return ServiceSubnet(subnet, nsg)

