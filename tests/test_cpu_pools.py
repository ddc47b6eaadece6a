"""CPU pools for data preparation: AKS AgentPools and scale sets, untainted, secure, priced."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml

from components.aks import GPU_TAINT
from components.conventions import ComponentContext
from components.cpu_node_pool import CpuNodePool, CpuNodePoolArgs
from components.cpu_pool import CpuVmPool, CpuVmPoolArgs
from components.gpu_pool import GpuVmPool, GpuVmPoolArgs
from gpustack import catalog
from gpustack.engine import Plan, PlannedResource, capture
from gpustack.estimates import plan_estimates
from stacks.config import ConfigError, parse_config

POOL = "azure-native:containerservice:AgentPool"
SCALE_SET = "azure-native:compute:VirtualMachineScaleSet"
CONTEXT = ComponentContext(resource_group_name="rg-test", location="eastus")
SUBNET = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/vnets/v/subnets/g"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICWWEKvBQHrRUG6uF5ZH8bPQTu/wiThy/6dSr1zezbrL test"


def _cpu(resources: list[PlannedResource], token: str) -> list[PlannedResource]:
    def size(r: PlannedResource) -> str:
        return str(r.inputs["vmSize"] if token == POOL else r.inputs["sku"]["name"])

    return [r for r in resources if r.type == token and not catalog.lookup(size(r)).is_gpu]


def test_aks_cpu_pools_carry_no_gpu_taint_and_autoscale(env_plan: Plan) -> None:
    pools = _cpu(env_plan.resources, POOL)
    assert pools, "every environment declares an AKS CPU pool"
    for pool in pools:
        assert GPU_TAINT not in pool.inputs.get("nodeTaints", []), pool.name
        assert "gpuProfile" not in pool.inputs
        assert pool.inputs["mode"] == "User"
        assert pool.inputs["enableAutoScaling"] is True
        assert pool.options["ignoreChanges"] == ["count"]
        assert pool.inputs["enableNodePublicIP"] is False
        assert pool.inputs["nodeLabels"]["purpose"] in {"preprocessing", "ingestion"}


def test_cpu_pools_are_priced_in_the_plan(env_plan: Plan) -> None:
    cost = plan_estimates(env_plan)["cost"]
    pools = _cpu(env_plan.resources, POOL) + _cpu(env_plan.resources, SCALE_SET)
    assert len(pools) >= 2
    lines = {line["urn"]: line for line in cost["lines"]}
    for pool in pools:
        assert pool.urn not in cost["unpriced"], pool.name
        line = lines[pool.urn]
        assert line["monthly"]["max"] > 0, line
        size = pool.inputs.get("vmSize") or pool.inputs["sku"]["name"]
        assert size in line["assumption"]


def test_cpu_scale_sets_keep_the_secure_defaults_without_gpu_software(env_plan: Plan) -> None:
    for scale_set in _cpu(env_plan.resources, SCALE_SET):
        profile = scale_set.inputs["virtualMachineProfile"]
        assert profile["securityProfile"]["encryptionAtHost"] is True
        linux = profile["osProfile"]["linuxConfiguration"]
        assert linux["disablePasswordAuthentication"] is True
        nic = profile["networkProfile"]["networkInterfaceConfigurations"][0]
        assert "publicIPAddressConfiguration" not in nic["ipConfigurations"][0]
        assert scale_set.inputs["identity"]["type"] == "UserAssigned"
        assert "extensionProfile" not in profile  # no NVIDIA driver extension
        cloud_init = yaml.safe_load(base64.b64decode(profile["osProfile"]["customData"]))
        paths = {f["path"] for f in cloud_init["write_files"]}
        assert "/etc/systemd/system/dcgm-exporter.service" not in paths
        assert not [p for p in paths if "gpu-health" in p]
        (env,) = [f["content"] for f in cloud_init["write_files"] if f["path"].endswith("node.env")]
        assert 'GPUSTACK_GPU_COUNT="0"' in env


def _scale_set(vm_size: str, component: type[GpuVmPool] = CpuVmPool) -> list[PlannedResource]:
    args = CpuVmPoolArgs(
        context=CONTEXT, vm_size=vm_size, subnet_id=SUBNET, ssh_public_key=KEY, max_count=2,
        purpose="preprocessing",
    )
    return capture(lambda: component("prep", args))


def test_cpu_scale_set_component_has_its_own_type_and_refuses_gpu_sizes() -> None:
    resources = _scale_set("Standard_D8ds_v5")
    assert resources[0].type == "gpustack:compute:CpuVmPool"
    (scale_set,) = [r for r in resources if r.type == SCALE_SET]
    assert scale_set.inputs["sku"]["name"] == "Standard_D8ds_v5"
    with pytest.raises(ValueError, match="is a GPU size; CpuVmPool takes a CPU size"):
        _scale_set("Standard_NC4as_T4_v3")
    with pytest.raises(ValueError, match="has no GPU; GpuVmPool takes a GPU size"):
        args = GpuVmPoolArgs(context=CONTEXT, vm_size="Standard_D8ds_v5", subnet_id=SUBNET,
                             ssh_public_key=KEY)
        capture(lambda: GpuVmPool("gpu", args))


def _node_pool(**overrides: Any) -> list[PlannedResource]:
    values: dict[str, Any] = {
        "context": CONTEXT, "cluster_name": "aks", "pool_name": "prep",
        "vm_size": "Standard_D8ds_v5", "subnet_id": SUBNET, "max_count": 4,
    }
    args = CpuNodePoolArgs(**(values | overrides))
    return capture(lambda: CpuNodePool("aks-prep", args))


def test_spot_cpu_pool_gets_only_the_spot_taint() -> None:
    (pool,) = [r for r in _node_pool(spot=True) if r.type == POOL]
    assert pool.inputs["nodeTaints"] == ["kubernetes.azure.com/scalesetpriority=spot:NoSchedule"]
    assert pool.inputs["scaleSetPriority"] == "Spot"
    (regular,) = [r for r in _node_pool() if r.type == POOL]
    assert "nodeTaints" not in regular.inputs
    with pytest.raises(ValueError, match="is a GPU size"):
        _node_pool(vm_size="Standard_NC4as_T4_v3")


def _config(aks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "environment": "dev", "location": "eastus", "budget": {"monthlyAmountUsd": 100},
        "aks": {"authorizedIpRanges": ["203.0.113.0/24"], **aks}, **extra,
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_config({"cpuPools": [{"name": "prep", "vmSize": "Standard_NC4as_T4_v3",
                                "maxCount": 2}]}), "is a GPU size"),
        (_config({"gpuPools": [{"name": "prep", "vmSize": "Standard_NC4as_T4_v3",
                                "maxCount": 1}],
                  "cpuPools": [{"name": "prep", "maxCount": 2}]}), "repeated: prep"),
        (_config({"cpuPools": [{"name": "prep", "maxCount": 1010}]}), "less than or equal"),
        (_config({"cpuPools": [{"name": "prep", "maxCount": 1000}]}), "network.gpuSubnet"),
        (_config({}, cpuScaleSets=[{"name": "prep", "maxCount": 2, "sshPublicKey": KEY,
                                    "mountContainers": ["raw"]}]), "does not declare"),
    ],
)
def test_bad_cpu_pool_config_is_a_config_error(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "Pulumi.test.yaml")
    assert any(message in problem for problem in caught.value.problems), caught.value.problems
