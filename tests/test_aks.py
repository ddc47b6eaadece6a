"""GpuAksCluster and GpuNodePool: Entra-ID-only cluster, tainted GPU pools, config rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pytest
import yaml

from components.aks import (
    AUTO_UPGRADE_SCHEDULE,
    GPU_OPERATOR_OPERANDS_LABEL,
    GPU_TAINT,
    NODE_OS_UPGRADE_SCHEDULE,
    SPOT_TAINT,
    SYSTEM_POOL_TAINT,
    GpuAksCluster,
    GpuAksClusterArgs,
    GpuNodePool,
    GpuNodePoolArgs,
    MaintenanceWindow,
    SystemPoolSpec,
)
from components.conventions import ComponentContext, MonitoringTargets
from gpustack import catalog
from gpustack.engine import SECRET_KEY, Plan, PlannedResource, capture
from stacks.config import ConfigError, parse_config

CONTEXT = ComponentContext(resource_group_name="rg-test", location="eastus")
SUBNET = "/subscriptions/s/resourceGroups/rg-test/providers/Microsoft.Network/virtualNetworks/v"
SYSTEM_SUBNET = f"{SUBNET}/subnets/snet-system"
GPU_SUBNET = f"{SUBNET}/subnets/snet-gpu"
WORKSPACE = (
    "/subscriptions/s/resourceGroups/rg-test/providers/Microsoft.OperationalInsights/workspaces/w"
)
PROMETHEUS = "/subscriptions/s/resourceGroups/rg-test/providers/Microsoft.Monitor/accounts/amw"
POOL = "azure-native:containerservice:AgentPool"
CLUSTER = "azure-native:containerservice:ManagedCluster"


def _cluster_args(**overrides: Any) -> GpuAksClusterArgs:
    values: dict[str, Any] = {
        "context": CONTEXT,
        "cluster_name": "aks-test",
        "system_subnet_id": SYSTEM_SUBNET,
        "node_subnet_ids": [SYSTEM_SUBNET, GPU_SUBNET],
        "system_pool": SystemPoolSpec("Standard_D4s_v5", min_count=2, max_count=3),
    }
    return GpuAksClusterArgs(**(values | overrides))


def _cluster(**overrides: Any) -> list[PlannedResource]:
    return capture(lambda: GpuAksCluster("aks", _cluster_args(**overrides)))


def _pool(**overrides: Any) -> list[PlannedResource]:
    values: dict[str, Any] = {
        "context": CONTEXT,
        "cluster_name": "aks-test",
        "pool_name": "gpu",
        "vm_size": "Standard_NC4as_T4_v3",
        "subnet_id": GPU_SUBNET,
        "max_count": 3,
    }
    args = GpuNodePoolArgs(**(values | overrides))
    return capture(lambda: GpuNodePool("aks-gpu", args))


def _one(resources: list[PlannedResource], token: str) -> PlannedResource:
    (found,) = [r for r in resources if r.type == token]
    return found


def _resolve(make: Callable[[], pulumi.Output[Any]]) -> Any:
    """The value of an Output built under the mocks."""
    box: dict[str, Any] = {}
    capture(lambda: make().apply(lambda value: box.setdefault("value", value)))
    return box["value"]


def _rules_by_id(resources: list[PlannedResource]) -> dict[str, dict[str, Any]]:
    rules = [r for r in resources if r.type == "azure-native:monitor:DataCollectionRule"]
    return {rule.id: rule.inputs for rule in rules if rule.id}


def _config(aks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "environment": "dev",
        "location": "eastus",
        "budget": {"monthlyAmountUsd": 100},
        "monitoring": {"alertEmails": ["ml-platform@example.com"]},
        "aks": {"authorizedIpRanges": ["203.0.113.0/24"], **aks},
        **extra,
    }


def _problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "Pulumi.test.yaml")
    return caught.value.problems


# --- GPU pools in every environment ------------------------------------------------------------


def _gpu_pools(plan: Plan) -> list[PlannedResource]:
    """The plan's AKS GPU pools (CPU pools for data preparation are AgentPools too)."""
    return [p for p in plan.by_type(POOL) if catalog.lookup(p.inputs["vmSize"]).is_gpu]


def test_every_gpu_pool_carries_the_gpu_taint(env_plan: Plan) -> None:
    pools = _gpu_pools(env_plan)
    assert pools, "every environment declares at least one GPU pool"
    for pool in pools:
        assert GPU_TAINT in pool.inputs["nodeTaints"], pool.name


def test_autoscaled_pools_leave_the_node_count_to_the_autoscaler(env_plan: Plan) -> None:
    for pool in env_plan.by_type(POOL):
        assert pool.inputs["enableAutoScaling"] is True
        assert pool.options["ignoreChanges"] == ["count"], pool.name
        assert pool.inputs["minCount"] <= pool.inputs["count"] <= pool.inputs["maxCount"]


def test_gpu_pools_are_separate_resources_and_never_inline(env_plan: Plan) -> None:
    (cluster,) = env_plan.by_type(CLUSTER)
    inline = cluster.inputs["agentPoolProfiles"]
    assert [profile["mode"] for profile in inline] == ["System"]
    for profile in inline:
        assert not catalog.lookup(profile["vmSize"]).is_gpu


def test_gpu_nodes_have_no_public_ips_and_join_the_gpu_subnet(env_plan: Plan) -> None:
    for pool in env_plan.by_type(POOL):
        assert pool.inputs["enableNodePublicIP"] is False
        assert pool.inputs["vnetSubnetID"].endswith("/subnets/snet-gpu")


def test_dev_spot_pool_is_spot_delete_at_pay_as_you_go_cap(dev_plan: Plan) -> None:
    (pool,) = _gpu_pools(dev_plan)
    assert pool.inputs["scaleSetPriority"] == "Spot"
    assert pool.inputs["scaleSetEvictionPolicy"] == "Delete"
    assert pool.inputs["spotMaxPrice"] == -1
    # Declared as AKS itself sets it, so refreshes see no drift.
    assert SPOT_TAINT in pool.inputs["nodeTaints"]
    assert (pool.inputs["minCount"], pool.inputs["maxCount"]) == (0, 2)


# --- the cluster in each environment -----------------------------------------------------------


def test_cluster_disables_local_accounts_and_uses_entra_id_with_azure_rbac(env_plan: Plan) -> None:
    (cluster,) = env_plan.by_type(CLUSTER)
    inputs = cluster.inputs
    assert inputs["disableLocalAccounts"] is True
    assert inputs["enableRBAC"] is True
    assert inputs["aadProfile"] == {"managed": True, "enableAzureRBAC": True}
    assert inputs["identity"]["type"] == "UserAssigned"
    assert "servicePrincipalProfile" not in inputs
    assert inputs["oidcIssuerProfile"]["enabled"] is True
    assert inputs["securityProfile"]["workloadIdentity"]["enabled"] is True
    assert inputs["securityProfile"]["imageCleaner"]["enabled"] is True


def test_cluster_uses_cni_overlay_with_cilium(env_plan: Plan) -> None:
    (cluster,) = env_plan.by_type(CLUSTER)
    network = cluster.inputs["networkProfile"]
    assert network["networkPlugin"] == "azure"
    assert network["networkPluginMode"] == "overlay"
    assert network["networkDataplane"] == "cilium"
    assert network["networkPolicy"] == "cilium"


def test_system_pool_is_tainted_for_critical_addons_across_zones(env_plan: Plan) -> None:
    (cluster,) = env_plan.by_type(CLUSTER)
    (system,) = cluster.inputs["agentPoolProfiles"]
    assert system["nodeTaints"] == [SYSTEM_POOL_TAINT]
    assert system["availabilityZones"] == ["1", "2", "3"]
    assert system["enableNodePublicIP"] is False
    assert catalog.lookup(system["vmSize"]).series == "Dsv5"
    assert cluster.options["ignoreChanges"] == ["agentPoolProfiles[0].count"]


def test_prod_cluster_is_private_on_the_standard_tier_with_two_or_more_system_nodes(
    prod_plan: Plan,
) -> None:
    (cluster,) = prod_plan.by_type(CLUSTER)
    assert cluster.inputs["apiServerAccessProfile"]["enablePrivateCluster"] is True
    assert cluster.inputs["apiServerAccessProfile"]["enablePrivateClusterPublicFQDN"] is False
    assert cluster.inputs["sku"]["tier"] == "Standard"
    assert cluster.inputs["agentPoolProfiles"][0]["minCount"] >= 2
    assert cluster.options["protect"] is True


def test_dev_cluster_is_free_and_reachable_only_from_authorized_ranges(dev_plan: Plan) -> None:
    (cluster,) = dev_plan.by_type(CLUSTER)
    assert cluster.inputs["sku"]["tier"] == "Free"
    access = cluster.inputs["apiServerAccessProfile"]
    assert access["authorizedIPRanges"] == ["203.0.113.0/24"]
    assert "enablePrivateCluster" not in access


def test_prod_training_pool_takes_the_gpu_operator_path_with_infiniband(prod_plan: Plan) -> None:
    pools = {pool.inputs["agentPoolName"]: pool.inputs for pool in prod_plan.by_type(POOL)}
    training = pools["ndtrain"]
    assert training["gpuProfile"]["driver"] == "None"
    assert catalog.lookup(training["vmSize"]).has_infiniband
    assert "availabilityZones" not in training
    inference = pools["t4infer"]
    assert (inference["minCount"], inference["maxCount"]) == (1, 10)
    # The GPU Operator must leave nodes whose driver AKS installed alone.
    assert inference["nodeLabels"][GPU_OPERATOR_OPERANDS_LABEL] == "false"


def test_kubeconfig_output_is_secret(env_plan: Plan) -> None:
    assert env_plan.outputs["aksKubeconfig"] == "[secret]"
    assert env_plan.outputs["aksOidcIssuerUrl"].startswith("https://")


# --- GpuAksCluster ----------------------------------------------------------------------------


def test_kubeconfig_is_a_secret_exec_kubeconfig() -> None:
    (provider,) = [r for r in _cluster() if r.type == "pulumi:providers:kubernetes"]
    # The provider receives the kubeconfig output; the engine sees it wrapped as a secret.
    secret = provider.inputs["kubeconfig"]
    assert set(secret) == {SECRET_KEY}
    document = yaml.safe_load(secret[SECRET_KEY])
    assert document["kind"] == "Config"
    # Local accounts are off: credentials come from kubelogin, never a static token.
    (user,) = document["users"]
    assert user["user"]["exec"]["command"] == "kubelogin"


def test_kubelet_identity_is_exposed_for_role_assignments() -> None:
    value = _resolve(
        lambda: pulumi.Output.all(
            *(lambda ref: (ref.id, ref.principal_id, ref.client_id))(
                GpuAksCluster("aks", _cluster_args()).kubelet_identity
            )
        )
    )
    resource_id, object_id, client_id = value
    assert "/userAssignedIdentities/" in resource_id
    assert object_id and client_id and object_id != client_id


def test_kubernetes_provider_waits_for_the_deployer_cluster_admin_role() -> None:
    resources = _cluster()
    (provider,) = [r for r in resources if r.type == "pulumi:providers:kubernetes"]
    grants = [r for r in resources if r.name == "aks-deployer-cluster-admin"]
    assert [g.urn for g in grants] == provider.options["dependsOn"]
    assert grants[0].inputs["roleDefinitionId"].endswith("b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b")
    assert grants[0].inputs["scope"] == _one(resources, CLUSTER).id


def test_maintenance_windows_follow_both_upgrade_channels() -> None:
    window = MaintenanceWindow(day_of_week="Saturday", start_hour=22, duration_hours=6)
    resources = _cluster(maintenance_window=window, node_os_maintenance_window=MaintenanceWindow())
    configs = {
        r.inputs["configName"]: r.inputs["maintenanceWindow"]
        for r in resources
        if r.type == "azure-native:containerservice:MaintenanceConfiguration"
    }
    assert set(configs) == {AUTO_UPGRADE_SCHEDULE, NODE_OS_UPGRADE_SCHEDULE}
    auto = configs[AUTO_UPGRADE_SCHEDULE]
    assert auto["schedule"]["weekly"] == {"dayOfWeek": "Saturday", "intervalWeeks": 1}
    assert (auto["startTime"], auto["durationHours"], auto["utcOffset"]) == ("22:00", 6, "+00:00")
    assert configs[NODE_OS_UPGRADE_SCHEDULE]["schedule"]["weekly"]["dayOfWeek"] == "Sunday"


def test_unmanaged_node_os_channel_gets_no_node_os_window() -> None:
    resources = _cluster(node_os_upgrade_channel="Unmanaged")
    names = [
        r.inputs["configName"]
        for r in resources
        if r.type == "azure-native:containerservice:MaintenanceConfiguration"
    ]
    assert names == [AUTO_UPGRADE_SCHEDULE]


def test_add_ons_rotate_secrets_enforce_policy_and_mount_blob() -> None:
    inputs = _one(_cluster(), CLUSTER).inputs
    secrets = inputs["addonProfiles"]["azureKeyvaultSecretsProvider"]
    assert secrets == {
        "enabled": True,
        "config": {"enableSecretRotation": "true", "rotationPollInterval": "2m"},
    }
    assert inputs["addonProfiles"]["azurepolicy"]["enabled"] is True
    assert "omsagent" not in inputs["addonProfiles"]
    assert inputs["storageProfile"]["blobCSIDriver"]["enabled"] is True
    assert inputs["azureMonitorProfile"]["metrics"]["enabled"] is False


def test_monitoring_sends_prometheus_and_container_insights_through_collection_rules() -> None:
    monitoring = MonitoringTargets(WORKSPACE, PROMETHEUS)
    resources = _cluster(monitoring=monitoring)
    cluster = _one(resources, CLUSTER)
    metrics = cluster.inputs["azureMonitorProfile"]["metrics"]
    assert metrics["enabled"] is True
    # Pool labels reach kube_node_labels only when allow-listed (the GPU alerts join on them).
    allowlist = metrics["kubeStateMetrics"]["metricLabelsAllowlist"]
    assert "agentpool" in allowlist and allowlist.startswith("nodes=[")
    agent = cluster.inputs["addonProfiles"]["omsagent"]
    assert agent["config"] == {"logAnalyticsWorkspaceResourceID": WORKSPACE, "useAADAuth": "true"}
    rules = _rules_by_id(resources)
    associations = [
        r for r in resources if r.type == "azure-native:monitor:DataCollectionRuleAssociation"
    ]
    assert {a.inputs["resourceUri"] for a in associations} == {cluster.id}
    destinations = [rules[a.inputs["dataCollectionRuleId"]] for a in associations]
    prometheus = [d for d in destinations if "monitoringAccounts" in d["destinations"]]
    insights = [d for d in destinations if "logAnalytics" in d["destinations"]]
    (prom,) = prometheus
    (ci,) = insights
    assert prom["destinations"]["monitoringAccounts"][0]["accountResourceId"] == PROMETHEUS
    assert prom["dataFlows"][0]["streams"] == ["Microsoft-PrometheusMetrics"]
    assert ci["destinations"]["logAnalytics"][0]["workspaceResourceId"] == WORKSPACE
    assert ci["dataFlows"][0]["streams"] == ["Microsoft-ContainerInsights-Group-Default"]


def test_system_assigned_identity_gets_network_contributor_on_each_node_subnet() -> None:
    resources = _cluster(control_plane_identity="SystemAssigned")
    cluster = _one(resources, CLUSTER)
    grants = [r for r in resources if r.name.endswith("-network-contributor")]
    assert sorted(g.inputs["scope"] for g in grants) == sorted([SYSTEM_SUBNET, GPU_SUBNET])
    for grant in grants:
        assert grant.inputs["roleDefinitionId"].endswith("4d97b98b-1d4f-4787-a291-c67834d212e7")
        assert grant.inputs["principalId"] == cluster.outputs["identity"]["principalId"]


def test_user_assigned_identity_holds_its_subnet_roles_before_the_cluster() -> None:
    resources = _cluster()
    cluster = _one(resources, CLUSTER)
    identity = _one(resources, "azure-native:managedidentity:UserAssignedIdentity")
    assert cluster.inputs["identity"]["userAssignedIdentities"] == [identity.id]
    grants = [r for r in resources if r.name.endswith("-network-contributor")]
    assert sorted(g.inputs["scope"] for g in grants) == sorted([SYSTEM_SUBNET, GPU_SUBNET])
    assert {g.inputs["principalId"] for g in grants} == {identity.outputs["principalId"]}
    assert {g.urn for g in grants} <= set(cluster.options["dependsOn"])


# --- GpuNodePool ------------------------------------------------------------------------------


def test_pool_labels_name_accelerator_model_purpose_and_driver() -> None:
    labels = _one(_pool(purpose="training", labels={"team": "vision"}), POOL).inputs["nodeLabels"]
    assert labels == {
        "team": "vision",
        "accelerator": "nvidia",
        "gpu-model": "t4",
        "purpose": "training",
        "gpu-driver": "aks",
    }


def test_mig_profile_is_set_only_on_mig_sizes() -> None:
    pool = _one(_pool(vm_size="Standard_NC24ads_A100_v4", mig_profile="MIG2g"), POOL)
    assert pool.inputs["gpuInstanceProfile"] == "MIG2g"
    assert "gpuInstanceProfile" not in _one(_pool(), POOL).inputs
    with pytest.raises(Exception, match="does not support MIG"):
        _pool(mig_profile="MIG1g")


def test_ephemeral_os_disk_only_where_the_local_disk_holds_it() -> None:
    t4 = _one(_pool(os_disk_gb=128), POOL).inputs  # 176 GiB temp disk
    a100 = _one(_pool(vm_size="Standard_NC24ads_A100_v4", os_disk_gb=128), POOL).inputs  # 64 GiB
    assert t4["osDiskType"] == "Ephemeral"
    assert a100["osDiskType"] == "Managed"
    assert (
        _one(_pool(vm_size="Standard_NC24ads_A100_v4", os_disk_gb=64), POOL).inputs["osDiskType"]
        == "Ephemeral"
    )


def test_fixed_size_pool_sets_its_count_and_keeps_it() -> None:
    pool = _one(_pool(autoscale=False, min_count=2, max_count=2), POOL)
    assert pool.inputs["enableAutoScaling"] is False
    assert pool.inputs["count"] == 2
    assert "minCount" not in pool.inputs and "maxCount" not in pool.inputs
    assert pool.options["ignoreChanges"] == []


def test_zones_apply_to_zonal_sizes() -> None:
    pool = _one(_pool(zones=("1", "2")), POOL)
    assert pool.inputs["availabilityZones"] == ["1", "2"]
    assert "availabilityZones" not in _one(_pool(), POOL).inputs


def test_operator_pool_with_time_slicing_selects_its_device_plugin_config() -> None:
    labels = _one(
        _pool(driver="None", time_slicing_replicas=4, gpu_operator_in_cluster=True), POOL
    ).inputs["nodeLabels"]
    assert labels["nvidia.com/device-plugin.config"] == "gpu"
    assert labels["gpu-driver"] == "gpu-operator"
    assert GPU_OPERATOR_OPERANDS_LABEL not in labels


def test_cpu_size_is_not_a_gpu_pool() -> None:
    with pytest.raises(ValueError, match="has no GPU"):
        _pool(vm_size="Standard_D4s_v5")


# --- config rules ------------------------------------------------------------------------------


def _gpu_pool(**overrides: Any) -> dict[str, Any]:
    return {"name": "gpu", "vmSize": "Standard_NC4as_T4_v3", "maxCount": 2, **overrides}


def test_mig_on_a_t4_size_is_rejected_at_config_time() -> None:
    (problem,) = _problems(_config({"gpuPools": [_gpu_pool(migProfile="MIG1g")]}))
    assert "aks.gpuPools[0]" in problem
    assert "MIG-capable" in problem and "T4" in problem


def test_driver_none_without_the_gpu_operator_is_rejected_at_config_time() -> None:
    (problem,) = _problems(_config({"gpuPools": [_gpu_pool(driver="None")]}))
    assert "gpuOperator" in problem and "driver: None" in problem


def test_cpu_size_for_a_gpu_pool_is_rejected() -> None:
    (problem,) = _problems(_config({"gpuPools": [_gpu_pool(vmSize="Standard_D4s_v5")]}))
    assert "CPU size" in problem


def test_max_count_is_required() -> None:
    pool = _gpu_pool()
    del pool["maxCount"]
    (problem,) = _problems(_config({"gpuPools": [pool]}))
    assert problem.endswith("aks.gpuPools[0].maxCount: required key is missing")


@pytest.mark.parametrize(
    ("pool", "fragment"),
    [
        (_gpu_pool(autoscale=False, minCount=0), "must equal maxCount"),
        (_gpu_pool(vmSize="Standard_NC24ads_A100_v4", migProfile="MIG1g", driver="None"), "MIG"),
        (_gpu_pool(vmSize="Standard_ND96asr_v4", zones=["1", "2"]), "one zone"),
    ],
)
def test_pool_rules_are_config_errors(pool: dict[str, Any], fragment: str) -> None:
    problems = _problems(_config({"gpuOperator": True, "gpuPools": [pool]}))
    assert any(fragment in p for p in problems), problems


def test_pod_range_may_not_overlap_the_vnet() -> None:
    raw = _config({"podCidr": "10.40.128.0/17"})
    (problem,) = _problems(raw)
    assert "aks.podCidr: 10.40.128.0/17 overlaps network.addressSpace" in problem
