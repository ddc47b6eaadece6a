"""`AmdGpuSoftware`: AMD's Kubernetes device plugin on AKS pools with AMD GPUs.

AMD GPUs are scheduled as `amd.com/gpu` by AMD's device plugin; the NVIDIA device plugin and
GPU Operator never run on these nodes (their selectors name `accelerator: nvidia`). The pools
take the `driver: None` path: the node image or an operator brings ROCm. Facts (image, resource
name, namespace) come from gpustack/data/amd_gpu.yaml.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.aks import ACCELERATOR_LABEL, AGENT_POOL_LABEL, GpuNodePool
from components.conventions import ComponentContext, child_options
from components.gpu_software import KUBELET_DEVICE_PLUGINS, gpu_tolerations
from gpustack import facts


@dataclass(frozen=True)
class AmdGpuSoftwareArgs:
    """The AMD pools to serve, the Kubernetes provider, and the pinned plugin version."""

    context: ComponentContext
    provider: k8s.Provider
    pools: Sequence[GpuNodePool]
    device_plugin_version: str


class AmdGpuSoftware(pulumi.ComponentResource):
    """One AMD device plugin DaemonSet per AMD pool, pinned to that pool's nodes."""

    device_plugins: dict[str, k8s.apps.v1.DaemonSet]

    def __init__(
        self, name: str, args: AmdGpuSoftwareArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:aks:AmdGpuSoftware", name, None, opts)
        plugin = facts.load("amd_gpu")["device_plugin"]
        pools = [pool for pool in args.pools if pool.size.gpu_vendor == "AMD"]
        self.device_plugins = {}
        if pools:
            namespace = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=plugin["namespace"]),
                opts=child_options(self, provider=args.provider),
            )
            for pool in pools:
                self.device_plugins[pool.pool_name] = self._device_plugin(
                    name, namespace, pool, plugin, args
                )
        self.register_outputs({"pools": sorted(self.device_plugins)})

    def _device_plugin(
        self,
        name: str,
        namespace: k8s.core.v1.Namespace,
        pool: GpuNodePool,
        plugin: dict[str, str],
        args: AmdGpuSoftwareArgs,
    ) -> k8s.apps.v1.DaemonSet:
        app = f"amd-device-plugin-{pool.pool_name}"
        labels = {"app": app}
        return k8s.apps.v1.DaemonSet(
            f"{name}-{pool.pool_name}-device-plugin",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=app, namespace=namespace.metadata.name),
            spec=k8s.apps.v1.DaemonSetSpecArgs(
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        node_selector={
                            ACCELERATOR_LABEL: "amd",
                            AGENT_POOL_LABEL: pool.pool_name,
                        },
                        tolerations=[
                            k8s.core.v1.TolerationArgs(**t) for t in gpu_tolerations([pool])
                        ],
                        priority_class_name="system-node-critical",
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="amd-device-plugin",
                                image=f"{plugin['image']}:{args.device_plugin_version}",
                                security_context=k8s.core.v1.SecurityContextArgs(privileged=True),
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(
                                        name="device-plugins", mount_path=KUBELET_DEVICE_PLUGINS
                                    ),
                                    k8s.core.v1.VolumeMountArgs(name="sys", mount_path="/sys"),
                                ],
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="device-plugins",
                                host_path=k8s.core.v1.HostPathVolumeSourceArgs(
                                    path=KUBELET_DEVICE_PLUGINS
                                ),
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="sys",
                                host_path=k8s.core.v1.HostPathVolumeSourceArgs(path="/sys"),
                            ),
                        ],
                    ),
                ),
            ),
            opts=child_options(self, provider=args.provider),
        )
