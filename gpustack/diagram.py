"""The plan's architecture as a Mermaid flowchart: network and subnets, AKS and its pools with
GPU counts, VM pools, data services, private endpoints and monitoring.

Readable at a glance rather than complete: identities, role assignments, NSGs, DNS records and
diagnostic settings are left out; compute sits in the subnet it joins; edges are drawn only
where one shown resource references another's ARM id (a private endpoint to its target, a
cluster to its pools, a subnet to its NAT gateway).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpustack.inventory import (
    CLUSTER,
    ComputePool,
    Inventory,
    Resource,
    arm_default,
    compute_pools,
    is_known,
)

VNET = "azure-native:network:VirtualNetwork"
SUBNET = "azure-native:network:Subnet"
NIC = "azure-native:network:NetworkInterface"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"

# Shown resources outside compute: type -> (group, label prefix, shape).
_SERVICES: dict[str, tuple[str, str, str]] = {
    "azure-native:storage:StorageAccount": ("data", "Storage", "cylinder"),
    "azure-native:keyvault:Vault": ("data", "Key Vault", "hexagon"),
    "azure-native:containerregistry:Registry": ("data", "Registry", "cylinder"),
    "azure-native:storagecache:AmlFilesystem": ("subnet", "Managed Lustre", "cylinder"),
    "azure-native:operationalinsights:Workspace": ("monitoring", "Log Analytics", "cylinder"),
    "azure-native:monitor:AzureMonitorWorkspace": (
        "monitoring",
        "Azure Monitor workspace",
        "cylinder",
    ),
    "azure-native:dashboard:Grafana": ("monitoring", "Managed Grafana", "rect"),
    "azure-native:monitor:ActionGroup": ("monitoring", "Action group", "stadium"),
    "azure-native:network:NatGateway": ("vnet", "NAT gateway", "stadium"),
    "azure-native:network:BastionHost": ("subnet", "Bastion", "stadium"),
    "azure-native:apimanagement:ApiManagementService": ("subnet", "API Management", "rect"),
    PRIVATE_ENDPOINT: ("subnet", "PE", "stadium"),
}
_GROUP_TITLES = {"data": "Data", "monitoring": "Monitoring", "compute": "Compute (no subnet)"}
_SHAPES = {
    "rect": ('["', '"]'),
    "stadium": ('(["', '"])'),
    "cylinder": ('[("', '")]'),
    "hexagon": ('{{"', '"}}'),
}
NODE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass
class _Node:
    id: str
    label: str
    shape: str = "rect"
    css: str | None = None
    urn: str | None = None


@dataclass
class _Subnet:
    id: str
    label: str
    nodes: list[_Node] = field(default_factory=list)


def render_mermaid(document: Mapping[str, Any]) -> str:
    """A Mermaid `flowchart` of the plan document's resources."""
    warnings = (document.get("cost") or {}).get("warnings") or []
    cost = "".join(f"%% warning: {' '.join(str(w).split())}\n" for w in warnings)
    return mermaid_flowchart(document["resources"]) + "\n" + _policy_comments(document) + cost


def _policy_comments(document: Mapping[str, Any]) -> str:
    """Policy results as mermaid comments (`%%`): the diagram stays clean, the facts travel."""
    policy = document.get("policy")
    if not policy:
        return ""
    violations = policy.get("violations") or []
    lines = [f"%% policy {policy.get('pack')}: {len(violations)} violations"]
    for violation in violations:
        target = (violation.get("urn") or "stack").split("::")[-1]
        message = " ".join(str(violation.get("message", "")).split())
        lines.append(f"%% [{violation['level']}] {violation['rule']} on {target}: {message}")
    return "\n".join(lines) + "\n"


def mermaid_flowchart(resources: Sequence[Mapping[str, Any]]) -> str:
    """The flowchart text for a list of plan resources."""
    return _Diagram(Inventory(resources)).render()


class _Diagram:
    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.counter = 0
        self.node_of: dict[str, _Node] = {}  # resource urn -> its node
        self.vnets: dict[str, tuple[str, str, dict[str, _Subnet], list[_Node]]] = {}
        self.subnet_of: dict[str, _Subnet] = {}  # subnet urn -> subnet box
        self.groups: dict[str, list[_Node]] = {"compute": [], "data": [], "monitoring": []}
        self.loose: list[_Node] = []
        self.edges: list[tuple[str, str, str, str]] = []  # (from, arrow, label, to)

    def new_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    # --- building -----------------------------------------------------------------------

    def render(self) -> str:
        self.add_network()
        self.add_compute()
        self.add_services()
        self.add_edges()
        return "\n".join(self.lines())

    def add_network(self) -> None:
        for vnet in self.inventory.of_type(VNET):
            prefixes = vnet.get("addressSpace.addressPrefixes") or []
            label = _join(f"VNet {_display_name(vnet, 'virtualNetworkName')}", *prefixes)
            self.vnets[vnet.urn] = (self.new_id("vnet"), label, {}, [])
            for inline in vnet.get("subnets") or []:
                if isinstance(inline, Mapping) and is_known(inline.get("name")):
                    box = _Subnet(
                        self.new_id("snet"), _join(str(inline["name"]), inline.get("addressPrefix"))
                    )
                    self.vnets[vnet.urn][2][str(inline["name"])] = box
        vnets = self.inventory.of_type(VNET)
        for subnet in self.inventory.of_type(SUBNET):
            vnet = self.inventory.referenced(
                subnet, "virtualNetworkName", vnets, ["virtualNetworkName"]
            )
            if vnet is None and len(vnets) == 1:
                vnet = vnets[0]
            if vnet is None:
                continue
            name = _display_name(subnet, "subnetName")
            boxes = self.vnets[vnet.urn][2]
            box = boxes.get(name) or _Subnet(self.new_id("snet"), "")
            box.label = _join(name, subnet.get("addressPrefix"))
            boxes[name] = box
            self.subnet_of[subnet.urn] = box

    def add_compute(self) -> None:
        pools = compute_pools(self.inventory)
        clusters = {c.urn: c for c in self.inventory.of_type(CLUSTER)}
        for cluster in clusters.values():
            tier = cluster.get("sku.tier") or arm_default("managed_cluster_tier")
            private = cluster.get("apiServerAccessProfile.enablePrivateCluster")
            label = _join(
                f"AKS {_display_name(cluster, 'resourceName')}",
                f"{tier} tier",
                "private API server" if private else None,
            )
            node = _Node(self.new_id("aks"), label, "hexagon", "aks", cluster.urn)
            self.node_of[cluster.urn] = node
            self.loose.append(node)
        for pool in pools:
            node = _Node(
                self.new_id("pool"),
                _pool_label(pool),
                "rect",
                "gpu" if pool.size and pool.size.is_gpu else "cpu",
            )
            owner = self.inventory.by_urn[pool.urn]
            profile = _inline_profile(owner, pool.name) if owner.type == CLUSTER else None
            self.place(owner, node, profile)
            if pool.kind != "aksPool" or pool.urn != pool.cluster_urn:
                self.node_of.setdefault(pool.urn, node)
            cluster_node = self.node_of.get(pool.cluster_urn) if pool.cluster_urn else None
            if cluster_node is not None:
                self.edges.append((cluster_node.id, "---", "", node.id))

    def add_services(self) -> None:
        for resource in self.inventory.resources:
            spec = _SERVICES.get(resource.type)
            if spec is None:
                continue
            group, prefix, shape = spec
            node = _Node(
                self.new_id(_prefix(resource.type)),
                self.service_label(resource, prefix),
                shape,
                None,
                resource.urn,
            )
            self.node_of[resource.urn] = node
            if group == "subnet":
                self.place(resource, node)
            elif group == "vnet":
                vnet = self.vnet_for_nat(resource)
                (self.vnets[vnet][3] if vnet else self.loose).append(node)
            else:
                self.groups[group].append(node)

    def service_label(self, resource: Resource, prefix: str) -> str:
        if resource.type == PRIVATE_ENDPOINT:
            groups = [
                group
                for connection in resource.get("privateLinkServiceConnections") or []
                if isinstance(connection, Mapping)
                for group in connection.get("groupIds") or []
                if is_known(group)
            ]
            return _join(f"PE {resource.name}", ", ".join(groups) or None)
        sku = resource.get("sku.name") or resource.get("sku.tier")
        return _join(f"{prefix} {resource.name}", sku if isinstance(sku, str) else None)

    def place(self, resource: Resource, node: _Node, within: Any = None) -> None:
        """Put `node` in the subnet `resource` (or one of its NICs) references, else aside."""
        box = self.subnet_in(within if within is not None else resource.inputs)
        if box is None:
            for nic in self.references(resource.inputs, {NIC}):
                box = self.subnet_in(nic.inputs)
                if box is not None:
                    break
        if box is not None:
            box.nodes.append(node)
        elif node.css in ("gpu", "cpu"):
            self.groups["compute"].append(node)
        else:
            self.loose.append(node)

    def subnet_in(self, value: Any) -> _Subnet | None:
        for subnet in self.references(value, {SUBNET}):
            if subnet.urn in self.subnet_of:
                return self.subnet_of[subnet.urn]
        for text in _strings(value):
            match = re.search(r"/virtualNetworks/[^/]+/subnets/([^/]+)$", text)
            if match:
                for _, _, boxes, _ in self.vnets.values():
                    if match.group(1) in boxes:
                        return boxes[match.group(1)]
        return None

    def references(self, value: Any, types: set[str]) -> Iterator[Resource]:
        for text in _strings(value):
            found = self.inventory.by_id(text) if text.startswith("/") else None
            if found is not None and found.type in types:
                yield found

    def vnet_for_nat(self, nat: Resource) -> str | None:
        """The VNet whose subnets route through `nat`, drawing an egress edge from each."""
        home = None
        for subnet in self.inventory.of_type(SUBNET):
            target = subnet.get("natGateway.id")
            box = self.subnet_of.get(subnet.urn)
            if nat.id and isinstance(target, str) and target.lower() == nat.id.lower() and box:
                self.edges.append((box.id, "-->", "egress", self.node_of[nat.urn].id))
                home = home or next(u for u, v in self.vnets.items() if box in v[2].values())
        return home or next(iter(self.vnets), None)

    def add_edges(self) -> None:
        """Edges from a shown resource to another shown resource whose id it references."""
        shown = set(self.node_of)
        # In node order, not set order: set order of strings changes between runs.
        for urn in self.node_of:
            resource = self.inventory.by_urn[urn]
            for target in self.references(resource.inputs, set(_SERVICES) | {CLUSTER}):
                if target.urn in shown and target.urn != urn:
                    label = "private link" if resource.type == PRIVATE_ENDPOINT else ""
                    arrow = "-.->" if label else "-->"
                    self.edges.append(
                        (self.node_of[urn].id, arrow, label, self.node_of[target.urn].id)
                    )

    # --- output -------------------------------------------------------------------------

    def lines(self) -> list[str]:
        out = ["flowchart LR"]
        for vnet_id, label, boxes, extra in self.vnets.values():
            out.append(f'  subgraph {vnet_id}["{_escape(label)}"]')
            out.append("    direction TB")
            for box in sorted(boxes.values(), key=_subnet_order):
                if box.nodes:
                    out.append(f'    subgraph {box.id}["{_escape(box.label)}"]')
                    out.extend(f"      {_node(n)}" for n in box.nodes)
                    out.append("    end")
                else:
                    out.append(f'    {box.id}["{_escape(box.label)}"]')
            out.extend(f"    {_node(n)}" for n in extra)
            out.append("  end")
        for group, nodes in self.groups.items():
            if nodes:
                out.append(f'  subgraph grp_{group}["{_GROUP_TITLES[group]}"]')
                out.extend(f"    {_node(n)}" for n in nodes)
                out.append("  end")
        out.extend(f"  {_node(n)}" for n in self.loose)
        seen = set()
        for source, arrow, label, target in self.edges:
            if (source, target) in seen:
                continue
            seen.add((source, target))
            text = f"|{_escape(label)}|" if label else ""
            out.append(f"  {source} {arrow}{text} {target}")
        out.append("  classDef gpu fill:#e8f5e9,stroke:#2e7d32")
        out.append("  classDef cpu fill:#eef2f7,stroke:#52606d")
        out.append("  classDef aks fill:#e3f2fd,stroke:#1565c0")
        return out


def _subnet_order(box: _Subnet) -> tuple[int, ...]:
    """Subnets in address order, so the picture reads like the address plan."""
    cidr = box.label.rsplit("<br/>", 1)[-1]
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return (1 << 32,)
    return (int(network.network_address), network.prefixlen)


def _node(node: _Node) -> str:
    opening, closing = _SHAPES[node.shape]
    css = f":::{node.css}" if node.css else ""
    return f"{node.id}{opening}{_escape(node.label)}{closing}{css}"


def _pool_label(pool: ComputePool) -> str:
    kind = {"vm": "VM", "scaleSet": "Scale set", "aksPool": "AKS pool"}[pool.kind]
    size = pool.size
    short = (pool.vm_size or "size unknown").removeprefix("Standard_")
    nodes = _span(pool.min, pool.max)
    extras = []
    if size is not None and size.is_gpu and pool.min is not None and pool.max is not None:
        high = pool.max * size.gpu_count
        extras.append(
            f"{_span(pool.min * size.gpu_count, high)} {size.gpu_model} "
            f"GPU{'' if high == 1 else 's'}"
        )
    if pool.spot:
        extras.append("spot")
    if size is not None and size.has_infiniband:
        extras.append("InfiniBand")
    return _join(f"{kind} {pool.name}", f"{nodes} x {short}", " · ".join(extras) or None)


def _span(low: int | None, high: int | None) -> str:
    if low is None or high is None:
        return "?"
    return str(low) if low == high else f"{low}-{high}"


def _inline_profile(cluster: Resource, name: str) -> Any:
    for profile in cluster.get("agentPoolProfiles") or []:
        if isinstance(profile, Mapping) and profile.get("name") == name:
            return profile
    return None


def _display_name(resource: Resource, name_input: str) -> str:
    value = resource.get(name_input)
    return value if isinstance(value, str) else resource.name


def _prefix(token: str) -> str:
    return re.sub(r"[^a-z]", "", token.rsplit(":", 1)[-1].lower())[:6] or "n"


def _join(*parts: Any) -> str:
    return "<br/>".join(str(p) for p in parts if p)


def _escape(text: str) -> str:
    """Mermaid label text: quotes become entities; only the <br/> tag is kept."""
    kept = text.replace("<br/>", "\x00")
    kept = kept.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    return kept.replace("\x00", "<br/>")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if is_known(value):
            yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


__all__ = ["NODE_ID", "mermaid_flowchart", "render_mermaid"]
