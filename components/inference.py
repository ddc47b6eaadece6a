"""`InferenceGateway`: the private path from a caller to a model on an AKS GPU pool.

    caller (VNet, peered or on-premises) -> API Management (internal VNet mode, own subnet)
      -> internal NGINX (AKS application routing add-on, static private IP)
      -> sample model Deployment on a GPU pool -> models container (Blob CSI, read-only)

Why the application routing add-on rather than Application Gateway for Containers: AKS runs
and patches the NGINX controller itself (no Helm release, no ALB controller identity), an
internal load balancer with a fixed private address is two service annotations, and no
extra subnet, Azure resource or per-hour charge is needed. API Management already terminates
TLS, authenticates callers and applies rate limits, so the ingress only has to route inside
the VNet. Application Gateway for Containers adds a delegated subnet, an ALB controller and
a billed gateway for features (WAF, traffic splitting) the gateway in front already covers.

API Management does the rest: a subscription key per consumer (authentication), a product
per consumer whose `rate-limit-by-key` policy counts that consumer's calls, and request logs
to the Log Analytics workspace (an Azure Monitor logger plus the service's diagnostic setting).
Facts: gpustack/data/serving.yaml (`app_routing`, `api_management`, `sample_workload`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi_azure_native import apimanagement

from components.aks import AGENT_POOL_LABEL, GPU_TAINT, SPOT_TAINT
from components.conventions import (
    BlobMountTarget,
    ComponentContext,
    IdentityRef,
    child_options,
)
from components.diagnostics import send_diagnostics
from components.identity import assign_role
from components.network import security_rules, service_subnet
from components.storage import BlobCache, blob_csi_volume
from gpustack import facts

MODELS_CONTAINER = "models"
GPU_RESOURCE = "nvidia.com/gpu"


def serving_facts(section: str) -> dict[str, Any]:
    """A section of gpustack/data/serving.yaml."""
    found: dict[str, Any] = facts.load("serving")[section]
    return found


@dataclass(frozen=True)
class ApiConsumer:
    """A caller of the inference API: its own key and its own rate limit."""

    name: str
    calls: int = 60
    renewal_period_seconds: int = 60


@dataclass(frozen=True)
class SampleModel:
    """The sample model server the plan deploys to show the path end to end."""

    name: str
    # Full image reference in the stack's registry (`<login server>/<repo>:<tag>`).
    image: pulumi.Input[str]
    gpu_pool: str
    gpu_pool_spot: bool = False
    port: int = 8000
    min_replicas: int = 1
    max_replicas: int = 2
    target_cpu_percent: int = 70


@dataclass(frozen=True)
class InferenceGatewayArgs:
    """API Management in its own subnet, and the sample served through the cluster's ingress."""

    context: ComponentContext
    provider: k8s.Provider
    vnet_name: pulumi.Input[str]
    apim_subnet_cidr: str
    # Static private address of the internal NGINX load balancer, and the subnet it sits in.
    ingress_ip: str
    ingress_subnet_name: pulumi.Input[str]
    publisher_email: str
    sample: SampleModel
    # The models container, mounted with the kubelet identity (it gets Blob Data Reader there).
    models: BlobMountTarget
    models_container_id: pulumi.Input[str]
    storage_resource_group_name: pulumi.Input[str]
    kubelet_identity: IdentityRef
    publisher_name: str = "ML platform"
    apim_sku: str = "Developer"
    apim_units: int = 1
    apim_virtual_network: str = "Internal"
    consumers: Sequence[ApiConsumer] = field(default_factory=lambda: [ApiConsumer("default")])
    nat_gateway_id: pulumi.Input[str] | None = None
    hierarchical_namespace: bool = True
    # Other writers of the VNet's subnets, which the new subnet must wait for.
    subnet_depends_on: Sequence[pulumi.Resource] = ()


def rate_limit_policy(consumer: ApiConsumer) -> str:
    """The product policy: `rate-limit-by-key` counted per subscription (one per consumer)."""
    limit = serving_facts("api_management")["rate_limit_max_renewal_seconds"]
    if not 1 <= consumer.renewal_period_seconds <= limit:
        raise ValueError(
            f"consumer {consumer.name}: renewal period {consumer.renewal_period_seconds}s is "
            f"outside 1-{limit}s"
        )
    return (
        "<policies><inbound><base />"
        f'<rate-limit-by-key calls="{consumer.calls}" '
        f'renewal-period="{consumer.renewal_period_seconds}" '
        'counter-key="@(context.Subscription.Id)" />'
        "</inbound><backend><base /></backend><outbound><base /></outbound>"
        "<on-error><base /></on-error></policies>"
    )


class InferenceGateway(pulumi.ComponentResource):
    """Internal API Management in front of an internal NGINX ingress and a sample GPU model."""

    gateway_url: pulumi.Output[str]
    gateway_private_ips: pulumi.Output[list[str]]
    ingress_ip: str
    service_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: InferenceGatewayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:inference:InferenceGateway", name, None, opts)
        context = args.context
        apim = serving_facts("api_management")
        if args.apim_sku not in apim["vnet_injection_skus"]:
            raise ValueError(
                f"API Management {args.apim_sku} cannot join a VNet; use one of "
                f"{', '.join(apim['vnet_injection_skus'])}"
            )
        ipaddress.IPv4Address(args.ingress_ip)

        # --- API Management: its subnet and NSG, the service, logging, API, products -------
        self.subnet = service_subnet(
            self,
            f"{name}-apim",
            context=context,
            vnet_name=args.vnet_name,
            cidr=args.apim_subnet_cidr,
            rules=security_rules(apim["nsg_rules"]),
            nat_gateway_id=args.nat_gateway_id,
            depends_on=args.subnet_depends_on,
        )
        self.service = apimanagement.ApiManagementService(
            f"{name}-apim",
            resource_group_name=context.resource_group_name,
            location=context.location,
            sku=apimanagement.ApiManagementServiceSkuPropertiesArgs(
                name=apimanagement.SkuType(args.apim_sku), capacity=args.apim_units
            ),
            publisher_email=args.publisher_email,
            publisher_name=args.publisher_name,
            virtual_network_type=apimanagement.VirtualNetworkType(args.apim_virtual_network),
            virtual_network_configuration=apimanagement.VirtualNetworkConfigurationArgs(
                subnet_resource_id=self.subnet.subnet.id
            ),
            identity=apimanagement.ApiManagementServiceIdentityArgs(
                type=apimanagement.ApimIdentityType.SYSTEM_ASSIGNED
            ),
            # TLS 1.2+ only, on the frontend and towards backends; no 3DES.
            custom_properties=dict(apim["custom_properties"]),
            tags=dict(context.tags),
            opts=child_options(self),
        )
        service_name = self.service.name
        group = context.resource_group_name
        # Gateway request logs: the service's diagnostic setting names the workspace, the
        # Azure Monitor logger and the all-APIs diagnostic decide what each request writes.
        send_diagnostics(self, f"{name}-apim", self.service, context)
        self.logger = apimanagement.Logger(
            f"{name}-logger",
            logger_id=apim["azure_monitor_logger_id"],
            logger_type=apimanagement.LoggerType.AZURE_MONITOR,
            is_buffered=True,
            resource_group_name=group,
            service_name=service_name,
            opts=child_options(self),
        )
        self.request_logging = apimanagement.Diagnostic(
            f"{name}-request-logs",
            diagnostic_id=apim["azure_monitor_logger_id"],
            logger_id=self.logger.id,
            always_log=apimanagement.AlwaysLog.ALL_ERRORS,
            log_client_ip=True,
            verbosity=apimanagement.Verbosity.INFORMATION,
            sampling=apimanagement.SamplingSettingsArgs(
                sampling_type=apimanagement.SamplingType.FIXED, percentage=100
            ),
            resource_group_name=group,
            service_name=service_name,
            opts=child_options(self),
        )
        self.api = apimanagement.Api(
            f"{name}-api",
            api_id="models",
            path="models",
            display_name="Model inference",
            protocols=[apimanagement.Protocol.HTTPS],
            # Plain HTTP inside the VNet to the ingress's private address; TLS ends at APIM.
            service_url=f"http://{args.ingress_ip}",
            subscription_required=True,
            resource_group_name=group,
            service_name=service_name,
            opts=child_options(self),
        )
        for method in ("GET", "POST"):
            apimanagement.ApiOperation(
                f"{name}-api-{method.lower()}",
                operation_id=f"any-{method.lower()}",
                api_id="models",
                display_name=f"{method} any model route",
                method=method,
                url_template="/*",
                resource_group_name=group,
                service_name=service_name,
                opts=child_options(self, depends_on=[self.api]),
            )
        self.subscriptions: dict[str, apimanagement.Subscription] = {}
        for consumer in args.consumers:
            self.subscriptions[consumer.name] = self._consumer(name, consumer, group, service_name)

        # --- the cluster side: ingress controller, models volume, sample workload ----------
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self._ingress_controller(name, args, k8s_opts)
        self._sample(name, args, k8s_opts)

        self.gateway_url = self.service.gateway_url
        self.gateway_private_ips = self.service.private_ip_addresses.apply(
            lambda ips: list(ips or [])
        )
        self.ingress_ip = args.ingress_ip
        self.service_name = service_name
        self.register_outputs(
            {
                "gatewayUrl": self.gateway_url,
                "gatewayPrivateIps": self.gateway_private_ips,
                "ingressIp": self.ingress_ip,
            }
        )

    def _consumer(
        self,
        name: str,
        consumer: ApiConsumer,
        group: pulumi.Input[str],
        service_name: pulumi.Input[str],
    ) -> apimanagement.Subscription:
        """A product with this consumer's rate limit, the API in it, and one subscription."""
        product_id = f"models-{consumer.name}"
        product = apimanagement.Product(
            f"{name}-product-{consumer.name}",
            product_id=product_id,
            display_name=f"Model inference ({consumer.name})",
            subscription_required=True,
            # Subscriptions are created here, never requested through the developer portal.
            approval_required=True,
            subscriptions_limit=1,
            state=apimanagement.ProductState.PUBLISHED,
            resource_group_name=group,
            service_name=service_name,
            opts=child_options(self),
        )
        apimanagement.ProductApiLink(
            f"{name}-product-{consumer.name}-api",
            api_link_id="models",
            product_id=product_id,
            api_id=self.api.id,
            resource_group_name=group,
            service_name=service_name,
            opts=child_options(self, depends_on=[product]),
        )
        apimanagement.ProductPolicy(
            f"{name}-product-{consumer.name}-rate-limit",
            policy_id="policy",
            product_id=product_id,
            format=apimanagement.PolicyContentFormat.XML,
            value=rate_limit_policy(consumer),
            resource_group_name=group,
            service_name=service_name,
            opts=child_options(self, depends_on=[product]),
        )
        return apimanagement.Subscription(
            f"{name}-subscription-{consumer.name}",
            sid=consumer.name,
            display_name=consumer.name,
            scope=product.id,
            state=apimanagement.SubscriptionState.ACTIVE,
            allow_tracing=False,
            resource_group_name=group,
            service_name=service_name,
            opts=child_options(self),
        )

    def _ingress_controller(
        self, name: str, args: InferenceGatewayArgs, opts: pulumi.ResourceOptions
    ) -> None:
        """An internal NGINX controller of the application routing add-on at a fixed address."""
        routing = serving_facts("app_routing")
        self.ingress_class = f"{name}-internal"
        self.ingress_controller = k8s.apiextensions.CustomResource(
            f"{name}-nginx",
            api_version=routing["crd_api_version"],
            kind=routing["crd_kind"],
            metadata=k8s.meta.v1.ObjectMetaArgs(name=self.ingress_class),
            spec={
                "ingressClassName": self.ingress_class,
                "controllerNamePrefix": name,
                "loadBalancerAnnotations": {
                    routing["internal_annotation"]: "true",
                    routing["static_ip_annotation"]: args.ingress_ip,
                    routing["subnet_annotation"]: args.ingress_subnet_name,
                },
            },
            opts=opts,
        )

    def _sample(self, name: str, args: InferenceGatewayArgs, opts: pulumi.ResourceOptions) -> None:
        workload = serving_facts("sample_workload")
        sample = args.sample
        namespace = workload["namespace"]
        labels = {"app.kubernetes.io/name": sample.name, "app.kubernetes.io/part-of": "gpustack"}

        # The Blob CSI driver mounts as the kubelet identity: it reads the models container.
        self.models_reader = assign_role(
            self,
            f"{name}-kubelet-models-reader",
            principal_id=args.kubelet_identity.principal_id,
            role="storage_blob_data_reader",
            scope=args.models_container_id,
        )
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=namespace, labels=labels),
            opts=opts,
        )
        volume = blob_csi_volume(
            BlobMountTarget(
                account_name=args.models.account_name,
                containers=[MODELS_CONTAINER],
                identity=args.kubelet_identity,
            ),
            MODELS_CONTAINER,
            BlobCache(
                path=workload["blob_cache_path"], disk_size_mb=workload["blob_cache_disk_mb"]
            ),
            resource_group_name=args.storage_resource_group_name,
            read_only=True,
            hierarchical_namespace=args.hierarchical_namespace,
        )
        storage_class = volume.storage_class
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-models-class",
            metadata=storage_class.apply(lambda sc: sc["metadata"]),
            provisioner=storage_class.apply(lambda sc: sc["provisioner"]),
            parameters=storage_class.apply(lambda sc: sc["parameters"]),
            mount_options=storage_class.apply(lambda sc: sc["mountOptions"]),
            reclaim_policy=storage_class.apply(lambda sc: sc["reclaimPolicy"]),
            volume_binding_mode=storage_class.apply(lambda sc: sc["volumeBindingMode"]),
            allow_volume_expansion=storage_class.apply(lambda sc: sc["allowVolumeExpansion"]),
            opts=opts,
        )
        persistent_volume = volume.persistent_volume
        self.models_volume = k8s.core.v1.PersistentVolume(
            f"{name}-models-volume",
            metadata=persistent_volume.apply(lambda pv: pv["metadata"]),
            spec=persistent_volume.apply(lambda pv: pv["spec"]),
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=[self.storage_class, self.models_reader])
            ),
        )
        self.models_claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-models-claim",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{sample.name}-models", namespace=self.namespace.metadata.name
            ),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=["ReadOnlyMany"],
                storage_class_name=storage_class.apply(lambda sc: sc["metadata"]["name"]),
                volume_name=self.models_volume.metadata.name,
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(
                    requests=persistent_volume.apply(lambda pv: pv["spec"]["capacity"])
                ),
            ),
            opts=opts,
        )

        tolerations = [_toleration(GPU_TAINT)]
        if sample.gpu_pool_spot:
            tolerations.append(_toleration(SPOT_TAINT))
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-sample",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=sample.name, namespace=self.namespace.metadata.name, labels=labels
            ),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=sample.min_replicas,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        node_selector={AGENT_POOL_LABEL: sample.gpu_pool},
                        tolerations=tolerations,
                        automount_service_account_token=False,
                        security_context=k8s.core.v1.PodSecurityContextArgs(
                            run_as_non_root=True,
                            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                        ),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="server",
                                image=sample.image,
                                ports=[
                                    k8s.core.v1.ContainerPortArgs(
                                        name="http", container_port=sample.port
                                    )
                                ],
                                env=[
                                    k8s.core.v1.EnvVarArgs(
                                        name="MODEL_DIR", value=workload["models_mount_path"]
                                    )
                                ],
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={
                                        "cpu": workload["cpu_request"],
                                        "memory": workload["memory_request"],
                                        GPU_RESOURCE: str(workload["gpus"]),
                                    },
                                    limits={GPU_RESOURCE: str(workload["gpus"])},
                                ),
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(
                                        name=MODELS_CONTAINER,
                                        mount_path=workload["models_mount_path"],
                                        read_only=True,
                                    )
                                ],
                                readiness_probe=k8s.core.v1.ProbeArgs(
                                    tcp_socket=k8s.core.v1.TCPSocketActionArgs(port="http"),
                                    period_seconds=10,
                                ),
                                security_context=k8s.core.v1.SecurityContextArgs(
                                    allow_privilege_escalation=False,
                                    capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                                ),
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name=MODELS_CONTAINER,
                                persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                                    claim_name=self.models_claim.metadata.name, read_only=True
                                ),
                            )
                        ],
                    ),
                ),
            ),
            # The autoscaler owns the replica count.
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(ignore_changes=["spec.replicas"])
            ),
        )
        self.service_object = k8s.core.v1.Service(
            f"{name}-sample-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=sample.name, namespace=self.namespace.metadata.name, labels=labels
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=labels,
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=80, target_port="http")],
            ),
            opts=opts,
        )
        self.autoscaler = k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-sample-hpa",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=sample.name, namespace=self.namespace.metadata.name, labels=labels
            ),
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=self.deployment.metadata.name
                ),
                min_replicas=sample.min_replicas,
                max_replicas=sample.max_replicas,
                # CPU is the metric every cluster has; GPU utilisation needs a metrics adapter.
                metrics=[
                    k8s.autoscaling.v2.MetricSpecArgs(
                        type="Resource",
                        resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                            name="cpu",
                            target=k8s.autoscaling.v2.MetricTargetArgs(
                                type="Utilization",
                                average_utilization=sample.target_cpu_percent,
                            ),
                        ),
                    )
                ],
            ),
            opts=opts,
        )
        routing = serving_facts("app_routing")
        self.ingress = k8s.networking.v1.Ingress(
            f"{name}-sample-ingress",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=sample.name,
                namespace=self.namespace.metadata.name,
                labels=labels,
                # /<model>/v1/... reaches the server as /v1/...
                annotations={routing["rewrite_annotation"]: "/$2"},
            ),
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name=self.ingress_class,
                rules=[
                    k8s.networking.v1.IngressRuleArgs(
                        http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                            paths=[
                                k8s.networking.v1.HTTPIngressPathArgs(
                                    path=f"/{sample.name}(/|$)(.*)",
                                    path_type="ImplementationSpecific",
                                    backend=k8s.networking.v1.IngressBackendArgs(
                                        service=k8s.networking.v1.IngressServiceBackendArgs(
                                            name=self.service_object.metadata.name,
                                            port=k8s.networking.v1.ServiceBackendPortArgs(
                                                name="http"
                                            ),
                                        )
                                    ),
                                )
                            ]
                        )
                    )
                ],
            ),
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=[self.ingress_controller])
            ),
        )


def _toleration(taint: str) -> k8s.core.v1.TolerationArgs:
    """A toleration for a `key=value:Effect` taint."""
    key_value, effect = taint.rsplit(":", 1)
    key, value = key_value.split("=", 1)
    return k8s.core.v1.TolerationArgs(key=key, operator="Equal", value=value, effect=effect)
