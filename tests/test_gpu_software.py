"""NvidiaGpuSoftware: device plugin per AKS-driver pool, operators for the rest, DCGM scraping."""

from __future__ import annotations

from typing import Any

import pulumi_kubernetes as k8s
import pytest
import yaml

from components.aks import (
    AGENT_POOL_LABEL,
    DEVICE_PLUGIN_CONFIG_LABEL,
    SPOT_TAINT,
    GpuNodePool,
    GpuNodePoolArgs,
)
from components.conventions import ComponentContext, MonitoringTargets
from components.gpu_software import (
    AMA_METRICS_CONFIG_KEY,
    AMA_METRICS_CONFIGMAP,
    DCGM_EXPORTER_APP,
    NvidiaGpuSoftware,
    NvidiaGpuSoftwareArgs,
)
from gpustack import catalog, facts
from gpustack.engine import Plan, PlannedResource, capture

CONTEXT = ComponentContext(resource_group_name="rg-test", location="eastus")
DAEMONSET = "kubernetes:apps/v1:DaemonSet"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
RELEASE = "kubernetes:helm.sh/v3:Release"
POOL = "azure-native:containerservice:AgentPool"
WORKSPACE = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w"
)
PROMETHEUS = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Monitor/accounts/amw"


def _nvidia_software(
    provider: k8s.Provider,
    nodes: list[GpuNodePool],
    monitoring: MonitoringTargets | None = None,
) -> NvidiaGpuSoftware:
    """The NVIDIA software for `nodes`, at the versions these tests pin."""
    return NvidiaGpuSoftware(
        "nvidia",
        NvidiaGpuSoftwareArgs(
            context=CONTEXT,
            provider=provider,
            pools=nodes,
            device_plugin_version="v0.17.1",
            dcgm_exporter_image_tag="4.2.3-4.1.3-ubuntu22.04",
            gpu_operator_version="v25.3.0",
            network_operator_version="v25.10.0",
            doca_driver_version="doca3.2.0-25.10-1.2.8.0-2",
            rdma_shared_device_plugin_version="network-operator-v25.10.0",
            monitoring=monitoring,
        ),
    )


def _software(
    pools: list[dict[str, Any]], monitoring: MonitoringTargets | None = None
) -> list[PlannedResource]:
    def declare() -> None:
        provider = k8s.Provider("cluster", kubeconfig="apiVersion: v1\nkind: Config\n")
        operator = any(pool.get("driver") == "None" for pool in pools)
        nodes = [
            GpuNodePool(
                f"aks-{pool['pool_name']}",
                GpuNodePoolArgs(
                    context=CONTEXT,
                    cluster_name="aks-test",
                    subnet_id="snet-gpu",
                    gpu_operator_in_cluster=operator,
                    **({"vm_size": "Standard_NC4as_T4_v3", "max_count": 2} | pool),
                ),
            )
            for pool in pools
        ]
        _nvidia_software(provider, nodes, monitoring)

    return capture(declare)


def _by_type(resources: list[PlannedResource], token: str) -> list[PlannedResource]:
    return [r for r in resources if r.type == token]


def _pod_spec(daemonset: PlannedResource) -> dict[str, Any]:
    spec: dict[str, Any] = daemonset.inputs["spec"]["template"]["spec"]
    return spec


def _tolerates(tolerations: list[dict[str, Any]], taint: str) -> bool:
    key_value, effect = taint.rsplit(":", 1)
    key, _, value = key_value.partition("=")
    return any(
        t["key"] == key
        and t.get("effect") in (None, effect)
        and (t["operator"] == "Exists" or t.get("value") == value)
        for t in tolerations
    )


def _device_plugins(resources: list[PlannedResource]) -> list[PlannedResource]:
    return [
        d
        for d in _by_type(resources, DAEMONSET)
        if d.inputs["metadata"]["name"].startswith("nvidia-device-plugin-")
    ]


def _release(resources: list[PlannedResource], chart: str) -> PlannedResource:
    (release,) = [r for r in _by_type(resources, RELEASE) if r.inputs["chart"] == chart]
    return release


# --- the committed environments ------------------------------------------------------------------


def _gpu_pools(plan: Plan) -> list[PlannedResource]:
    """The plan's AKS GPU pools (CPU pools for data preparation are AgentPools too)."""
    return [p for p in plan.by_type(POOL) if catalog.lookup(p.inputs["vmSize"]).is_gpu]


def test_device_plugin_tolerations_match_the_taints_of_the_pools_it_serves(env_plan: Plan) -> None:
    taints = {p.inputs["agentPoolName"]: p.inputs["nodeTaints"] for p in _gpu_pools(env_plan)}
    plugins = _device_plugins(env_plan.resources)
    assert plugins, "AKS-driver pools need a device plugin"
    for plugin in plugins:
        spec = _pod_spec(plugin)
        pool = spec["nodeSelector"][AGENT_POOL_LABEL]
        for taint in taints[pool]:
            assert _tolerates(spec["tolerations"], taint), (plugin.name, taint)


def test_dev_spot_pool_device_plugin_tolerates_the_aks_spot_taint(dev_plan: Plan) -> None:
    (plugin,) = _device_plugins(dev_plan.resources)
    assert _tolerates(_pod_spec(plugin)["tolerations"], SPOT_TAINT)


def test_every_aks_driver_pool_and_only_those_get_a_device_plugin(env_plan: Plan) -> None:
    install = {
        p.inputs["agentPoolName"]
        for p in _gpu_pools(env_plan)
        if p.inputs["gpuProfile"]["driver"] == "Install"
    }
    served = {
        _pod_spec(d)["nodeSelector"][AGENT_POOL_LABEL] for d in _device_plugins(env_plan.resources)
    }
    assert served == install


def test_kubernetes_objects_go_through_the_clusters_provider(env_plan: Plan) -> None:
    (provider,) = [r for r in env_plan.resources if r.type == "pulumi:providers:kubernetes"]
    kube = [r for r in env_plan.resources if r.type.startswith("kubernetes:")]
    assert kube
    assert {r.options["provider"] for r in kube} == {provider.urn}


def test_prod_runs_the_gpu_operator_with_rdma_after_the_network_operator(prod_plan: Plan) -> None:
    gpu = _release(prod_plan.resources, "gpu-operator")
    network = _release(prod_plan.resources, "network-operator")
    values = gpu.inputs["values"]
    assert values["driver"]["enabled"] is True
    assert values["driver"]["rdma"]["enabled"] is True
    assert values["toolkit"]["enabled"] is True
    assert values["dcgmExporter"]["enabled"] is True
    # The Network Operator's NFD labels the nodes; two NFDs would fight.
    assert values["nfd"]["enabled"] is False
    assert network.urn in gpu.options["dependsOn"]
    assert gpu.inputs["repositoryOpts"]["repo"] == "https://helm.ngc.nvidia.com/nvidia"
    assert gpu.inputs["version"] == "v25.3.0"


def test_operator_daemonsets_tolerate_the_gpu_taint(prod_plan: Plan) -> None:
    gpu = _release(prod_plan.resources, "gpu-operator")
    tolerations = gpu.inputs["values"]["daemonsets"]["tolerations"]
    for pool in _gpu_pools(prod_plan):
        if pool.inputs["gpuProfile"]["driver"] == "None":
            for taint in pool.inputs["nodeTaints"]:
                assert _tolerates(tolerations, taint)
    # Its controller must fit on the system pool, the only untainted-for-it place.
    operator = gpu.inputs["values"]["operator"]["tolerations"]
    assert _tolerates(operator, "CriticalAddonsOnly=true:NoSchedule")


def test_nic_cluster_policy_targets_only_infiniband_pools(prod_plan: Plan) -> None:
    (policy,) = prod_plan.by_type("kubernetes:mellanox.com/v1alpha1:NicClusterPolicy")
    terms = policy.inputs["spec"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    (expression,) = terms["nodeSelectorTerms"][0]["matchExpressions"]
    assert expression["key"] == AGENT_POOL_LABEL
    assert expression["values"] == ["ndtrain"]
    network = _release(prod_plan.resources, "network-operator")
    assert network.urn in policy.options["dependsOn"]


def test_no_operator_where_every_pool_uses_the_aks_driver(
    dev_plan: Plan, staging_plan: Plan
) -> None:
    for plan in (dev_plan, staging_plan):
        assert plan.by_type(RELEASE) == []


def test_staging_t4_pool_is_time_sliced_four_ways(staging_plan: Plan) -> None:
    configs = {
        c.inputs["metadata"]["name"]: yaml.safe_load(c.inputs["data"]["config.yaml"])
        for c in _by_type(staging_plan.resources, CONFIGMAP)
        if "config.yaml" in c.inputs["data"]
    }
    sharing = configs["nvidia-device-plugin-t4"]["sharing"]["timeSlicing"]["resources"]
    assert sharing == [{"name": "nvidia.com/gpu", "replicas": 4}]
    assert "sharing" not in configs["nvidia-device-plugin-a100"]


# --- NvidiaGpuSoftware ---------------------------------------------------------------------------


def test_mig_pool_device_plugin_uses_the_single_strategy() -> None:
    resources = _software(
        [{"pool_name": "mig", "vm_size": "Standard_NC24ads_A100_v4", "mig_profile": "MIG3g"}]
    )
    (config,) = _by_type(resources, CONFIGMAP)
    assert yaml.safe_load(config.inputs["data"]["config.yaml"])["flags"]["migStrategy"] == "single"
    (plugin,) = _device_plugins(resources)
    (container,) = _pod_spec(plugin)["containers"]
    assert container["env"] == [
        {"name": "CONFIG_FILE", "value": "/etc/nvidia-device-plugin/config.yaml"}
    ]
    assert container["image"] == "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_time_sliced_operator_pool_gets_its_config_key_in_the_operator_configmap() -> None:
    resources = _software([{"pool_name": "shared", "driver": "None", "time_slicing_replicas": 8}])
    (pool,) = _by_type(resources, POOL)
    key = pool.inputs["nodeLabels"][DEVICE_PLUGIN_CONFIG_LABEL]
    (config,) = _by_type(resources, CONFIGMAP)
    replicas = yaml.safe_load(config.inputs["data"][key])["sharing"]["timeSlicing"]["resources"]
    assert replicas == [{"name": "nvidia.com/gpu", "replicas": 8}]
    gpu = _release(resources, "gpu-operator")
    assert (
        gpu.inputs["values"]["devicePlugin"]["config"]["name"] == config.inputs["metadata"]["name"]
    )
    # No InfiniBand pool, so no Network Operator, and the GPU Operator runs its own NFD.
    assert [r.inputs["chart"] for r in _by_type(resources, RELEASE)] == ["gpu-operator"]
    assert gpu.inputs["values"]["nfd"]["enabled"] is True
    assert gpu.inputs["values"]["driver"]["rdma"]["enabled"] is False
    assert _device_plugins(resources) == []


def test_managed_prometheus_scrapes_every_dcgm_exporter() -> None:
    resources = _software([{"pool_name": "t4"}], MonitoringTargets(WORKSPACE, PROMETHEUS))
    (scrape,) = [
        c
        for c in _by_type(resources, CONFIGMAP)
        if c.inputs["metadata"]["name"] == AMA_METRICS_CONFIGMAP
    ]
    assert scrape.inputs["metadata"]["namespace"] == "kube-system"
    (job,) = yaml.safe_load(scrape.inputs["data"][AMA_METRICS_CONFIG_KEY])["scrape_configs"]
    keep = {
        r["source_labels"][0]: r["regex"]
        for r in job["relabel_configs"]
        if r.get("action") == "keep"
    }
    assert keep["__meta_kubernetes_pod_label_app"] == DCGM_EXPORTER_APP
    assert keep["__meta_kubernetes_pod_container_port_number"] == str(facts.dcgm_exporter_port())
    # GPU alerts select AKS pools by this label: the node's pool must reach every series.
    contract = facts.load("azure_monitor")["pool_labels"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "attach_metadata": {"node": True}}]
    targets = {r.get("target_label"): r["source_labels"] for r in job["relabel_configs"]}
    assert targets[contract["aks"]] == [
        "__meta_kubernetes_node_label_kubernetes_azure_com_agentpool"
    ]
    (exporter,) = [
        d
        for d in _by_type(resources, DAEMONSET)
        if d.inputs["metadata"]["name"] == DCGM_EXPORTER_APP
    ]
    labels = exporter.inputs["spec"]["template"]["metadata"]["labels"]
    assert labels["app"] == DCGM_EXPORTER_APP
    (container,) = _pod_spec(exporter)["containers"]
    assert container["ports"][0]["containerPort"] == facts.dcgm_exporter_port()


@pytest.mark.parametrize("monitoring", [None, MonitoringTargets(WORKSPACE)])
def test_no_scrape_job_without_an_azure_monitor_workspace(
    monitoring: MonitoringTargets | None,
) -> None:
    names = [
        c.inputs["metadata"]["name"]
        for c in _by_type(_software([{"pool_name": "t4"}], monitoring), CONFIGMAP)
    ]
    assert AMA_METRICS_CONFIGMAP not in names


# --- AMD pools --------------------------------------------------------------------------------


def _mixed_software() -> list[PlannedResource]:
    from components.amd_gpu_software import AmdGpuSoftware, AmdGpuSoftwareArgs

    def declare() -> None:
        provider = k8s.Provider("cluster", kubeconfig="apiVersion: v1\nkind: Config\n")
        nodes = [
            GpuNodePool(
                f"aks-{name}",
                GpuNodePoolArgs(
                    context=CONTEXT,
                    cluster_name="aks-test",
                    subnet_id="snet-gpu",
                    pool_name=name,
                    vm_size=size,
                    max_count=2,
                    driver=driver,
                ),
            )
            for name, size, driver in (
                ("t4", "Standard_NC4as_T4_v3", "Install"),
                ("mi300x", "Standard_ND96isr_MI300X_v5", "None"),
            )
        ]
        _nvidia_software(provider, nodes)
        AmdGpuSoftware(
            "amd",
            AmdGpuSoftwareArgs(
                context=CONTEXT, provider=provider, pools=nodes, device_plugin_version="test-tag"
            ),
        )

    return capture(declare)


def test_mi300x_pool_gets_amds_device_plugin_and_no_nvidia_software() -> None:
    resources = _mixed_software()
    plugin = facts.load("amd_gpu")["device_plugin"]
    by_app = {r.inputs["metadata"]["name"]: r for r in _by_type(resources, DAEMONSET)}
    assert "nvidia-device-plugin-t4" in by_app
    assert not any("mi300x" in name and "nvidia" in name for name in by_app)
    # No GPU Operator: the only driver-None pool is AMD's.
    assert _by_type(resources, RELEASE) == []
    amd = by_app["amd-device-plugin-mi300x"]
    spec = amd.inputs["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"accelerator": "amd", AGENT_POOL_LABEL: "mi300x"}
    (container,) = spec["containers"]
    assert container["image"] == f"{plugin['image']}:test-tag"
    assert amd.inputs["metadata"]["namespace"] == plugin["namespace"]
