"""The Mermaid architecture diagram is well-formed and shows pools with their GPU counts."""

from __future__ import annotations

import re

from plan_builders import SUB, agent_pool, cluster, resource, storage_account

from gpustack import catalog
from gpustack.diagram import NODE_ID, mermaid_flowchart, render_mermaid
from gpustack.engine import Plan
from gpustack.inventory import Inventory, compute_pools

VNET_ID = f"{SUB}/providers/Microsoft.Network/virtualNetworks/spoke"
_RESERVED = {"end", "subgraph", "graph", "flowchart", "style", "classDef", "class", "click"}
_NODE = re.compile(r"^\s*([A-Za-z0-9_]+)(\[\"|\(\[\"|\[\(\"|\{\{\")")
_EDGE = re.compile(r"^\s*(\S+) (-->|---|-\.->)(\|[^|]*\|)? (\S+)$")


def _network() -> list[dict]:
    vnet = resource(
        "azure-native:network:VirtualNetwork",
        "spoke",
        {
            "location": "eastus",
            "virtualNetworkName": "spoke",
            "addressSpace": {"addressPrefixes": ["10.40.0.0/16"]},
        },
        "Microsoft.Network/virtualNetworks/spoke",
    )
    subnets = [
        resource(
            "azure-native:network:Subnet",
            name,
            {"virtualNetworkName": "spoke", "subnetName": f"snet-{name}", "addressPrefix": prefix},
            f"Microsoft.Network/virtualNetworks/spoke/subnets/snet-{name}",
        )
        for name, prefix in (("gpu", "10.40.4.0/22"), ("endpoints", "10.40.8.0/24"))
    ]
    return [vnet, *subnets]


def _architecture() -> list[dict]:
    account = storage_account()
    endpoint = resource(
        "azure-native:network:PrivateEndpoint",
        "models-blob-pe",
        {
            "subnet": {"id": f"{VNET_ID}/subnets/snet-endpoints"},
            "privateLinkServiceConnections": [
                {"name": "blob", "privateLinkServiceId": account["id"], "groupIds": ["blob"]}
            ],
        },
        "Microsoft.Network/privateEndpoints/models-blob-pe",
    )
    return [
        *_network(),
        cluster(tier="Standard"),
        agent_pool(
            "t4", "Standard_NC4as_T4_v3", 0, 3, spot=True, subnet=f"{VNET_ID}/subnets/snet-gpu"
        ),
        account,
        endpoint,
        resource("azure-native:keyvault:Vault", "vault", {"vaultName": "kv"}),
        resource(
            "azure-native:operationalinsights:Workspace", "logs", {"sku": {"name": "PerGB2018"}}
        ),
    ]


def assert_well_formed(text: str) -> set[str]:
    """Check the structure a Mermaid flowchart parser needs; return the defined node ids."""
    lines = text.strip().splitlines()
    assert lines[0].startswith("flowchart ")
    depth, ids = 0, set()
    for line in lines[1:]:
        stripped = line.strip()
        if stripped.startswith("subgraph "):
            depth += 1
            ids.add(stripped.split()[1].split("[", 1)[0])
        elif stripped == "end":
            depth -= 1
            assert depth >= 0, "an `end` without its subgraph"
        elif (match := _NODE.match(line)) is not None:
            ids.add(match.group(1))
        assert stripped.count('"') % 2 == 0, f"unbalanced quotes: {line}"
    assert depth == 0, "a subgraph is not closed"
    for node_id in ids:
        assert NODE_ID.match(node_id) and node_id not in _RESERVED, node_id
    for line in lines[1:]:
        if (edge := _EDGE.match(line)) is not None:
            assert {edge.group(1), edge.group(4)} <= ids, f"edge to an undefined node: {line}"
    return ids


def test_diagram_is_well_formed_and_groups_by_network() -> None:
    text = mermaid_flowchart(_architecture())
    assert_well_formed(text)

    assert "subgraph vnet" in text and "10.40.0.0/16" in text
    gpu_subnet = text.index("snet-gpu")
    assert gpu_subnet < text.index("AKS pool t4") < text.index("snet-endpoints")
    assert "Key Vault vault" in text and "Log Analytics logs" in text


def test_pools_show_node_and_gpu_counts() -> None:
    text = mermaid_flowchart(_architecture())
    t4 = catalog.lookup("Standard_NC4as_T4_v3")
    assert f"0-3 x NC4as_T4_v3<br/>0-{3 * t4.gpu_count} T4 GPUs · spot" in text
    assert "AKS pool system<br/>2-3 x D4s_v5" in text


def test_cluster_links_to_its_pools_and_endpoints_to_their_targets() -> None:
    text = mermaid_flowchart(_architecture())
    ids = {
        m.group(2): m.group(1)
        for m in re.finditer(r"(\w+)\S*\"(AKS \w+|PE [\w-]+|Storage \w+)", text)
    }
    pool_id = re.search(r"(\w+)\[\"AKS pool t4", text).group(1)
    assert f"{ids['AKS aks']} --- {pool_id}" in text
    assert f"{ids['PE models-blob-pe']} -.->|private link| {ids['Storage models']}" in text


def test_labels_cannot_break_the_syntax() -> None:
    odd = resource("azure-native:keyvault:Vault", 'kv"<end>', {})
    text = mermaid_flowchart([odd])
    assert_well_formed(text)
    assert "#quot;" in text and "<end>" not in text


def test_every_environment_draws_every_pool(env_plan: Plan) -> None:
    views = [{**r.analyzer_view(), "id": r.id, "custom": r.custom} for r in env_plan.resources]
    text = mermaid_flowchart(views)
    assert_well_formed(text)
    for pool in compute_pools(Inventory(views)):
        assert f" {pool.name}<br/>" in text
        size = pool.size
        if size is not None and size.is_gpu:
            assert f"{size.gpu_model} GPU" in text


def test_mermaid_carries_policy_violations_as_comments() -> None:
    document = {
        "resources": [],
        "policy": {
            "pack": "gpustack-azure",
            "rules": ["gpustack-storage-tls"],
            "violations": [
                {
                    "rule": "gpustack-storage-tls",
                    "level": "mandatory",
                    "urn": "urn:pulumi:dev::p::azure-native:storage:StorageAccount::sa",
                    "message": "TLS 1.0\nallowed",
                }
            ],
        },
    }
    text = render_mermaid(document)
    assert text.startswith("flowchart")
    comments = [line for line in text.splitlines() if line.startswith("%%")]
    assert comments == [
        "%% policy gpustack-azure: 1 violations",
        "%% [mandatory] gpustack-storage-tls on sa: TLS 1.0 allowed",
    ]
