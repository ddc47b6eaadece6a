"""`NvidiaGpuSoftware`: the NVIDIA device plugin, GPU Operator and Network Operator on AKS.

Pools whose driver AKS installs get the standalone device plugin and a DCGM exporter; pools with
`driver: None` get the GPU Operator (and the Network Operator when they have InfiniBand). The two
stacks never share a node: AKS-driver nodes carry a label that keeps the GPU Operator away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.aks import (
    ACCELERATOR_LABEL,
    AGENT_POOL_LABEL,
    DRIVER_LABEL,
    SYSTEM_POOL_TAINT,
    GpuNodePool,
)
from components.conventions import ComponentContext, MonitoringTargets, child_options
from gpustack import facts

# NVIDIA's Helm repository for the GPU and Network Operators.
# Source: https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/getting-started.html
NVIDIA_HELM_REPO = "https://helm.ngc.nvidia.com/nvidia"
DEVICE_PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin"
DCGM_EXPORTER_IMAGE = "nvcr.io/nvidia/k8s/dcgm-exporter"
# The namespace AKS's GPU guide deploys the device plugin to.
# Source: https://learn.microsoft.com/azure/aks/gpu-cluster
DEVICE_PLUGIN_NAMESPACE = "gpu-resources"
GPU_OPERATOR_NAMESPACE = "gpu-operator"
NETWORK_OPERATOR_NAMESPACE = "network-operator"
# Operator pods load kernel modules and need privileged pods in their namespaces.
# Source: https://azure.github.io/aks-rdma-infiniband/configurations/network-operator
PRIVILEGED_NAMESPACE_LABELS = {"pod-security.kubernetes.io/enforce": "privileged"}
# The device plugin's config file (flags and sharing), read from CONFIG_FILE.
# Source: https://github.com/NVIDIA/k8s-device-plugin#configuring-the-nvidia-device-plugin-binary
DEVICE_PLUGIN_CONFIG_DIR = "/etc/nvidia-device-plugin"
DEVICE_PLUGIN_CONFIG_KEY = "config.yaml"
KUBELET_DEVICE_PLUGINS = "/var/lib/kubelet/device-plugins"
KUBELET_POD_RESOURCES = "/var/lib/kubelet/pod-resources"
GPU_RESOURCE = "nvidia.com/gpu"
# The GPU Operator's own operand toleration (daemonsets.tolerations default in its chart).
OPERATOR_GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
# The label the GPU Operator's DCGM exporter pods carry (assets/state-dcgm-exporter); the
# standalone exporter below reuses it so one scrape job finds both.
DCGM_EXPORTER_APP = "nvidia-dcgm-exporter"
# Managed Prometheus reads custom scrape jobs from this ConfigMap key in kube-system.
# Source: https://learn.microsoft.com/azure/azure-monitor/containers/prometheus-metrics-scrape-validate
AMA_METRICS_CONFIGMAP = "ama-metrics-prometheus-config"
AMA_METRICS_CONFIG_KEY = "prometheus-config"
# Managed Prometheus's default scrape interval.
# Source: https://learn.microsoft.com/azure/azure-monitor/containers/prometheus-metrics-scrape-configuration
SCRAPE_INTERVAL = "30s"
# Kubernetes service discovery exposes node labels (with attach_metadata.node) under this name,
# non-alphanumerics turned to underscores. Source:
# https://prometheus.io/docs/prometheus/latest/configuration/configuration/#kubernetes_sd_config
NODE_POOL_META_LABEL = "__meta_kubernetes_node_label_kubernetes_azure_com_agentpool"
# InfiniBand HCAs are Mellanox (PCI vendor 15b3); the RDMA shared device plugin exposes them as
# rdma/shared_ib, shared by up to 63 pods. Source: Azure/aks-rdma-infiniband
# configs/nicclusterpolicy/rdma-shared-device-plugin/rdma.yaml
MELLANOX_PCI_VENDOR = "15b3"
RDMA_SHARED_RESOURCE = "shared_ib"
RDMA_HCA_MAX = 63
NVIDIA_NETWORKING_REPO = "nvcr.io/nvidia/mellanox"


@dataclass(frozen=True)
class NvidiaGpuSoftwareArgs:
    """The pools to serve, the Kubernetes provider to reach them, and pinned versions."""

    context: ComponentContext
    provider: k8s.Provider
    pools: Sequence[GpuNodePool]
    device_plugin_version: str
    dcgm_exporter_image_tag: str
    gpu_operator_version: str
    network_operator_version: str
    doca_driver_version: str
    rdma_shared_device_plugin_version: str
    # With an Azure Monitor workspace, managed Prometheus is told to scrape DCGM.
    monitoring: MonitoringTargets | None = None


class NvidiaGpuSoftware(pulumi.ComponentResource):
    """Device plugin and DCGM exporter for AKS-driver pools; the operators for the rest."""

    tolerations: list[dict[str, str]]
    device_plugins: dict[str, k8s.apps.v1.DaemonSet]
    gpu_operator: k8s.helm.v3.Release | None
    network_operator: k8s.helm.v3.Release | None

    def __init__(
        self, name: str, args: NvidiaGpuSoftwareArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:aks:NvidiaGpuSoftware", name, None, opts)
        self._provider = args.provider
        # AMD pools get AMD's device plugin (components/amd_gpu_software.py), never NVIDIA's.
        nvidia_pools = [pool for pool in args.pools if pool.size.gpu_vendor == "NVIDIA"]
        aks_pools = [pool for pool in nvidia_pools if pool.driver == "Install"]
        operator_pools = [pool for pool in nvidia_pools if pool.driver == "None"]
        self.tolerations = gpu_tolerations(nvidia_pools)
        self.device_plugins = {}
        self.gpu_operator = None
        self.network_operator = None

        if aks_pools:
            namespace = self._namespace(name, DEVICE_PLUGIN_NAMESPACE)
            for pool in aks_pools:
                self.device_plugins[pool.pool_name] = self._device_plugin(
                    name, namespace, pool, args.device_plugin_version
                )
            self._dcgm_exporter(name, namespace, args.dcgm_exporter_image_tag)

        if operator_pools:
            infiniband = [pool for pool in operator_pools if pool.size.has_infiniband]
            if infiniband:
                self.network_operator = self._network_operator(name, args, infiniband)
            self.gpu_operator = self._gpu_operator(name, args, operator_pools)

        if args.monitoring is not None and args.monitoring.azure_monitor_workspace_id:
            self._dcgm_scrape_job(name)

        self.register_outputs({"tolerations": self.tolerations})

    # --- driver: Install pools -----------------------------------------------------------------

    def _namespace(
        self, name: str, namespace: str, privileged: bool = False
    ) -> k8s.core.v1.Namespace:
        return k8s.core.v1.Namespace(
            f"{name}-{namespace}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=namespace, labels=dict(PRIVILEGED_NAMESPACE_LABELS) if privileged else None
            ),
            opts=child_options(self, provider=self._provider),
        )

    def _device_plugin(
        self, name: str, namespace: k8s.core.v1.Namespace, pool: GpuNodePool, version: str
    ) -> k8s.apps.v1.DaemonSet:
        """One device plugin per pool: each pool's sharing (MIG, time-slicing) is its own config."""
        plugin = f"nvidia-device-plugin-{pool.pool_name}"
        logical = f"{name}-{pool.pool_name}-device-plugin"
        config = k8s.core.v1.ConfigMap(
            f"{logical}-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=plugin, namespace=namespace.metadata.name),
            data={DEVICE_PLUGIN_CONFIG_KEY: device_plugin_config(pool)},
            opts=child_options(self, provider=self._provider),
        )
        labels = {"name": plugin}
        return k8s.apps.v1.DaemonSet(
            logical,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=plugin, namespace=namespace.metadata.name),
            spec=k8s.apps.v1.DaemonSetSpecArgs(
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                update_strategy=k8s.apps.v1.DaemonSetUpdateStrategyArgs(type="RollingUpdate"),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        tolerations=_toleration_args(self.tolerations),
                        node_selector={AGENT_POOL_LABEL: pool.pool_name},
                        # Rescheduled first after a failure, as AKS's manifest does.
                        priority_class_name="system-node-critical",
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="nvidia-device-plugin-ctr",
                                image=f"{DEVICE_PLUGIN_IMAGE}:{version}",
                                env=[
                                    k8s.core.v1.EnvVarArgs(
                                        name="CONFIG_FILE",
                                        value=f"{DEVICE_PLUGIN_CONFIG_DIR}/{DEVICE_PLUGIN_CONFIG_KEY}",
                                    )
                                ],
                                security_context=k8s.core.v1.SecurityContextArgs(
                                    allow_privilege_escalation=False,
                                    capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                                ),
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(
                                        name="device-plugin", mount_path=KUBELET_DEVICE_PLUGINS
                                    ),
                                    k8s.core.v1.VolumeMountArgs(
                                        name="config",
                                        mount_path=DEVICE_PLUGIN_CONFIG_DIR,
                                        read_only=True,
                                    ),
                                ],
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="device-plugin",
                                host_path=k8s.core.v1.HostPathVolumeSourceArgs(
                                    path=KUBELET_DEVICE_PLUGINS
                                ),
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="config",
                                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
                                    name=config.metadata.name
                                ),
                            ),
                        ],
                    ),
                ),
            ),
            opts=child_options(self, provider=self._provider),
        )

    def _dcgm_exporter(
        self, name: str, namespace: k8s.core.v1.Namespace, image_tag: str
    ) -> k8s.apps.v1.DaemonSet:
        """GPU telemetry on AKS-driver nodes (the GPU Operator brings its own elsewhere)."""
        labels = {"app": DCGM_EXPORTER_APP}
        port = facts.dcgm_exporter_port()
        return k8s.apps.v1.DaemonSet(
            f"{name}-dcgm-exporter",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=DCGM_EXPORTER_APP, namespace=namespace.metadata.name, labels=labels
            ),
            spec=k8s.apps.v1.DaemonSetSpecArgs(
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        tolerations=_toleration_args(self.tolerations),
                        node_selector={ACCELERATOR_LABEL: "nvidia", DRIVER_LABEL: "aks"},
                        priority_class_name="system-node-critical",
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="exporter",
                                image=f"{DCGM_EXPORTER_IMAGE}:{image_tag}",
                                env=[
                                    k8s.core.v1.EnvVarArgs(
                                        name="DCGM_EXPORTER_KUBERNETES", value="true"
                                    ),
                                    k8s.core.v1.EnvVarArgs(
                                        name="DCGM_EXPORTER_LISTEN", value=f":{port}"
                                    ),
                                ],
                                ports=[
                                    k8s.core.v1.ContainerPortArgs(
                                        name="metrics", container_port=port
                                    )
                                ],
                                # DCGM reads GPU counters through the driver; the upstream chart
                                # runs it as root with SYS_ADMIN, nothing more.
                                security_context=k8s.core.v1.SecurityContextArgs(
                                    run_as_non_root=False,
                                    run_as_user=0,
                                    capabilities=k8s.core.v1.CapabilitiesArgs(add=["SYS_ADMIN"]),
                                ),
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(
                                        name="pod-gpu-resources",
                                        mount_path=KUBELET_POD_RESOURCES,
                                        read_only=True,
                                    )
                                ],
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="pod-gpu-resources",
                                host_path=k8s.core.v1.HostPathVolumeSourceArgs(
                                    path=KUBELET_POD_RESOURCES
                                ),
                            )
                        ],
                    ),
                ),
            ),
            opts=child_options(self, provider=self._provider),
        )

    # --- driver: None pools --------------------------------------------------------------------

    def _network_operator(
        self, name: str, args: NvidiaGpuSoftwareArgs, pools: Sequence[GpuNodePool]
    ) -> k8s.helm.v3.Release:
        """MOFED/DOCA drivers and the RDMA shared device plugin on the InfiniBand pools."""
        namespace = self._namespace(name, NETWORK_OPERATOR_NAMESPACE, privileged=True)
        release = k8s.helm.v3.Release(
            f"{name}-network-operator",
            name="network-operator",
            chart="network-operator",
            version=args.network_operator_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=NVIDIA_HELM_REPO),
            namespace=namespace.metadata.name,
            values={
                "operator": {"tolerations": [_critical_addons_toleration()]},
                # Its Node Feature Discovery also serves the GPU Operator (whose own NFD is off).
                "node-feature-discovery": _nfd_values(self.tolerations),
            },
            opts=child_options(self, provider=self._provider),
        )
        ib_pools = sorted(pool.pool_name for pool in pools)
        k8s.apiextensions.CustomResource(
            f"{name}-nic-cluster-policy",
            api_version="mellanox.com/v1alpha1",
            kind="NicClusterPolicy",
            # The operator reconciles only the policy with this name.
            metadata=k8s.meta.v1.ObjectMetaArgs(name="nic-cluster-policy"),
            spec={
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": AGENT_POOL_LABEL, "operator": "In", "values": ib_pools}
                                ]
                            }
                        ]
                    }
                },
                "tolerations": self.tolerations,
                "ofedDriver": {
                    "repository": NVIDIA_NETWORKING_REPO,
                    "image": "doca-driver",
                    "version": args.doca_driver_version,
                },
                "rdmaSharedDevicePlugin": {
                    "repository": NVIDIA_NETWORKING_REPO,
                    "image": "k8s-rdma-shared-dev-plugin",
                    "version": args.rdma_shared_device_plugin_version,
                    "config": yaml.safe_dump(
                        {
                            "configList": [
                                {
                                    "resourceName": RDMA_SHARED_RESOURCE,
                                    "rdmaHcaMax": RDMA_HCA_MAX,
                                    "selectors": {
                                        "vendors": [MELLANOX_PCI_VENDOR],
                                        "linkTypes": ["infiniband"],
                                    },
                                }
                            ]
                        },
                        default_flow_style=False,
                    ),
                },
            },
            # The CRD arrives with the chart.
            opts=child_options(self, depends_on=[release], provider=self._provider),
        )
        return release

    def _gpu_operator(
        self, name: str, args: NvidiaGpuSoftwareArgs, pools: Sequence[GpuNodePool]
    ) -> k8s.helm.v3.Release:
        namespace = self._namespace(name, GPU_OPERATOR_NAMESPACE, privileged=True)
        sliced = {pool.pool_name: pool for pool in pools if pool.time_slicing_replicas}
        device_plugin: dict[str, object] = {"enabled": True}
        if sliced:
            # Each time-sliced pool's nodes pick their key through DEVICE_PLUGIN_CONFIG_LABEL.
            config = k8s.core.v1.ConfigMap(
                f"{name}-gpu-operator-time-slicing",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name="time-slicing-config", namespace=namespace.metadata.name
                ),
                data={key: device_plugin_config(pool) for key, pool in sliced.items()},
                opts=child_options(self, provider=self._provider),
            )
            device_plugin["config"] = {"name": config.metadata.name}
        rdma = any(pool.size.has_infiniband for pool in pools)
        values = {
            # The Network Operator's NFD labels the nodes when it is installed.
            "nfd": {"enabled": self.network_operator is None},
            "node-feature-discovery": _nfd_values(self.tolerations),
            "operator": {"tolerations": [_critical_addons_toleration()]},
            "daemonsets": {"tolerations": [*self.tolerations, OPERATOR_GPU_TOLERATION]},
            "driver": {"enabled": True, "rdma": {"enabled": rdma, "useHostMofed": False}},
            "toolkit": {"enabled": True},
            "devicePlugin": device_plugin,
            "dcgmExporter": {"enabled": True, "serviceMonitor": {"enabled": False}},
            # MIG is AKS's job on driver: Install pools; nothing here repartitions GPUs.
            "migManager": {"enabled": False},
        }
        depends = [self.network_operator] if self.network_operator else []
        return k8s.helm.v3.Release(
            f"{name}-gpu-operator",
            name="gpu-operator",
            chart="gpu-operator",
            version=args.gpu_operator_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=NVIDIA_HELM_REPO),
            namespace=namespace.metadata.name,
            values=values,
            opts=child_options(self, depends_on=depends, provider=self._provider),
        )

    # --- telemetry -----------------------------------------------------------------------------

    def _dcgm_scrape_job(self, name: str) -> k8s.core.v1.ConfigMap:
        """Managed Prometheus scrapes every DCGM exporter pod, whichever stack deployed it."""
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL},
            "scrape_configs": [dcgm_scrape_job()],
        }
        return k8s.core.v1.ConfigMap(
            f"{name}-{AMA_METRICS_CONFIGMAP}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=AMA_METRICS_CONFIGMAP, namespace="kube-system"
            ),
            data={AMA_METRICS_CONFIG_KEY: yaml.safe_dump(config, sort_keys=False)},
            opts=child_options(self, provider=self._provider),
        )


def dcgm_scrape_job() -> dict[str, object]:
    """The scrape job for DCGM exporter pods, labelled with their node's AKS pool.

    GPU alerts select a pool by the `agentpool` label (the contract in
    gpustack/data/azure_monitor.yaml, `pool_labels`), so the job copies the node's pool label.
    """
    labels = facts.load("azure_monitor")["pool_labels"]
    return {
        "job_name": labels["dcgm_job"],
        "kubernetes_sd_configs": [{"role": "pod", "attach_metadata": {"node": True}}],
        "relabel_configs": [
            {
                "source_labels": ["__meta_kubernetes_pod_label_app"],
                "action": "keep",
                "regex": DCGM_EXPORTER_APP,
            },
            {
                "source_labels": ["__meta_kubernetes_pod_container_port_number"],
                "action": "keep",
                "regex": str(facts.dcgm_exporter_port()),
            },
            {
                "source_labels": [NODE_POOL_META_LABEL],
                "target_label": labels["aks"],
            },
            {"source_labels": ["__meta_kubernetes_pod_node_name"], "target_label": "node"},
        ],
    }


def gpu_tolerations(pools: Sequence[GpuNodePool]) -> list[dict[str, str]]:
    """Tolerations matching every taint the pools carry (the GPU taint, AKS's spot taint)."""
    seen: dict[str, dict[str, str]] = {}
    for pool in pools:
        for taint in pool.taints:
            seen.setdefault(taint, _toleration(taint))
    return list(seen.values())


def device_plugin_config(pool: GpuNodePool) -> str:
    """The device plugin config file for one pool: MIG strategy and optional time-slicing."""
    config: dict[str, object] = {
        "version": "v1",
        "flags": {
            # AKS partitions MIG pools into one profile, so every GPU instance is alike.
            "migStrategy": "single" if pool.mig_profile else "none",
            # As AKS's manifest sets it: keep running on nodes whose GPUs are not ready yet.
            "failOnInitError": False,
        },
    }
    if pool.time_slicing_replicas:
        config["sharing"] = {
            "timeSlicing": {
                "resources": [{"name": GPU_RESOURCE, "replicas": pool.time_slicing_replicas}]
            }
        }
    return yaml.safe_dump(config, sort_keys=False)


def _toleration(taint: str) -> dict[str, str]:
    """`key=value:Effect` as a toleration that matches exactly that taint."""
    key_value, effect = taint.rsplit(":", 1)
    key, _, value = key_value.partition("=")
    return {"key": key, "operator": "Equal", "value": value, "effect": effect}


def _critical_addons_toleration() -> dict[str, str]:
    # Controllers run on the system pool, which only admits critical add-ons.
    toleration = _toleration(SYSTEM_POOL_TAINT)
    return {"key": toleration["key"], "operator": "Exists", "effect": toleration["effect"]}


def _nfd_values(tolerations: Sequence[dict[str, str]]) -> dict[str, object]:
    return {
        "master": {"tolerations": [_critical_addons_toleration()]},
        "gc": {"tolerations": [_critical_addons_toleration()]},
        "worker": {
            "tolerations": [*tolerations, OPERATOR_GPU_TOLERATION],
            "nodeSelector": {ACCELERATOR_LABEL: "nvidia"},
        },
    }


def _toleration_args(tolerations: Sequence[dict[str, str]]) -> list[k8s.core.v1.TolerationArgs]:
    return [k8s.core.v1.TolerationArgs(**toleration) for toleration in tolerations]
