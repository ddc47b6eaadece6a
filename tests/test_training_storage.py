"""TrainingFileSystem: Managed Lustre in its own subnet, sized and rated as the config asked."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
import yaml

from components.conventions import ComponentContext
from components.training_storage import HsmTarget, TrainingFileSystem, TrainingFileSystemArgs
from gpustack import facts
from gpustack.cost import estimate_monthly_cost
from gpustack.engine import PlannedResource, capture
from stacks.config import ConfigError, parse_config
from tests.conftest import ROOT

LUSTRE = "azure-native:storagecache:AmlFilesystem"
SUBNET = "azure-native:network:Subnet"
NSG = "azure-native:network:NetworkSecurityGroup"
CONTEXT = ComponentContext(resource_group_name="rg-test", location="eastus")
ACCOUNT = "/subscriptions/s/resourceGroups/rg-test/providers/Microsoft.Storage/storageAccounts/st"


def _lustre(**overrides: Any) -> tuple[list[PlannedResource], dict[str, Any]]:
    values: dict[str, Any] = {
        "context": CONTEXT, "vnet_name": "spoke", "subnet_cidr": "10.42.12.0/24",
        "sku": "AMLFS-Durable-Premium-250", "capacity_tib": 24,
    }
    args = TrainingFileSystemArgs(**(values | overrides))
    seen: dict[str, Any] = {}

    def declare() -> None:
        fs = TrainingFileSystem("training", args)
        seen["component"] = fs

    return capture(declare), seen


def _one(resources: list[PlannedResource], token: str) -> PlannedResource:
    (found,) = [r for r in resources if r.type == token]
    return found


def test_lustre_sits_in_its_own_subnet_with_the_asked_size_and_throughput() -> None:
    resources, seen = _lustre()
    filesystem = _one(resources, LUSTRE)
    subnet = _one(resources, SUBNET)
    assert filesystem.inputs["filesystemSubnet"] == subnet.id
    assert subnet.inputs["addressPrefix"] == "10.42.12.0/24"
    assert subnet.inputs["subnetName"] == "snet-training-lustre"
    assert filesystem.inputs["storageCapacityTiB"] == 24
    assert filesystem.inputs["sku"] == {"name": "AMLFS-Durable-Premium-250"}
    per_tib = facts.lustre_sku("AMLFS-Durable-Premium-250")["mbps_per_tib"]
    assert seen["component"].aggregate_mbps == 24 * per_tib
    window = filesystem.inputs["maintenanceWindow"]
    assert window == {"dayOfWeek": "Sunday", "timeOfDayUTC": "02:00"}
    assert "hsm" not in filesystem.inputs


def test_lustre_subnet_allows_azure_cloud_out_and_denies_the_internet_in() -> None:
    resources, _ = _lustre()
    nsg = _one(resources, NSG)
    assert _one(resources, SUBNET).inputs["networkSecurityGroup"]["id"] == nsg.id
    rules = {r["name"]: r for r in nsg.inputs["securityRules"]}
    cloud = rules["allow-azure-cloud"]
    assert (cloud["direction"], cloud["destinationAddressPrefix"]) == ("Outbound", "AzureCloud")
    assert rules["deny-internet-inbound"]["access"] == "Deny"


def test_hsm_roles_exist_before_the_file_system_that_needs_them() -> None:
    hsm = HsmTarget(
        storage_account_id=ACCOUNT,
        container_id=f"{ACCOUNT}/blobServices/default/containers/datasets",
        logging_container_id=f"{ACCOUNT}/blobServices/default/containers/lustre-logs",
        resource_provider_object_id="00000000-0000-4000-8000-0000000000aa",
    )
    resources, _ = _lustre(hsm=hsm)
    filesystem = _one(resources, LUSTRE)
    settings = filesystem.inputs["hsm"]["settings"]
    assert settings["container"].endswith("/containers/datasets")
    assert settings["loggingContainer"].endswith("/containers/lustre-logs")
    grants = [r for r in resources if r.type == "azure-native:authorization:RoleAssignment"]
    roles = {str(g.inputs["roleDefinitionId"]).rsplit("/", 1)[-1] for g in grants}
    assert roles == {facts.role_definition_id(r) for r in facts.load("serving")["managed_lustre"][
        "hsm"]["roles"]}
    assert {g.inputs["scope"] for g in grants} == {ACCOUNT}
    assert {g.urn for g in grants} <= set(filesystem.options["dependsOn"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"capacity_tib": 20}, "in steps of 8"),
        ({"sku": "AMLFS-Durable-Premium-40", "capacity_tib": 48, "subnet_cidr": "10.42.12.0/27"},
         "needs /25 or larger"),
    ],
)
def test_sizes_the_service_would_reject_are_refused(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(Exception, match=message):
        _lustre(**overrides)


def test_lustre_is_reported_unpriced_rather_than_free() -> None:
    resources, _ = _lustre()
    views = [r.analyzer_view() | {"id": r.id, "custom": r.custom} for r in resources]
    report = estimate_monthly_cost(views)
    (filesystem,) = [r for r in resources if r.type == LUSTRE]
    assert filesystem.urn in report.unpriced
    assert "storagecache.AmlFilesystem.AMLFS-Durable-Premium-250" in " ".join(
        report.unpriced_reasons[filesystem.urn])


def _prod(**training: Any) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    config = {key.split(":", 1)[1]: value for key, value in raw.items()}
    config["trainingStorage"] = {**config["trainingStorage"], **training}
    return config


def test_prod_config_turns_lustre_on_with_one_switch() -> None:
    cfg = parse_config(_prod(enabled=True), "Pulumi.prod.yaml")
    lustre = cfg.training_storage
    subnet = ipaddress.ip_network(lustre.subnet or "")
    assert subnet.prefixlen <= lustre.subnet_prefix()
    assert facts.lustre_aggregate_mbps(lustre.sku, lustre.capacity_tib) == 2000


@pytest.mark.parametrize(
    ("training", "message"),
    [
        ({"enabled": True, "subnet": None}, "trainingStorage.subnet: required"),
        ({"enabled": True, "subnet": "10.42.10.0/24"}, "overlaps inference.apimSubnet"),
        ({"enabled": True, "subnet": "10.42.12.0/28"}, "recommends /27 or larger"),
        ({"enabled": True, "capacityTib": 17}, "in steps of 16"),
        ({"enabled": True, "hsm": True}, "Shared Key"),
    ],
)
def test_bad_training_storage_config_is_a_config_error(
    training: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_prod(**training), "Pulumi.prod.yaml")
    assert any(message in problem for problem in caught.value.problems), caught.value.problems
