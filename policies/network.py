"""Network rules: Internet exposure through NSGs, subnets without NSGs or with implicit egress,
IP forwarding, custom DNS, zone-redundant public IPs and private endpoints for private services.

The management-port and public-IP rules that predate this module live in security.py.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pulumi_policy import Severity
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from gpustack import facts
from policies.rulebook import (
    ADVISORY,
    MANDATORY,
    Deferred,
    Report,
    Resource,
    Rule,
    Stack,
    StackReport,
    carries_ports,
    dig,
    from_internet,
    given,
    items,
    lower,
    names,
    nic_configurations,
    one_of,
    policy_fact,
    port_ranges,
    resource_rule,
    stack_rule,
    zoneless_region,
)

NSG = "network:NetworkSecurityGroup"
SECURITY_RULE = "network:SecurityRule"
VNET = "network:VirtualNetwork"
SUBNET = "network:Subnet"
NIC = "network:NetworkInterface"
PUBLIC_IP = "network:PublicIPAddress"
PRIVATE_ENDPOINT = "network:PrivateEndpoint"
VM = "compute:VirtualMachine"
SCALE_SET = "compute:VirtualMachineScaleSet"
STORAGE = "storage:StorageAccount"
VAULT = "keyvault:Vault"
REGISTRY = "containerregistry:Registry"

# How a private endpoint names the service it connects to: ARM type segment and name input.
_PRIVATE_SERVICES = {
    STORAGE: ("storageAccounts", "accountName"),
    VAULT: ("vaults", "vaultName"),
    REGISTRY: ("registries", "registryName"),
}


def _rules(resource: Resource, deferred: Deferred) -> list[Any]:
    """The security rules of an NSG (known ones; unknown ones go to `deferred`), or the rule."""
    if resource.is_a(SECURITY_RULE):
        return [resource.props]
    return list(deferred.each(resource.get("securityRules")))


def _describe(low: int, high: int) -> str:
    services = policy_fact("well_known_ports")["ports"]
    if low == 0 and high == 65535:
        return "every port"
    known = [f"{port} ({services[port]})" for port in sorted(services) if low <= port <= high]
    span = str(low) if low == high else f"{low}-{high}"
    if not known:
        return span
    if low == high:
        return names(known)
    return f"{span}, including {names(known[:3])}"


def _bastion_ingress() -> dict[str, Any]:
    """The one Internet-facing rule Azure mandates on AzureBastionSubnet (bastion.yaml)."""
    return next(r for r in facts.load("bastion")["nsg_rules"] if r["source"] == "Internet")


def _bastion_nsg(rules: list[Any]) -> bool | None:
    """True for an NSG carrying Bastion's mandated GatewayManager rule: AzureBastionSubnet's.

    None when no known rule is that one but some rule is unknown during a preview.
    """
    deferred = Deferred()
    for rule in rules:
        if deferred.check(lambda r: one_of(dig(r, "direction"), "Inbound")
                          and one_of(dig(r, "access"), "Allow")
                          and one_of(dig(r, "sourceAddressPrefix"), "GatewayManager"), rule):
            return True
    return None if deferred.error is not None else False


def _is_bastion_ingress(rule: Any) -> bool:
    """True for exactly the Internet-to-443/TCP rule users reach Bastion through."""
    mandated = _bastion_ingress()
    ports = [(int(p), int(p)) for p in mandated["ports"]]
    return one_of(dig(rule, "protocol"), mandated["protocol"]) and port_ranges(rule) == ports


@resource_rule(
    Rule(
        id="gpustack-nsg-no-internet-inbound",
        area="security",
        title="NSGs allow no inbound traffic from the Internet unless a port is listed",
        why="Every port open to the Internet is scanned within minutes: HTTP/HTTPS endpoints, "
        "databases, Redis, the kubelet, Jupyter. GPU stacks are reached through private "
        "endpoints, Bastion and an internal gateway.",
        fix="Remove the Allow rule or limit its source to a private range or service tag; list "
        "a port that must face the Internet in allowedInternetPorts (explicit loosening). "
        "Azure Bastion's mandated Internet-to-443 rule on its own NSG is accepted.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview",
            "https://learn.microsoft.com/azure/security/fundamentals/network-best-practices",
        ),
        mirrors=("Azure.NSG.AnyInboundSource", "CKV_AZURE_160", "CKV_AZURE_77"),
        settings={
            "allowedInternetPorts": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": 65535},
                "default": [],
                "description": "Ports Allow rules may open to the Internet (e.g. [443]).",
            }
        },
    ),
    NSG,
    SECURITY_RULE,
)
def nsg_no_internet_inbound(resource: Resource, report: Report) -> None:
    # Management ports have their own, critical rule (gpustack-nsg-no-internet-management-ports).
    allowed = {int(port) for port in resource.config["allowedInternetPorts"]}
    allowed |= set(policy_fact("management_ports")["ports"])
    deferred = Deferred()
    rules = _rules(resource, deferred)
    bastion = _bastion_nsg(rules)
    for rule in rules:
        # Rules with values unknown during a preview are judged after the known ones.
        message = deferred.check(_internet_inbound, rule, resource, allowed, bastion)
        if message:
            report(message)
    deferred.finish()


def _internet_inbound(
    rule: Any, resource: Resource, allowed: set[int], bastion: bool | None
) -> str | None:
    """What an Internet-facing rule opens beyond the allowed ports, or None."""
    if not from_internet(rule):
        return None
    if _is_bastion_ingress(rule):
        if bastion:
            return None
        if bastion is None:
            # Whether this is Bastion's NSG depends on a rule not known yet.
            raise UnknownValueError(UNKNOWN_STRING_VALUE, ["securityRules"])
    name = dig(rule, "name") or resource.name
    if not carries_ports(rule):
        # ICMP, ESP, AH: no ports to list or to allow, but still inbound from the Internet.
        return f"rule {name!r} allows {dig(rule, 'protocol')} from the Internet"
    open_ranges = [
        (low, high)
        for low, high in port_ranges(rule)
        if not all(port in allowed for port in range(low, high + 1))
    ]
    if not open_ranges:
        return None
    protocol = dig(rule, "protocol") or "*"
    shown = "; ".join(_describe(low, high) for low, high in open_ranges)
    return f"rule {name!r} allows {protocol} from the Internet to {shown}"


@resource_rule(
    Rule(
        id="gpustack-nsg-no-deny-all-inbound",
        area="security",
        title="NSGs do not deny all inbound traffic from every source",
        why="A Deny rule for every source and port also drops Azure's load balancer probes and "
        "platform traffic, which breaks AKS nodes, Bastion and API Management in ways that "
        "are hard to trace. Deny the Internet instead.",
        fix="Give the deny rule the 'Internet' source (or specific ranges) rather than '*'; "
        "the default rules already deny everything else.",
        severity=Severity.LOW,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview#default-security-rules",),
        mirrors=("Azure.NSG.DenyAllInbound",),
    ),
    NSG,
    SECURITY_RULE,
)
def nsg_no_deny_all_inbound(resource: Resource, report: Report) -> None:
    deferred = Deferred()
    for rule in _rules(resource, deferred):
        if not one_of(dig(rule, "direction"), "Inbound") or not one_of(dig(rule, "access"), "Deny"):
            continue
        sources = [dig(rule, "sourceAddressPrefix"), *items(dig(rule, "sourceAddressPrefixes"))]
        if any(lower(s) in ("*", "any", "0.0.0.0/0") for s in sources) and (0, 65535) in (
            port_ranges(rule)
        ):
            report(f"rule {dig(rule, 'name') or resource.name!r} denies all inbound traffic from "
                   "every source")
    deferred.finish()


def _subnets(resource: Resource) -> list[tuple[str, Any]]:
    """(name, properties) of a standalone subnet or a VNet's inline subnets."""
    if resource.is_a(SUBNET):
        return [(str(resource.get("subnetName") or resource.get("name") or resource.name),
                 resource.props)]
    found = []
    for index, subnet in enumerate(items(resource.get("subnets"))):
        found.append((str(dig(subnet, "name") or f"#{index}"), subnet))
    return found


def _reserved(name: str) -> bool:
    return name.lower() in {n.lower() for n in policy_fact("reserved_subnets")["names"]}


@resource_rule(
    Rule(
        id="gpustack-subnet-nsg",
        area="security",
        title="Subnets have a network security group",
        why="A subnet without an NSG has only Azure's default rules between it and every peered "
        "network; one NIC with a public IP or a misrouted flow is then wide open.",
        fix="Set network_security_group on every subnet (inline in the VNet or as a "
        "network.Subnet); Azure-reserved subnets such as GatewaySubnet are exempt.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview",),
        mirrors=("Azure.VNET.UseNSGs", "CKV2_AZURE_31"),
    ),
    VNET,
    SUBNET,
)
def subnet_nsg(resource: Resource, report: Report) -> None:
    without_nsg = policy_fact("reserved_subnets")["delegations_without_nsg"]
    for name, subnet in _subnets(resource):
        if _reserved(name):
            continue
        # Subnets delegated to a service that takes no NSG (Dedicated HSM) are exempt.
        services = [dig(d, "serviceName") for d in items(dig(subnet, "delegations"))]
        if any(one_of(service, *without_nsg) for service in services):
            continue
        # Presence only: an NSG attached by an Output is unknown in a preview but attached.
        if not given(subnet, "networkSecurityGroup"):
            report(f"subnet {name!r} has no networkSecurityGroup")


@resource_rule(
    Rule(
        id="gpustack-subnet-no-default-outbound",
        area="security",
        title="Subnets disable default outbound access",
        why="Default outbound access gives VMs an implicit, shared public IP nobody controls or "
        "logs; egress should go through a NAT gateway or firewall the stack declares. Azure "
        "is retiring it in favour of private subnets.",
        fix="Set default_outbound_access=False on every subnet and give it a NAT gateway (or a "
        "route to a firewall).",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/virtual-network/ip-services/default-outbound-access",),
        mirrors=("Azure.VNET.PrivateSubnet",),
    ),
    VNET,
    SUBNET,
)
def subnet_no_default_outbound(resource: Resource, report: Report) -> None:
    for name, subnet in _subnets(resource):
        if _reserved(name):
            continue
        if dig(subnet, "defaultOutboundAccess") is not False:
            report(f"subnet {name!r} does not set defaultOutboundAccess to False")


@resource_rule(
    Rule(
        id="gpustack-nic-no-ip-forwarding",
        area="security",
        title="NICs do not forward IP traffic",
        why="IP forwarding lets a VM route traffic that is not addressed to it: a compromised "
        "GPU node could relay traffic around NSGs. Only network appliances need it.",
        fix="Leave enable_ip_forwarding unset or False on NICs and scale set NIC configurations.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/virtual-network/virtual-network-network-interface",),
        mirrors=("CKV_AZURE_118",),
    ),
    NIC,
    VM,
    SCALE_SET,
)
def nic_no_ip_forwarding(resource: Resource, report: Report) -> None:
    if resource.is_a(NIC):
        if resource.get("enableIPForwarding") is True:
            report("enableIPForwarding is True")
        return
    for nic in nic_configurations(resource):
        if dig(nic, "enableIPForwarding") is True:
            report(f"NIC {dig(nic, 'name')!r} enables IP forwarding")


@resource_rule(
    Rule(
        id="gpustack-nic-inherits-dns",
        area="reliability",
        title="NICs take DNS servers from their VNet",
        why="DNS servers set on one NIC drift from the VNet's: that VM stops resolving the "
        "private endpoints' zones when the network's resolvers change.",
        fix="Leave dns_settings.dns_servers unset on NICs; set DNS servers on the VNet.",
        severity=Severity.LOW,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/virtual-network/virtual-network-network-interface",),
        mirrors=("Azure.VM.UniqueDns",),
    ),
    NIC,
)
def nic_inherits_dns(nic: Resource, report: Report) -> None:
    servers = [s for s in items(nic.get("dnsSettings", "dnsServers")) if isinstance(s, str)]
    if servers:
        report(f"dnsSettings.dnsServers sets {names(servers)} on the NIC")


def _private_address(value: Any) -> bool:
    try:
        return ipaddress.ip_address(str(value)).is_private
    except ValueError:
        return False


@resource_rule(
    Rule(
        id="gpustack-vnet-dns",
        area="reliability",
        title="VNets with custom DNS name at least two private DNS servers",
        why="One DNS server is one failure away from nodes that cannot resolve the private "
        "endpoints of storage, Key Vault and the registry; public resolvers cannot resolve "
        "private DNS zones at all.",
        fix="List at least two DNS servers inside the network (or leave dhcp_options unset for "
        "Azure DNS).",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/virtual-network/virtual-networks-name-resolution-for-vms-and-role-instances",),
        mirrors=("Azure.VNET.SingleDNS", "Azure.VNET.LocalDNS", "CKV_AZURE_182", "CKV_AZURE_183"),
    ),
    VNET,
)
def vnet_dns(vnet: Resource, report: Report) -> None:
    servers = [s for s in items(vnet.get("dhcpOptions", "dnsServers")) if isinstance(s, str)]
    if not servers:
        return  # Azure-provided DNS
    if len(servers) < 2:
        report(f"dhcpOptions.dnsServers lists one server ({names(servers)}); list at least two")
    public = [s for s in servers if not _private_address(s)]
    if public:
        report(f"dhcpOptions.dnsServers includes non-private servers {names(public)}")


@resource_rule(
    Rule(
        id="gpustack-public-ip-zone-redundant",
        area="reliability",
        title="Standard public IP addresses are zone-redundant",
        why="A zonal or non-zonal public IP fails with its zone; the NAT gateway and Bastion "
        "that own it lose egress or access when they need it most.",
        fix="Set zones=['1', '2', '3'] on Standard public IPs in regions with zones.",
        severity=Severity.LOW,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/virtual-network/ip-services/public-ip-addresses#availability-zone",),
        mirrors=("Azure.PublicIP.AvailabilityZone",),
    ),
    PUBLIC_IP,
)
def public_ip_zone_redundant(address: Resource, report: Report) -> None:
    if not one_of(address.get("sku", "name"), "Standard") or zoneless_region(address):
        return  # Basic has no zones; nor has a region without availability zones
    zones = sorted({str(z) for z in items(address.get("zones"))})
    if len(zones) < 2:
        report(f"zones are {names(zones)}; use zones 1, 2 and 3")


@stack_rule(
    Rule(
        id="gpustack-private-endpoint-for-private-services",
        area="security",
        title="Storage accounts, Key Vaults and registries with public access off have a "
        "private endpoint",
        why="With public network access disabled and no private endpoint the service is "
        "unreachable, so someone re-enables public access to get work done.",
        fix="Declare a network.PrivateEndpoint whose private_link_service_connections name the "
        "resource (components/private_link.py), with its private DNS zone group.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/private-link/private-endpoint-overview",),
        mirrors=("CKV2_AZURE_32", "CKV2_AZURE_33"),
    )
)
def private_endpoint_for_private_services(stack: Stack, report: StackReport) -> None:
    connected: set[str] = set()
    for endpoint in stack.of(PRIVATE_ENDPOINT):
        connected |= stack.referenced(endpoint, "privateLinkServiceConnections", _PRIVATE_SERVICES)
        for connection in [
            *items(endpoint.known("privateLinkServiceConnections")),
            *items(endpoint.known("manualPrivateLinkServiceConnections")),
        ]:
            connected |= stack.named_by(dig(connection, "privateLinkServiceId"), _PRIVATE_SERVICES)
    deferred = Deferred()  # a public access setting unknown during a preview is noted
    for kind in _PRIVATE_SERVICES:
        for service in stack.of(kind):
            path = ("properties", "publicNetworkAccess") if kind == VAULT else (
                "publicNetworkAccess",)
            access = deferred.check(service.get, *path)
            if one_of(access, "Disabled") and service.urn not in connected:
                report(f"{kind} {service.name} disables public access but no private endpoint "
                       "connects to it", service.urn)
    deferred.finish()


_NSG_NAMES = {NSG: ("networkSecurityGroups", "networkSecurityGroupName")}


def _attached_nsgs(stack: Stack) -> set[str]:
    """URNs of NSGs some subnet or NIC of the stack uses (standalone or inline in a VNet)."""
    used: set[str] = set()
    for holder in stack.of(SUBNET, NIC):
        used |= stack.referenced(holder, "networkSecurityGroup", _NSG_NAMES)
        used |= stack.named_by(holder.known("networkSecurityGroup", "id"), _NSG_NAMES)
    for vnet in stack.of(VNET):
        used |= vnet.depends_on("subnets")
        for subnet in items(vnet.known("subnets")):
            used |= stack.named_by(dig(subnet, "networkSecurityGroup", "id"), _NSG_NAMES)
    # VMs and scale sets attach NSGs in their inline NIC configurations, a common shape for
    # scale sets: a dependency of the profile input on an NSG, or the NSG's ARM id.
    nsgs = {nsg.urn for nsg in stack.of(NSG)}
    for machine, prop in [*((vm, "networkProfile") for vm in stack.of(VM)),
                          *((vmss, "virtualMachineProfile") for vmss in stack.of(SCALE_SET))]:
        used |= machine.depends_on(prop) & nsgs
        profile = machine.known(prop)
        configs = dig(profile, "networkProfile") if prop == "virtualMachineProfile" else profile
        for config in items(dig(configs, "networkInterfaceConfigurations")):
            used |= stack.named_by(dig(config, "networkSecurityGroup", "id"), _NSG_NAMES)
    return used


@stack_rule(
    Rule(
        id="gpustack-nsg-associated",
        area="security",
        title="NSGs are associated with a subnet or NIC",
        why="An NSG that filters nothing gives a false sense of protection and drifts from the "
        "rules the subnets actually run with.",
        fix="Attach the NSG to its subnet (network_security_group) or NIC, or delete it.",
        severity=Severity.LOW,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/virtual-network/network-security-group-how-it-works",),
        mirrors=("Azure.NSG.Associated",),
    )
)
def nsg_associated(stack: Stack, report: StackReport) -> None:
    used = _attached_nsgs(stack)
    for nsg in stack.of(NSG):
        if nsg.urn not in used:
            report(f"{nsg.name} is not associated with any subnet or NIC of the stack", nsg.urn)


POLICIES = [
    nsg_no_internet_inbound,
    nsg_no_deny_all_inbound,
    subnet_nsg,
    subnet_no_default_outbound,
    nic_no_ip_forwarding,
    nic_inherits_dns,
    vnet_dns,
    public_ip_zone_redundant,
    private_endpoint_for_private_services,
    nsg_associated,
]
