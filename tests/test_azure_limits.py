"""Stack values judged against Azure's (and Kubernetes') documented limits, before any resource.

Every value Azure or the Kubernetes API would refuse at `pulumi up` is one `ConfigError` naming
the key; every value they accept still validates. The limits come from
gpustack/data/azure_limits.yaml (and aks_versions.yaml, azure_regions.yaml), each with its
source; the cases here are built from those documents and from inputs typed by other teams.
All in process through `validate_stack_values`, starting from Pulumi.prod.yaml.
"""

from __future__ import annotations

import copy
import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpustack import facts
from gpustack.engine import Plan
from gpustack.project import load_project
from gpustack.regions import availability_zone_regions, azure_regions
from stacks.config import PROJECT, ConfigError, StackConfig, validate_stack_values
from tests.conftest import ROOT
from tests.test_bad_inputs import DELETE, _set, prod_values

PREFIX = f"{PROJECT}:"
LIMITS = facts.load("azure_limits")


def validate(changes: dict[str, Any]) -> StackConfig:
    """Pulumi.prod.yaml with `changes` ({key path: value}) applied, validated."""
    raw = prod_values()
    for path, value in changes.items():
        _set(raw, path, value if value is DELETE else copy.deepcopy(value))
    return validate_stack_values({PREFIX + k: v for k, v in raw.items()}, "Pulumi.prod.yaml")


def problems(changes: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        validate(changes)
    message = str(caught.value)
    assert message.startswith("Invalid configuration in Pulumi.prod.yaml"), message
    assert "Traceback" not in message
    return message


def _ib_free_pools(count: int, per_pool: int) -> list[dict[str, Any]]:
    return [
        {"name": f"p{i}", "vmSize": "Standard_NC4as_T4_v3", "maxCount": per_pool}
        for i in range(count)
    ]


# (case id, {key path: value}, key the message names, text it must contain)
REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    # --- Kubernetes label syntax: a YAML block scalar (`team: |`) ends in a newline
    ("label-value-trailing-newline", {"aks.gpuPools[0].labels": {"team": "research\n"}},
     "aks.gpuPools[0].labels", "not a Kubernetes label value"),
    ("label-key-trailing-newline", {"aks.cpuPools[0].labels": {"team\n": "x"}},
     "aks.cpuPools[0].labels", "not a Kubernetes label key"),
    ("label-prefix-newline", {"aks.gpuPools[0].labels": {"example.com\n/team": "x"}},
     "aks.gpuPools[0].labels", "not a Kubernetes label key"),
    # --- ASCII digits only: other scripts' digits are \d to a Unicode regex
    ("k8s-version-arabic-digits", {"aks.kubernetesVersion": "1.\u0663\u0664"},
     "aks.kubernetesVersion", "pattern"),
    ("k8s-version-leading-zero", {"aks.kubernetesVersion": "1.034"}, "aks.kubernetesVersion",
     "pattern"),
    ("k8s-version-unsupported-minor", {"aks.kubernetesVersion": "1.2"}, "aks.kubernetesVersion",
     "aks_versions.yaml"),
    ("k8s-version-major-2", {"aks.kubernetesVersion": "2.0"}, "aks.kubernetesVersion",
     "supported minors"),
    ("cpu-request-devanagari-digit", {"aks.teams[0].defaultCpuRequest": "\u0665"},
     "aks.teams[0].defaultCpuRequest", "pattern"),
    ("sample-image-tag-unicode", {"inference.sampleImage": "inference/sample:v\u00e9"},
     "inference.sampleImage", "pattern"),
    # --- virtual network: reserved ranges and subnet sizes (VNet FAQ)
    ("vnet-internal-dns", {"network.addressSpace": "168.63.0.0/16",
                           "network.systemSubnet": "168.63.0.0/22",
                           "network.gpuSubnet": "168.63.4.0/22",
                           "network.privateEndpointSubnet": "168.63.8.0/24",
                           "inference.apimSubnet": "168.63.10.0/27"},
     "network.addressSpace", "168.63.129.16/32"),
    ("vnet-loopback", {"network.addressSpace": "127.0.0.0/8"}, "network.addressSpace",
     "127.0.0.0/8"),
    ("vnet-multicast", {"network.addressSpace": "224.0.0.0/4"}, "network.addressSpace",
     "224.0.0.0/4"),
    ("subnet-slash-30", {"network.privateEndpointSubnet": "10.42.8.0/30"},
     "network.privateEndpointSubnet", "/2 to /29"),
    ("extra-subnet-slash-32", {"network.extraSubnets": {"tools": "10.42.20.5/32"}},
     "network.extraSubnets.tools", "/2 to /29"),
    ("apim-subnet-slash-31", {"inference.apimSubnet": "10.42.10.0/31"}, "inference.apimSubnet",
     "too small"),
    ("lustre-subnet-slash-30", {"trainingStorage": {"enabled": True, "subnet": "10.42.12.0/30"}},
     "trainingStorage.subnet", "or larger"),
    # --- extraSubnets may not reuse the names of the subnets the stack creates
    ("extra-subnet-named-gpu", {"network.extraSubnets": {"gpu": "10.42.20.0/24"}},
     "network.extraSubnets.gpu", "would replace it"),
    ("extra-subnet-named-endpoints", {"network.extraSubnets": {"endpoints": "10.42.20.0/24"}},
     "network.extraSubnets.endpoints", "would replace it"),
    ("extra-subnet-named-like-apim", {"network.extraSubnets": {"inference-apim": "10.42.20.0/24"}},
     "network.extraSubnets.inference-apim", "would replace it"),
    # --- AKS address ranges (AKS networking articles; Azure CNI Overlay; kube-apiserver)
    ("service-cidr-172-30", {"aks.serviceCidr": "172.30.0.0/16"}, "aks.serviceCidr",
     "AKS clusters may not use"),
    ("service-cidr-link-local", {"aks.serviceCidr": "169.254.0.0/16"}, "aks.serviceCidr",
     "AKS clusters may not use"),
    ("service-cidr-test-net", {"aks.serviceCidr": "192.0.2.0/24"}, "aks.serviceCidr",
     "AKS clusters may not use"),
    ("pod-cidr-172-31", {"aks.podCidr": "172.31.0.0/16"}, "aks.podCidr",
     "AKS clusters may not use"),
    ("vnet-in-aks-reserved-range", {"network.addressSpace": "172.30.0.0/16",
                                    "network.systemSubnet": "172.30.0.0/22",
                                    "network.gpuSubnet": "172.30.4.0/22",
                                    "network.privateEndpointSubnet": "172.30.8.0/24",
                                    "inference.apimSubnet": "172.30.10.0/27"},
     "network.addressSpace", "AKS clusters may not use"),
    ("service-cidr-slash-29", {"aks.serviceCidr": "10.0.0.0/29"}, "aks.serviceCidr",
     "cluster DNS service"),
    ("service-cidr-slash-11", {"aks.serviceCidr": "100.64.0.0/11"}, "aks.serviceCidr",
     "/12 or smaller"),
    ("pod-cidr-slash-26", {"aks.podCidr": "10.244.0.0/26"}, "aks.podCidr", "0 node ranges"),
    ("pod-cidr-too-few-nodes", {"aks.podCidr": "10.244.0.0/20"}, "aks.podCidr", "31 nodes"),
    # --- AKS cluster size (AKS quotas and limits)
    ("aks-101-node-pools", {"aks.gpuPools": _ib_free_pools(99, 1)}, "aks.gpuPools",
     "at most 100"),
    ("aks-5001-nodes", {"aks.gpuPools": _ib_free_pools(6, 1000), "aks.podCidr": "10.0.0.0/8",
                        "aks.serviceCidr": "192.168.0.0/16", "network.gpuSubnet": "10.42.64.0/18",
                        "network.addressSpace": "10.42.0.0/16"},
     "aks.gpuPools", "at most 5000"),
    ("authorized-ranges-on-private-cluster", {"aks.authorizedIpRanges": ["20.30.40.0/24"]},
     "aks.authorizedIpRanges", "public API server only"),
    ("authorized-ranges-201", {"aks.privateCluster": False, "aks.authorizedIpRanges": [
        f"20.{i // 250}.{i % 250}.0/24" for i in range(201)]},
     "aks.authorizedIpRanges", "at most 200"),
    ("hub-vnet-id-of-a-subnet", {"network.hubVnetId": (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-hub/providers/"
        "Microsoft.Network/virtualNetworks/vnet-hub/subnets/default")},
     "network.hubVnetId", "pattern"),
    ("operator-ips-401", {"environment": "dev", "vault.softDeleteRetentionDays": 90,
                          "network.allowOperatorIps": [f"20.1.{i // 250}.{i % 250}"
                                                       for i in range(401)]},
     "network.allowOperatorIps", "at most 400"),
    # --- tags: names are case-insensitive to Azure
    ("tags-differ-in-case", {"tags": {"Owner": "a", "owner": "b"}}, "tags", "differ only in case"),
    ("tag-environment-capitalised", {"tags": {"Environment": "x"}}, "tags",
     "differ only in case"),
    ("tag-managedby-lowercase", {"tags": {"managedby": "terraform"}}, "tags",
     "differ only in case"),
    # --- tags on private DNS zones (every stack creates them): 15 tags, plain names
    ("tags-14-plus-two", {"tags": {f"t{i}": "v" for i in range(14)}}, "tags", "at most 15"),
    ("tag-name-with-space", {"tags": {"cost center": "a"}}, "tags", "private DNS zones"),
    ("tag-name-with-colon", {"tags": {"ms:usage": "a"}}, "tags", "private DNS zones"),
    ("tag-name-starts-with-digit", {"tags": {"1team": "a"}}, "tags", "start with a digit"),
    ("tag-name-non-ascii", {"tags": {"coût": "a"}}, "tags", "non-ASCII"),
    ("tag-name-parentheses", {"tags": {"owner(primary)": "a"}}, "tags", "parentheses"),
    # --- YAML typing: unquoted numbers and booleans
    ("tag-value-number", {"tags.costCenter": 1234}, "tags.costCenter", "put the value in quotes"),
    ("tag-value-boolean", {"tags.owner": True}, "tags.owner", "boolean"),
    ("pool-name-number", {"aks.gpuPools[0].name": 12}, "aks.gpuPools[0].name", "quotes"),
    ("max-count-yes", {"aks.gpuPools[0].maxCount": True}, "aks.gpuPools[0].maxCount",
     "not a boolean"),
    ("budget-amount-true", {"budget.monthlyAmountUsd": True}, "budget.monthlyAmountUsd",
     "not a boolean"),
    ("alert-percents-with-on", {"budget.actualAlertPercents": [True, 80]},
     "budget.actualAlertPercents", "not a boolean"),
    ("reservation-quantity-yes",
     {"capacityReservations": [{"name": "t4", "reservations": [
         {"vmSize": "Standard_NC4as_T4_v3", "quantity": True}]}]},
     "capacityReservations[0].reservations[0].quantity", "not a boolean"),
    ("zone-boolean", {"aks.gpuPools[0].zones": [True]}, "aks.gpuPools[0].zones[0]", "'1'"),
    ("zones-repeated-as-number-and-text", {"aks.gpuPools[0].zones": [1, "1"]},
     "aks.gpuPools[0].zones", "unique"),
    ("nat-zones-repeated", {"network.natPublicIpZones": ["2", "2"]}, "network.natPublicIpZones",
     "unique"),
    # --- container image references (OCI distribution grammar)
    ("sample-image-empty-path-component", {"inference.sampleImage": "inference//sample:v1"},
     "inference.sampleImage", "pattern"),
    ("sample-image-tag-leading-hyphen", {"inference.sampleImage": "inference/sample:-v1"},
     "inference.sampleImage", "pattern"),
    ("section-empty", {"vmPools": None}, "vmPools", "has no value"),
    ("top-level-section-null-text", {"aks": "null"}, "aks", "has no value"),
    ("pool-name-empty", {"aks.gpuPools[0].name": None}, "aks.gpuPools[0].name", "has no value"),
    # --- derived names: namePrefix is part of resource group, cluster and DNS prefix names
    ("name-prefix-11-chars", {"namePrefix": "mlplatform1"}, "namePrefix", "rg-<prefix>-<env>"),
    ("name-prefix-hyphen", {"namePrefix": "ml-team"}, "namePrefix", "2 to 10 lowercase"),
    # --- budgets: thresholds above 0 up to 1000 percent; start at most 12 months ahead
    ("budget-percent-zero", {"budget.actualAlertPercents": [0, 50]},
     "budget.actualAlertPercents[0]", "greater than 0"),
    ("budget-forecast-over-1000", {"budget.forecastAlertPercent": 1000.5},
     "budget.forecastAlertPercent", "1000"),
    ("budget-percents-equal-as-numbers", {"budget.actualAlertPercents": [50, 50.0]},
     "budget.actualAlertPercents", "repeated"),
    # --- Kubernetes LimitRange: a default request above the default limit
    ("team-memory-request-over-limit", {"aks.teams[0].defaultMemoryRequest": "16Gi"},
     "aks.teams[0].defaultMemoryRequest", "exceeds defaultMemoryLimit"),
    ("team-memory-request-one-mi-over", {"aks.teams[0].defaultMemoryRequest": "8193Mi"},
     "aks.teams[0].defaultMemoryRequest", "exceeds defaultMemoryLimit"),
    # --- marketplace image references
    ("image-empty-publisher", {"vmPools[0].image": {"publisher": "", "offer": "o", "sku": "s"}},
     "vmPools[0].image.publisher", "pattern"),
    ("image-version-newest", {"vmPools[0].image": {"publisher": "Canonical", "offer": "o",
                                                   "sku": "s", "version": "newest"}},
     "vmPools[0].image.version", "pattern"),
    # --- blob container names (Azure Storage naming rules)
    ("container-64-chars", {"storage.containers": ["a" * 64, "models", "checkpoints"]},
     "storage.containers[0]", "3 to 63"),
    ("container-trailing-hyphen", {"storage.containers": ["raw-", "models", "checkpoints"]},
     "storage.containers[0]", "ending with a letter or digit"),
    ("container-dollar-logs", {"storage.containers": ["$logs", "models", "checkpoints"]},
     "storage.containers[0]", "not a blob container name"),
    # --- node labels the pools set themselves would overwrite the user's silently
    ("label-purpose", {"aks.gpuPools[0].labels": {"purpose": "research"}},
     "aks.gpuPools[0].labels", "the stack sets on its pools itself"),
    ("label-workload-class", {"aks.cpuPools[0].labels": {"workload-class": "etl"}},
     "aks.cpuPools[0].labels", "the stack sets on its pools itself"),
    # --- action group webhooks need a host
    ("webhook-without-host", {"monitoring.alertWebhooks": ["https://"]},
     "monitoring.alertWebhooks[0]", "pattern"),
    ("webhook-with-space", {"monitoring.alertWebhooks": ["https://hooks example.com/x"]},
     "monitoring.alertWebhooks[0]", "pattern"),
    # --- regions without availability zones refuse the zonal defaults
    ("westus-with-zonal-defaults", {"location": "westus", "registry.geoReplicaLocation": "eastus"},
     "location", "has no availability zones"),
    ("geo-replica-in-region-without-zones", {"registry.geoReplicaLocation": "westus"},
     "registry.geoReplicaLocation", "has no availability zones"),
    ("westus-zrs-only", {"location": "westus", "registry.geoReplicaLocation": "eastus",
                         "network.natPublicIpZones": [], "aks.systemPool.zones": [],
                         "aks.gpuPools[0].zones": DELETE, "aks.cpuPools[0].zones": DELETE,
                         "registry.zoneRedundant": False},
     "location", "storage.replication ZRS"),
]


@pytest.mark.parametrize(
    ("changes", "key", "text"),
    [pytest.param(changes, key, text, id=case) for case, changes, key, text in REFUSED],
)
def test_value_azure_refuses_is_a_config_error_naming_the_key(
    changes: dict[str, Any], key: str, text: str
) -> None:
    message = problems(changes)
    assert f"{PREFIX}{key}" in message, message
    assert text in message, message


# (case id, {key path: value}): values Azure accepts, which must not be refused.
ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("zones-as-numbers", {"aks.gpuPools[0].zones": [1, 2, 3], "network.natPublicIpZones": [1],
                          "aks.systemPool.zones": [1, "2", 3]}),
    ("subnet-slash-29", {"network.extraSubnets": {"tools": "10.42.20.0/29"}}),
    ("service-cidr-slash-12", {"aks.serviceCidr": "100.64.0.0/12"}),
    ("service-cidr-slash-28", {"aks.serviceCidr": "10.0.0.0/28"}),
    ("pod-cidr-slash-19", {"aks.podCidr": "10.244.0.0/19"}),
    ("k8s-version-supported-patch", {"aks.kubernetesVersion": "1.34.2"}),
    ("k8s-version-newer-than-data", {"aks.kubernetesVersion": "1.40"}),
    ("label-empty-value", {"aks.gpuPools[0].labels": {"example.com/team": ""}}),
    ("tag-environment-override", {"tags": {"environment": "production"}}),
    ("tags-13-plus-two", {"tags": {f"t{i}": "v" for i in range(13)}}),
    ("tag-names-with-hyphen-underscore-dot", {"tags": {"cost-center": "a", "app_id": "b",
                                                       "team.name": "c"}}),
    ("tag-empty-value", {"tags.owner": ""}),
    ("memory-request-equals-limit", {"aks.teams[0].defaultMemoryRequest": "8192Mi"}),
    ("image-pinned-version", {"vmPools[0].image": {"publisher": "microsoft-dsvm",
                                                   "offer": "ubuntu-hpc", "sku": "2204",
                                                   "version": "22.04.2024102301"}}),
    ("public-cluster-with-ranges", {"aks.privateCluster": False,
                                    "aks.authorizedIpRanges": ["20.30.40.0/24"]}),
    ("westus-without-zonal-settings",
     {"location": "westus", "registry.geoReplicaLocation": "eastus",
      "network.natPublicIpZones": [], "aks.systemPool.zones": [],
      "aks.gpuPools[0].zones": DELETE, "aks.cpuPools[0].zones": DELETE,
      "storage.replication": "LRS", "registry.zoneRedundant": False}),
    ("protect-stateful-yes-text", {"protectStateful": "yes"}),
    ("operator-ips-400", {"environment": "dev", "network.allowOperatorIps": [
        f"20.1.{i // 250}.{i % 250}" for i in range(400)]}),
    ("geo-replica-without-zones-not-zone-redundant",
     {"registry.geoReplicaLocation": "westus", "registry.zoneRedundant": False}),
    ("aks-100-node-pools", {"aks.gpuPools": _ib_free_pools(97, 1)}),
    ("name-prefix-10-chars", {"namePrefix": "mlplatform"}),
    # Linux scale set host names take 64 characters, the prefix 58 (resource-name-rules).
    ("linux-scale-set-name-19-chars", {"vmPools[0].name": "ndtrainingpool-a100"}),
    ("cpu-scale-set-name-20-chars", {"cpuScaleSets[0].name": "ingest-preprocessing"}),
    ("sample-image-nested-repository", {"inference.sampleImage":
                                        "team-a/models/llama-3.1__int8:2024.10"}),
    ("hub-vnet-id-lowercase-segments", {"network.hubVnetId": (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg-hub/providers/"
        "microsoft.network/virtualnetworks/vnet-hub")}),
    ("authorized-ranges-200", {"aks.privateCluster": False, "aks.authorizedIpRanges": [
        f"20.{i // 250}.{i % 250}.0/24" for i in range(200)]}),
    ("budget-decimal-percents", {"budget.actualAlertPercents": [12.5, 50, 99.99],
                                 "budget.forecastAlertPercent": 0.01}),
    ("container-starting-with-digit", {"storage.containers": ["2024-raw", "models", "checkpoints",
                                                             "datasets"]}),
    ("container-63-chars", {"storage.containers": ["a" * 63, "models", "checkpoints",
                                                   "datasets"]}),
    ("webhook-with-port-and-query", {"monitoring.alertWebhooks": [
        "https://hooks.example.com:8443/services/T0/B0?token=x"]}),
    ("webhook-query-only", {"monitoring.alertWebhooks": ["https://hooks.example.com?token=x"]}),
]


@pytest.mark.parametrize(
    "changes", [pytest.param(changes, id=case) for case, changes in ACCEPTED]
)
def test_value_azure_accepts_validates(changes: dict[str, Any]) -> None:
    validate(changes)


def test_zones_typed_as_numbers_mean_the_same_zones() -> None:
    config = validate({"aks.gpuPools[0].zones": [1, 2, 3], "network.natPublicIpZones": [3]})
    assert config.aks is not None and config.aks.gpu_pools[0].zones == ["1", "2", "3"]
    assert config.network.nat_public_ip_zones == ["3"]


def test_every_zonal_setting_is_named_in_a_region_without_zones() -> None:
    message = problems({"location": "westus", "registry.geoReplicaLocation": "eastus"})
    zonal = ["network.natPublicIpZones", "aks.systemPool.zones", "aks.gpuPools[0].zones",
             "aks.cpuPools[0].zones", "storage.replication", "registry.zoneRedundant"]  # fmt: skip
    for key in zonal:
        assert key in message, message
    assert "aks.gpuPools[1].zones" not in message  # the ND pool sets no zones


def test_limits_data_names_a_source_for_every_new_section() -> None:
    sections = ("virtual_network", "aks_network", "aks_cluster", "aks_api_server",
                "kubernetes_limit_range", "storage_firewall", "tags")  # fmt: skip
    for section in sections:
        assert LIMITS[section]["source"].startswith("https://"), section


def test_dns_service_offset_matches_what_the_cluster_component_sets() -> None:
    from components.aks import DNS_SERVICE_IP_OFFSET

    assert LIMITS["aks_network"]["dns_service_ip_offset"] == DNS_SERVICE_IP_OFFSET


def test_stack_node_labels_cover_every_label_the_pool_components_set() -> None:
    from components import aks, cpu_node_pool
    from stacks.config import STACK_NODE_LABELS

    set_by_pools = {
        aks.ACCELERATOR_LABEL, aks.GPU_MODEL_LABEL, aks.PURPOSE_LABEL, aks.DRIVER_LABEL,
        aks.GPU_OPERATOR_OPERANDS_LABEL, aks.DEVICE_PLUGIN_CONFIG_LABEL,
        cpu_node_pool.WORKLOAD_LABEL,
    }  # fmt: skip
    assert set_by_pools == set(STACK_NODE_LABELS)


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_longest_name_prefix_keeps_every_derived_name_within_azure_limits(
    environment: str,
) -> None:
    """rg-<prefix>-<env>-<purpose> (resource groups: 90), aks-<prefix>-<env> (cluster: 63; DNS
    prefix: 54), the action group short name (12, cut by stacks/environment.py), and AKS's own
    node resource group MC_<group>_<cluster>_<region> (80), in the longest region name."""
    from stacks.environment import resource_group_name

    config = validate({"namePrefix": "a" * 10, "environment": environment,
                       "vault.softDeleteRetentionDays": 90})  # fmt: skip
    group = resource_group_name(config, "core")
    cluster = f"aks-{config.name_prefix}-{config.environment}"
    longest_region = max(azure_regions(), key=len)
    assert len(group) <= 90 and len(cluster) <= 54
    assert len(f"MC_{group}_{cluster}_{longest_region}") <= 80


def _first_of_month(months_ahead: int) -> str:
    today = dt.date.today()
    index = today.month - 1 + months_ahead
    return dt.date(today.year + index // 12, index % 12 + 1, 1).isoformat()


def test_budget_may_start_up_to_twelve_months_ahead_not_later() -> None:
    assert validate({"budget.startDate": _first_of_month(12)}).budget.start_date
    message = problems({"budget.startDate": _first_of_month(13)})
    assert f"{PREFIX}budget.startDate: " in message and "12 months ahead" in message


def test_budget_notification_names_carry_decimal_thresholds_without_a_dot() -> None:
    from components.budget import _percent_key

    assert [_percent_key(p) for p in (80, 100, 12.5, 0.01)] == ["80", "100", "12_5", "0_01"]


def test_every_subnet_the_stack_names_is_in_the_built_in_names(prod_plan: Plan) -> None:
    """extraSubnets are named snet-<key>; the stack's own subnets must all be known to the
    rule that keeps those keys apart (prod has the APIM subnet; Lustre is named alike)."""
    from stacks.config import BUILT_IN_SUBNET_NAMES

    names = {
        str(r.inputs["subnetName"]).removeprefix("snet-")
        for r in prod_plan.resources
        if r.type == "azure-native:network:Subnet" and "subnetName" in r.inputs
    }
    assert names and names <= set(BUILT_IN_SUBNET_NAMES), names


def test_committed_stacks_fit_the_new_limits() -> None:
    """The stacks we ship stay valid: prod (here) and dev/staging in tests/test_config.py."""
    config = validate({})
    assert config.location in availability_zone_regions()


def test_unquoted_yaml_date_in_a_stack_file_is_read_as_its_text(tmp_path: Path) -> None:
    """`startDate: 2027-01-01` is a YAML timestamp; the Pulumi CLI hands it over as text, and so
    must the offline reader (it used to fail encoding the date as JSON)."""
    (tmp_path / "Pulumi.yaml").write_text(f"name: {PROJECT}\nruntime: python\nmain: {ROOT}\n")
    stack = (ROOT / "Pulumi.dev.yaml").read_text()
    stack = stack.replace("    monthlyAmountUsd: 1500\n",
                          "    monthlyAmountUsd: 1500\n    startDate: 2027-01-01\n")
    assert "startDate: 2027-01-01" in stack
    (tmp_path / "Pulumi.dev.yaml").write_text(stack)
    project = load_project(tmp_path, "dev")
    config = validate_stack_values(project.config, project.stack_file.name)
    assert config.budget.start_date == "2027-01-01"


# --- properties -------------------------------------------------------------------------------

NODES_IN_PROD = 31  # system 5+1, t4infer 10+1, ndtrain 4+1, prep 8+1 (maxCount + 10% surge)


@settings(max_examples=40, deadline=None)
@given(prefix=st.integers(min_value=8, max_value=30))
def test_pod_cidr_is_accepted_exactly_when_it_holds_a_slash_24_per_node(prefix: int) -> None:
    pods = str(ipaddress.ip_network(f"100.64.0.0/{prefix}", strict=False))
    fits = prefix <= 24 and 2 ** (24 - prefix) >= NODES_IN_PROD
    try:
        validate({"aks.podCidr": pods})
    except ConfigError as error:
        assert not fits, str(error)
        assert f"{PREFIX}aks.podCidr" in str(error)
    else:
        assert fits


@settings(max_examples=40, deadline=None)
@given(prefix=st.integers(min_value=24, max_value=32))
def test_extra_subnet_is_accepted_exactly_from_slash_24_to_slash_29(prefix: int) -> None:
    subnet = str(ipaddress.ip_network(f"10.42.20.0/{prefix}", strict=False))
    try:
        validate({"network.extraSubnets": {"tools": subnet}})
    except ConfigError as error:
        assert prefix > 29, str(error)
        assert f"{PREFIX}network.extraSubnets.tools" in str(error)
    else:
        assert prefix <= 29


LABEL_TEXT = st.text(alphabet="abcXYZ019-_.", min_size=1, max_size=20).filter(
    lambda t: t[0].isalnum() and t[-1].isalnum()
)


@settings(max_examples=40, deadline=None)
@given(value=LABEL_TEXT, tail=st.sampled_from(["\n", " ", "\t", "\r\n", "\u00a0"]))
def test_label_values_with_trailing_whitespace_are_refused(value: str, tail: str) -> None:
    validate({"aks.gpuPools[0].labels": {"team": value}})
    message = problems({"aks.gpuPools[0].labels": {"team": value + tail}})
    assert f"{PREFIX}aks.gpuPools[0].labels" in message


@settings(max_examples=15, deadline=None)
@given(region=st.sampled_from(sorted(set(azure_regions()) - availability_zone_regions())))
def test_no_zone_region_refuses_the_zonal_defaults(region: str) -> None:
    geo = "eastus" if region != "eastus" else "westus2"
    message = problems({"location": region, "registry.geoReplicaLocation": geo})
    assert f"{PREFIX}location: {region} has no availability zones" in message


@settings(max_examples=30, deadline=None)
@given(flag=st.sampled_from([True, False]),
       key=st.sampled_from(["aks.gpuPools[0].maxCount", "aks.systemPool.maxCount",
                            "vmPools[0].maxCount", "budget.monthlyAmountUsd",
                            "storage.softDeleteDays", "monitoring.gpuIdlePercent"]))
def test_a_boolean_is_never_taken_for_a_number(flag: bool, key: str) -> None:
    message = problems({key: flag})
    assert f"{PREFIX}{key}: must be a number, not a boolean" in message


def _key_paths(value: Any, prefix: str = "") -> list[str]:
    found: list[str] = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        path = f"{prefix}[{key}]" if isinstance(key, int) else f"{prefix}.{key}" if prefix else key
        found.append(path)
        if isinstance(item, dict | list):
            found += _key_paths(item, path)
    return found


ANY_VALUE = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(), st.text(max_size=20),
        st.sampled_from(["", "null", "10.0.0.0/33", "::/0", "1", "yes", "\u00e9", "\n"]),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=6,
)  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(path=st.sampled_from(_key_paths(prod_values())), value=ANY_VALUE)
def test_any_value_at_any_key_is_a_config_or_one_config_error(path: str, value: Any) -> None:
    """Whatever a stack file holds at any key, validation never ends in another exception."""
    try:
        validate({path: value})
    except ConfigError as error:
        assert "Traceback" not in str(error)
