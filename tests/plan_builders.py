"""Hand-written plan resources (`{"urn", "type", "name", "inputs", "id"}`) for report tests.

Written the way the engine records azure-native inputs: camelCase, numbers as floats, ARM ids.
"""

from __future__ import annotations

from typing import Any

SUB = "/subscriptions/00000000-0000-4000-8000-00000000c0de/resourceGroups/rg"


def resource(token: str, name: str, inputs: dict[str, Any], arm: str = "") -> dict[str, Any]:
    """One resource; `arm` is the provider path after the resource group, e.g. Microsoft.X/y/z."""
    return {
        "urn": f"urn:pulumi:test::proj::{token}::{name}",
        "type": token,
        "name": name,
        "custom": True,
        "inputs": inputs,
        "id": f"{SUB}/providers/{arm}" if arm else None,
    }


def cluster(name: str = "aks", tier: str = "Standard", **system: Any) -> dict[str, Any]:
    """An AKS cluster with an inline system pool."""
    profile = {
        "name": "system",
        "mode": "System",
        "vmSize": "Standard_D4s_v5",
        "count": 2.0,
        "minCount": 2.0,
        "maxCount": 3.0,
        "enableAutoScaling": True,
        **system,
    }
    return resource(
        "azure-native:containerservice:ManagedCluster",
        name,
        {
            "location": "eastus",
            "sku": {"name": "Base", "tier": tier},
            "agentPoolProfiles": [profile],
        },
        f"Microsoft.ContainerService/managedClusters/{name}",
    )


def agent_pool(
    name: str,
    size: str,
    low: int,
    high: int,
    *,
    spot: bool = False,
    count: int | None = None,
    subnet: str | None = None,
) -> dict[str, Any]:
    """A separate AKS node pool on the cluster named "aks", autoscaled between low and high."""
    inputs: dict[str, Any] = {
        "resourceName": "aks",
        "agentPoolName": name,
        "vmSize": size,
        "minCount": float(low),
        "maxCount": float(high),
        "count": float(low if count is None else count),
        "enableAutoScaling": True,
        "mode": "User",
    }
    if spot:
        inputs["scaleSetPriority"] = "Spot"
    if subnet:
        inputs["vnetSubnetID"] = subnet
    return resource(
        "azure-native:containerservice:AgentPool",
        name,
        inputs,
        f"Microsoft.ContainerService/managedClusters/aks/agentPools/{name}",
    )


def scale_set(name: str, size: str, capacity: int, *, spot: bool = False) -> dict[str, Any]:
    """A VM scale set in eastus with a single placement group."""
    profile: dict[str, Any] = {"priority": "Spot"} if spot else {}
    return resource(
        "azure-native:compute:VirtualMachineScaleSet",
        name,
        {
            "location": "eastus",
            "sku": {"name": size, "capacity": float(capacity)},
            "singlePlacementGroup": True,
            "virtualMachineProfile": profile,
        },
        f"Microsoft.Compute/virtualMachineScaleSets/{name}",
    )


def autoscale(
    name: str, target: dict[str, Any], low: int, high: int, default: int, enabled: bool = True
) -> dict[str, Any]:
    """An Azure Monitor autoscale setting on `target` (capacities are strings, as in ARM)."""
    return resource(
        "azure-native:monitor:AutoscaleSetting",
        name,
        {
            "enabled": enabled,
            "targetResourceUri": target["id"],
            "profiles": [
                {
                    "name": "default",
                    "rules": [],
                    "capacity": {
                        "minimum": str(low),
                        "maximum": str(high),
                        "default": str(default),
                    },
                }
            ],
        },
        f"Microsoft.Insights/autoscaleSettings/{name}",
    )


def vm(name: str, size: str, *, spot: bool = False) -> dict[str, Any]:
    """A single VM in eastus."""
    inputs: dict[str, Any] = {"location": "eastus", "hardwareProfile": {"vmSize": size}}
    if spot:
        inputs["priority"] = "Spot"
    return resource(
        "azure-native:compute:VirtualMachine",
        name,
        inputs,
        f"Microsoft.Compute/virtualMachines/{name}",
    )


def storage_account(
    name: str = "models", account: str = "stmodels", sku: str = "Standard_LRS"
) -> dict[str, Any]:
    """An ADLS Gen2 account in eastus."""
    return resource(
        "azure-native:storage:StorageAccount",
        name,
        {
            "location": "eastus",
            "accountName": account,
            "kind": "StorageV2",
            "sku": {"name": sku},
            "isHnsEnabled": True,
            "accessTier": "Hot",
        },
        f"Microsoft.Storage/storageAccounts/{account}",
    )


def plan_document(
    resources: list[dict[str, Any]], cost: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A minimal plan JSON document."""
    return {"project": "proj", "stack": "test", "resources": resources, "cost": cost}
