"""InferenceGateway: internal API Management in front of internal NGINX and a GPU sample model."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
import yaml

from components.aks import AGENT_POOL_LABEL, GPU_TAINT
from components.inference import ApiConsumer, rate_limit_policy
from gpustack import catalog, facts
from gpustack.engine import Plan, PlannedResource
from stacks.config import ConfigError, parse_config
from tests.conftest import ROOT

APIM = "azure-native:apimanagement:ApiManagementService"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SUBNET = "azure-native:network:Subnet"
NSG = "azure-native:network:NetworkSecurityGroup"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"


def _named(plan: Plan, token: str, name: str) -> PlannedResource:
    (found,) = [r for r in plan.by_type(token) if r.name == name]
    return found


def _pod(plan: Plan) -> dict[str, Any]:
    spec: dict[str, Any] = _named(plan, DEPLOYMENT, "inference-sample").inputs["spec"]
    pod: dict[str, Any] = spec["template"]["spec"]
    return pod


def test_sample_runs_on_a_gpu_pool_tolerating_its_taint_and_requesting_a_gpu(
    env_plan: Plan,
) -> None:
    pod = _pod(env_plan)
    pool_name = pod["nodeSelector"][AGENT_POOL_LABEL]
    (pool,) = [
        p
        for p in env_plan.by_type("azure-native:containerservice:AgentPool")
        if p.inputs["agentPoolName"] == pool_name
    ]
    assert catalog.lookup(pool.inputs["vmSize"]).is_gpu
    key_value, effect = GPU_TAINT.rsplit(":", 1)
    key, value = key_value.split("=")
    wanted = {"key": key, "operator": "Equal", "value": value, "effect": effect}
    assert wanted in pod["tolerations"]
    # Every taint of the chosen pool (spot included) is tolerated, or the pod never lands.
    for taint in pool.inputs["nodeTaints"]:
        tk, te = taint.rsplit(":", 1)
        assert any(
            t["key"] == tk.split("=")[0] and t["effect"] == te for t in pod["tolerations"]
        ), taint
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_sample_mounts_the_models_container_read_only_through_blob_csi(env_plan: Plan) -> None:
    pod = _pod(env_plan)
    (container,) = pod["containers"]
    (mount,) = container["volumeMounts"]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"]["readOnly"] is True
    claim = _named(env_plan, "kubernetes:core/v1:PersistentVolumeClaim", "inference-models-claim")
    assert claim.inputs["metadata"]["name"] == volume["persistentVolumeClaim"]["claimName"]
    assert claim.inputs["spec"]["accessModes"] == ["ReadOnlyMany"]
    pv = _named(env_plan, "kubernetes:core/v1:PersistentVolume", "inference-models-volume")
    assert claim.inputs["spec"]["volumeName"] == pv.inputs["metadata"]["name"]
    csi = pv.inputs["spec"]["csi"]
    assert csi["readOnly"] is True
    assert csi["volumeAttributes"]["containerName"] == "models"
    assert csi["volumeAttributes"]["AzureStorageAuthType"] == "MSI"
    # The kubelet identity it mounts as reads that one container, nothing wider.
    (cluster,) = env_plan.by_type("azure-native:containerservice:ManagedCluster")
    kubelet = cluster.outputs["identityProfile"]["kubeletidentity"]
    assert csi["volumeAttributes"]["AzureStorageIdentityClientID"] == kubelet["clientId"]
    reader = _named(env_plan, "azure-native:authorization:RoleAssignment",
                    "inference-kubelet-models-reader")
    assert reader.inputs["principalId"] == kubelet["objectId"]
    assert reader.inputs["scope"].endswith("/blobServices/default/containers/models")


def test_sample_image_comes_from_the_stacks_registry(env_plan: Plan) -> None:
    (registry,) = env_plan.by_type("azure-native:containerregistry:Registry")
    (container,) = _pod(env_plan)["containers"]
    assert container["image"].startswith(f"{registry.outputs['loginServer']}/")


def test_autoscaler_scales_the_sample_between_its_bounds(env_plan: Plan) -> None:
    deployment = _named(env_plan, DEPLOYMENT, "inference-sample")
    hpa = _named(env_plan, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
                 "inference-sample-hpa")
    spec = hpa.inputs["spec"]
    assert spec["scaleTargetRef"]["name"] == deployment.inputs["metadata"]["name"]
    assert spec["minReplicas"] <= spec["maxReplicas"]
    assert deployment.options["ignoreChanges"] == ["spec.replicas"]


def test_ingress_is_an_internal_nginx_at_the_address_api_management_calls(env_plan: Plan) -> None:
    (cluster,) = env_plan.by_type("azure-native:containerservice:ManagedCluster")
    routing = cluster.inputs["ingressProfile"]["webAppRouting"]
    assert routing["enabled"] is True
    assert routing["nginx"]["defaultIngressControllerType"] == "None"
    app = facts.load("serving")["app_routing"]
    (controller,) = [r for r in env_plan.resources if r.type.endswith(f":{app['crd_kind']}")]
    annotations = controller.inputs["spec"]["loadBalancerAnnotations"]
    assert annotations[app["internal_annotation"]] == "true"
    address = annotations[app["static_ip_annotation"]]
    system = [s for s in env_plan.by_type(SUBNET) if s.inputs["subnetName"] == "snet-system"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(system[0].inputs["addressPrefix"])
    api = _named(env_plan, "azure-native:apimanagement:Api", "inference-api")
    assert api.inputs["serviceUrl"] == f"http://{address}"
    assert api.inputs["protocols"] == ["https"]
    ingress = _named(env_plan, INGRESS, "inference-sample-ingress")
    wanted = controller.inputs["spec"]["ingressClassName"]
    assert ingress.inputs["spec"]["ingressClassName"] == wanted


def test_api_management_sits_in_its_own_subnet_with_the_rules_it_requires(env_plan: Plan) -> None:
    (service,) = env_plan.by_type(APIM)
    subnet = _named(env_plan, SUBNET, "inference-apim")
    assert service.inputs["virtualNetworkConfiguration"]["subnetResourceId"] == subnet.id
    nsg = _named(env_plan, NSG, "inference-apim-nsg")
    assert subnet.inputs["networkSecurityGroup"]["id"] == nsg.id
    rules = {r["name"]: r for r in nsg.inputs["securityRules"]}
    management = rules["allow-apim-management"]
    assert (management["sourceAddressPrefix"], management["destinationPortRange"]) == (
        "ApiManagement", "3443")
    assert rules["deny-internet-inbound"]["priority"] > max(
        r["priority"] for r in rules.values() if r["access"] == "Allow")
    # Nothing else is placed in that subnet.
    others = [s for s in env_plan.by_type(SUBNET) if s is not subnet]
    prefix = ipaddress.ip_network(subnet.inputs["addressPrefix"])
    assert not any(prefix.overlaps(ipaddress.ip_network(s.inputs["addressPrefix"])) for s in others)


def test_prod_api_management_is_premium_in_internal_mode(prod_plan: Plan) -> None:
    (service,) = prod_plan.by_type(APIM)
    assert service.inputs["virtualNetworkType"] == "Internal"
    assert service.inputs["sku"]["name"] == "Premium"


def test_dev_api_management_is_the_developer_tier(dev_plan: Plan) -> None:
    (service,) = dev_plan.by_type(APIM)
    assert service.inputs["sku"] == {"name": "Developer", "capacity": 1}
    assert service.inputs["virtualNetworkType"] == "Internal"


def test_each_consumer_gets_its_own_key_and_rate_limit(prod_plan: Plan) -> None:
    policies = {
        p.inputs["productId"]: p.inputs["value"]
        for p in prod_plan.by_type("azure-native:apimanagement:ProductPolicy")
    }
    assert policies == {
        "models-default": rate_limit_policy(ApiConsumer("default", 600)),
        "models-batch": rate_limit_policy(ApiConsumer("batch", 120)),
    }
    assert 'counter-key="@(context.Subscription.Id)"' in policies["models-batch"]
    products = {
        p.id: p.inputs["productId"] for p in prod_plan.by_type("azure-native:apimanagement:Product")
    }
    subscriptions = prod_plan.by_type("azure-native:apimanagement:Subscription")
    assert sorted(products[s.inputs["scope"]] for s in subscriptions) == sorted(policies)


def test_requests_are_logged_to_the_workspace(env_plan: Plan) -> None:
    (service,) = env_plan.by_type(APIM)
    logger = _named(env_plan, "azure-native:apimanagement:Logger", "inference-logger")
    assert logger.inputs["loggerType"] == "azureMonitor"
    diagnostic = _named(env_plan, "azure-native:apimanagement:Diagnostic", "inference-request-logs")
    assert diagnostic.inputs["loggerId"] == logger.id
    assert diagnostic.inputs["sampling"]["percentage"] == 100
    (workspace,) = env_plan.by_type("azure-native:operationalinsights:Workspace")
    settings = [
        s for s in env_plan.by_type("azure-native:monitor:DiagnosticSetting")
        if s.inputs["resourceUri"] == service.id
    ]
    assert [s.inputs["workspaceId"] for s in settings] == [workspace.id]


def test_rate_limit_window_is_bounded_by_the_policy_limit() -> None:
    limit = facts.load("serving")["api_management"]["rate_limit_max_renewal_seconds"]
    with pytest.raises(ValueError, match=f"outside 1-{limit}s"):
        rate_limit_policy(ApiConsumer("greedy", 10, limit + 1))


def _prod_config(**inference: Any) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    config = {key.split(":", 1)[1]: value for key, value in raw.items()}
    config["inference"] = {**config["inference"], **inference}
    return config


@pytest.mark.parametrize(
    ("inference", "message"),
    [
        ({"apimVirtualNetwork": "External"}, "prod runs API Management Premium in Internal"),
        # One unit, as Developer allows: the tier is the only fault.
        ({"apimSku": "Developer", "apimUnits": 1}, "prod runs API Management Premium in Internal"),
        ({"apimSubnet": "10.42.10.0/30"}, "too small"),
        ({"apimSubnet": "10.42.4.0/27"}, "overlaps gpuSubnet"),
        ({"sampleGpuPool": "nosuch"}, "is not an aks gpuPools name"),
        ({"ingressIp": "10.42.9.10"}, "must be a usable address of network.systemSubnet"),
        ({"apimUnits": 13}, "at most 12"),
    ],
)
def test_bad_inference_config_is_a_config_error(inference: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_prod_config(**inference), "Pulumi.prod.yaml")
    assert any(message in problem for problem in caught.value.problems), caught.value.problems
