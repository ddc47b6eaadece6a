"""Bad input never does what a merge gate must not: every case exits 2 with one `error` message
naming the key, argument or file, and no traceback.

Table-driven and mostly in-process, because a CLI subprocess costs seconds: stack-file values go
through the config loader (`validate_stack_values`, what `load_stack_config` runs inside the
program), stack files through `load_project`, and command-line arguments through `cli.main`,
whose checks all run before planning. A few representative paths run as real subprocesses.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpustack import cli
from gpustack.cli import EXIT_ERROR, PlanFailed, plan_stack
from gpustack.engine import Plan, PlannedResource
from gpustack.project import ProjectError, load_project
from stacks.config import PROJECT, ConfigError, SecretText, validate_stack_values
from tests.conftest import FIXTURES, ROOT

PREFIX = f"{PROJECT}:"
DELETE = object()
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICWWEKvBQHrRUG6uF5ZH8bPQTu/wiThy/6dSr1zezbrL k"


def prod_values() -> dict[str, Any]:
    """Pulumi.prod.yaml's project keys without the namespace: the richest committed stack."""
    config = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    return {key[len(PREFIX) :]: value for key, value in config.items() if key.startswith(PREFIX)}


def _ssh_blob(*fields: bytes) -> str:
    return base64.b64encode(b"".join(struct.pack(">I", len(f)) + f for f in fields)).decode()


RSA_1024 = "ssh-rsa " + _ssh_blob(b"ssh-rsa", b"\x01\x00\x01", b"\x80" + b"\x01" * 127)
LABELLED_WRONG = "ssh-ed25519 " + _ssh_blob(b"ssh-rsa", b"\x01\x00\x01", b"\x80" * 256)


def _set(raw: dict[str, Any], path: str, value: Any) -> None:
    """Set `a.b[0].c` in `raw` (DELETE removes the key)."""
    parts: list[str | int] = []
    for chunk in path.split("."):
        name, _, rest = chunk.partition("[")
        if name:
            parts.append(name)
        for index in filter(None, rest.replace("]", "").split("[")):
            parts.append(int(index))
    target: Any = raw
    for part in parts[:-1]:
        if isinstance(part, str) and part not in target:
            target[part] = {}
        target = target[part]
    if value is DELETE:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value


# (case id, key path to change, new value, text the message must name)
CONFIG_CASES: list[tuple[str, str, Any, str]] = [
    # --- top level
    ("environment-unknown", "environment", "qa", "environment"),
    ("environment-number", "environment", 3, "environment"),
    ("environment-missing", "environment", DELETE, "environment: required"),
    ("location-nowhere", "location", "nowhere", "location"),
    ("location-display-name", "location", "East US", "location"),
    ("location-empty", "location", "", "location"),
    ("location-number", "location", 42, "location"),
    ("name-prefix-uppercase", "namePrefix", "GPU", "namePrefix"),
    ("name-prefix-too-long", "namePrefix", "averyverylongprefix", "namePrefix"),
    ("tags-a-list", "tags", ["owner"], "tags"),
    ("tags-58", "tags", {f"t{i}": "v" for i in range(58)}, "tags"),
    ("tag-value-300-chars", "tags.owner", "v" * 300, "tags"),
    ("tag-name-200-chars", "tags", {"n" * 200: "v"}, "tags"),
    ("tag-name-forbidden-char", "tags", {"cost<center": "v"}, "tags"),
    ("tag-value-not-text", "tags.owner", {"team": "a"}, "tags.owner"),
    ("protect-stateful-not-bool", "protectStateful", "maybe", "protectStateful"),
    ("unknown-top-level-key", "netwrok", {}, "netwrok: unknown key"),
    ("budget-missing", "budget", DELETE, "budget: required"),
    # --- network
    ("address-space-ipv6", "network.addressSpace", "fd00::/8", "network.addressSpace"),
    ("address-space-bad-prefix", "network.addressSpace", "10.42.0.0/33", "network.addressSpace"),
    ("address-space-infiniband", "network.addressSpace", "172.16.0.0/12", "network.addressSpace"),
    ("subnet-host-bits", "network.systemSubnet", "10.42.0.1/22", "network.systemSubnet"),
    ("subnet-ipv6", "network.gpuSubnet", "fd00:1::/64", "network.gpuSubnet"),
    ("subnet-outside-space", "network.gpuSubnet", "10.99.4.0/22", "network.gpuSubnet"),
    ("subnets-overlap", "network.privateEndpointSubnet", "10.42.4.0/24", "network.gpuSubnet"),
    ("nat-off-without-hub", "network.natGateway", False, "network.natGateway"),
    ("hub-vnet-not-an-id", "network.hubVnetId", "my-hub", "network.hubVnetId"),
    ("operator-ips-in-prod", "network.allowOperatorIps", ["20.30.40.50"],
     "network.allowOperatorIps"),
    ("operator-ip-private", "network.allowOperatorIps", ["10.0.0.1"],
     "network.allowOperatorIps[0]"),
    ("nat-zone-4", "network.natPublicIpZones", ["4"], "network.natPublicIpZones[0]"),
    ("extra-subnet-bad-name", "network.extraSubnets", {"Bad_Name": "10.42.20.0/24"},
     "network.extraSubnets.Bad_Name"),
    ("network-a-string", "network", "10.42.0.0/16", "network"),
    ("network-unknown-key", "network.adressSpace", "10.1.0.0/16", "network.adressSpace"),
    ("gpu-subnet-too-small", "network.gpuSubnet", "10.42.4.0/29", "network.gpuSubnet"),
    # --- storage and vault
    ("container-twice", "storage.containers", ["models", "models", "checkpoints", "datasets"],
     "storage.containers"),
    ("containers-without-models", "storage.containers", ["datasets", "checkpoints"], "storage"),
    ("container-uppercase", "storage.containers", ["Models", "models", "checkpoints"],
     "storage.containers[0]"),
    ("containers-empty", "storage.containers", [], "storage.containers"),
    ("container-two-chars", "storage.containers", ["ab", "models", "checkpoints"],
     "storage.containers[0]"),
    ("container-double-hyphen", "storage.containers", ["raw--data", "models", "checkpoints"],
     "storage.containers[0]"),
    ("replication-unknown", "storage.replication", "XYZ", "storage.replication"),
    ("soft-delete-400-days", "storage.softDeleteDays", 400, "storage.softDeleteDays"),
    ("capacity-infinite", "storage.estimatedCapacityGb", float("inf"),
     "storage.estimatedCapacityGb"),
    ("capacity-nan", "storage.estimatedCapacityGb", float("nan"), "storage.estimatedCapacityGb"),
    ("capacity-negative", "storage.estimatedCapacityGb", -1, "storage.estimatedCapacityGb"),
    ("cache-unknown", "storage.cache", "disk", "storage.cache"),
    ("vault-retention-3", "vault.softDeleteRetentionDays", 3, "vault.softDeleteRetentionDays"),
    ("vault-retention-30-in-prod", "vault.softDeleteRetentionDays", 30,
     "vault.softDeleteRetentionDays"),
    ("vault-a-list", "vault", [], "vault"),
    # --- AKS
    ("aks-tier-unknown", "aks.tier", "Gold", "aks.tier"),
    ("aks-public-without-ranges", "aks.privateCluster", False, "aks.privateCluster"),
    ("aks-range-not-cidr", "aks.authorizedIpRanges", ["anywhere"], "aks.authorizedIpRanges[0]"),
    ("aks-admin-group-not-guid", "aks.adminGroupObjectIds", ["admins"],
     "aks.adminGroupObjectIds[0]"),
    ("aks-version-latest", "aks.kubernetesVersion", "latest", "aks.kubernetesVersion"),
    ("aks-pod-cidr-overlaps-vnet", "aks.podCidr", "10.42.0.0/16", "aks.podCidr"),
    ("aks-service-cidr-overlaps-pods", "aks.serviceCidr", "10.244.0.0/20", "aks.serviceCidr"),
    ("aks-pod-cidr-ipv6", "aks.podCidr", "fd10::/64", "aks.podCidr"),
    ("system-pool-gpu-size", "aks.systemPool.vmSize", "Standard_NC4as_T4_v3",
     "aks.systemPool.vmSize"),
    ("system-pool-unknown-size", "aks.systemPool.vmSize", "Standard_Foo", "aks.systemPool.vmSize"),
    ("system-pool-min-over-max", "aks.systemPool.minCount", 9, "aks.systemPool"),
    ("gpu-pool-name-uppercase", "aks.gpuPools[0].name", "T4-Infer", "aks.gpuPools[0].name"),
    ("gpu-pool-cpu-size", "aks.gpuPools[0].vmSize", "Standard_D8s_v5", "aks.gpuPools[0].vmSize"),
    ("gpu-pool-min-negative", "aks.gpuPools[0].minCount", -2, "aks.gpuPools[0].minCount"),
    ("gpu-pool-max-zero", "aks.gpuPools[0].maxCount", 0, "aks.gpuPools[0].maxCount"),
    ("gpu-pool-max-text", "aks.gpuPools[0].maxCount", "ten", "aks.gpuPools[0].maxCount"),
    ("gpu-pool-infiniband-150", "aks.gpuPools[1].maxCount", 150, "aks.gpuPools[1]"),
    ("gpu-pool-infiniband-zones", "aks.gpuPools[1].zones", ["1", "2"], "aks.gpuPools[1]"),
    ("gpu-pool-mig-on-t4", "aks.gpuPools[0].migProfile", "MIG1g", "aks.gpuPools[0]"),
    ("gpu-pool-label-key-bad", "aks.gpuPools[0].labels", {"bad key!": "x"},
     "aks.gpuPools[0].labels"),
    ("gpu-pool-label-aks-prefix", "aks.gpuPools[0].labels", {"kubernetes.azure.com/x": "y"},
     "aks.gpuPools[0].labels"),
    ("gpu-pool-label-value-bad", "aks.gpuPools[0].labels", {"team": "bad value!"},
     "aks.gpuPools[0].labels"),
    ("gpu-pool-label-name-64", "aks.gpuPools[0].labels", {"a" * 64: "x"},
     "aks.gpuPools[0].labels"),
    ("gpu-pool-time-slicing-1", "aks.gpuPools[0].timeSlicingReplicas", 1,
     "aks.gpuPools[0].timeSlicingReplicas"),
    ("gpu-pool-named-system", "aks.gpuPools[0].name", "system", "aks.gpuPools"),
    ("gpu-pool-names-repeat", "aks.gpuPools[1].name", "t4infer", "aks.gpuPools"),
    ("gpu-pool-driver-none-without-operator", "aks.gpuOperator", False, "aks.gpuOperator"),
    ("gpu-pool-fixed-size-mismatch", "aks.gpuPools[0].autoscale", False, "aks.gpuPools[0]"),
    ("gpu-pool-os-disk-10", "aks.gpuPools[0].osDiskGb", 10, "aks.gpuPools[0].osDiskGb"),
    ("gpu-pools-a-string", "aks.gpuPools", "t4infer", "aks.gpuPools"),
    ("cpu-pool-gpu-size", "aks.cpuPools[0].vmSize", "Standard_NC4as_T4_v3",
     "aks.cpuPools[0].vmSize"),
    ("cpu-pool-label-bad", "aks.cpuPools[0].labels", {"x/": "y"}, "aks.cpuPools[0].labels"),
    ("cpu-pool-name-of-gpu-pool", "aks.cpuPools[0].name", "t4infer", "aks.gpuPools"),
    ("team-named-kube-system", "aks.teams[0].name", "kube-system", "aks.teams[0]"),
    ("team-quota-negative", "aks.teams[0].gpuQuota", -1, "aks.teams[0].gpuQuota"),
    ("team-unknown-container", "aks.teams[1].readContainers", ["nope"], "aks.teams[1]"),
    ("team-names-repeat", "aks.teams[1].name", "research", "aks.teams"),
    ("team-read-and-write", "aks.teams[0].readContainers", ["checkpoints"], "aks.teams[0]"),
    ("team-cpu-request-text", "aks.teams[0].defaultCpuRequest", "lots",
     "aks.teams[0].defaultCpuRequest"),
    ("maintenance-2-hours", "aks.maintenanceWindow.durationHours", 2,
     "aks.maintenanceWindow.durationHours"),
    ("maintenance-funday", "aks.maintenanceWindow.dayOfWeek", "Funday",
     "aks.maintenanceWindow.dayOfWeek"),
    # --- VM pools and CPU scale sets
    ("admin-root", "vmPools[0].adminUsername", "root", "vmPools[0].adminUsername"),
    ("admin-admin", "vmPools[0].adminUsername", "admin", "vmPools[0].adminUsername"),
    ("admin-guest", "vmPools[0].adminUsername", "guest", "vmPools[0].adminUsername"),
    ("admin-with-space", "vmPools[0].adminUsername", "ml user", "vmPools[0].adminUsername"),
    ("ssh-key-truncated", "vmPools[0].sshPublicKey", "ssh-rsa AAAA", "vmPools[0].sshPublicKey"),
    ("ssh-key-prose", "vmPools[0].sshPublicKey", "my laptop key", "vmPools[0].sshPublicKey"),
    ("ssh-key-dsa", "vmPools[0].sshPublicKey", "ssh-dss AAAAB3NzaC1kc3M=",
     "vmPools[0].sshPublicKey"),
    ("ssh-key-type-mismatch", "vmPools[0].sshPublicKey", LABELLED_WRONG,
     "vmPools[0].sshPublicKey"),
    ("ssh-key-rsa-1024", "vmPools[0].sshPublicKey", RSA_1024, "vmPools[0].sshPublicKey"),
    ("ssh-key-missing", "vmPools[0].sshPublicKey", DELETE, "vmPools[0].sshPublicKey"),
    ("vm-pool-infiniband-150", "vmPools[0].maxCount", 150, "vmPools[0]"),
    ("vm-kind-vm-with-counts", "vmPools[0].kind", "vm", "vmPools[0]"),
    ("vm-default-over-max", "vmPools[0].defaultCount", 9, "vmPools[0]"),
    ("vm-scale-set-name-too-long", "vmPools[0].name", "ndtraining-pool-a100-ib-eastus-001",
     "vmPools[0].name"),
    ("vm-mounts-unknown", "vmPools[0].mountContainers", ["nope"], "vmPools[0].mountContainers"),
    ("vm-pool-cpu-size", "vmPools[0].vmSize", "Standard_D8s_v5", "vmPools[0].vmSize"),
    ("vm-autoscale-flaps", "vmPools[0].autoscale", {"scaleInCpuPercent": 80},
     "vmPools[0].autoscale"),
    ("vm-and-cpu-set-same-name", "vmPools[0].name", "ingest", "vmPools"),
    ("cpu-scale-set-gpu-size", "cpuScaleSets[0].vmSize", "Standard_NC4as_T4_v3",
     "cpuScaleSets[0].vmSize"),
    ("cpu-scale-set-admin-root", "cpuScaleSets[0].adminUsername", "root",
     "cpuScaleSets[0].adminUsername"),
    # --- registry, inference, training storage
    ("geo-replica-same-region", "registry.geoReplicaLocation", "eastus",
     "registry.geoReplicaLocation"),
    ("geo-replica-nowhere", "registry.geoReplicaLocation", "nowhere",
     "registry.geoReplicaLocation"),
    ("registry-retention-400", "registry.untaggedRetentionDays", 400,
     "registry.untaggedRetentionDays"),
    ("apim-sku-basic", "inference.apimSku", "Basic", "inference.apimSku"),
    ("apim-units-99", "inference.apimUnits", 99, "inference"),
    ("apim-subnet-missing", "inference.apimSubnet", DELETE, "inference.apimSubnet"),
    ("apim-subnet-overlaps", "inference.apimSubnet", "10.42.0.0/27", "inference.apimSubnet"),
    ("apim-subnet-too-small", "inference.apimSubnet", "10.42.10.0/30", "inference.apimSubnet"),
    ("sample-pool-unknown", "inference.sampleGpuPool", "nope", "inference.sampleGpuPool"),
    ("consumers-repeat", "inference.consumers[1].name", "default", "inference"),
    ("consumer-window-too-long", "inference.consumers[0].renewalPeriodSeconds", 10**9,
     "inference.consumers[0]"),
    ("ingress-ip-bad", "inference.ingressIp", "999.1.1.1", "inference"),
    ("apim-external-in-prod", "inference.apimVirtualNetwork", "External", "inference"),
    ("publisher-email-bad", "inference.publisherEmail", "nope", "inference.publisherEmail"),
    ("lustre-capacity-7", "trainingStorage", {"enabled": True, "capacityTib": 7,
                                              "subnet": "10.42.12.0/24"}, "trainingStorage"),
    ("lustre-without-subnet", "trainingStorage", {"enabled": True}, "trainingStorage.subnet"),
    ("lustre-hsm", "trainingStorage.hsm", True, "trainingStorage"),
    ("lustre-sku-unknown", "trainingStorage.sku", "X", "trainingStorage.sku"),
    # --- monitoring and budget
    ("log-retention-10", "monitoring.logRetentionDays", 10, "monitoring.logRetentionDays"),
    ("alert-email-bad", "monitoring.alertEmails", ["not-an-email"], "monitoring.alertEmails[0]"),
    ("alert-receivers-collide", "monitoring.alertEmails", ["a.b@x.com", "a-b@x.com"],
     "monitoring.alertEmails"),
    ("alert-webhook-http", "monitoring.alertWebhooks", ["http://x"],
     "monitoring.alertWebhooks[0]"),
    ("gpu-idle-0-percent", "monitoring.gpuIdlePercent", 0, "monitoring.gpuIdlePercent"),
    ("cache-path-relative", "monitoring.cacheMountPaths", ["mnt"],
     "monitoring.cacheMountPaths[0]"),
    ("log-ingestion-infinite", "monitoring.estimatedLogIngestionGbPerDay", float("inf"),
     "monitoring.estimatedLogIngestionGbPerDay"),
    ("monitoring-unknown-key", "monitoring.logRetentionDayz", 30, "monitoring.logRetentionDayz"),
    ("budget-infinite", "budget.monthlyAmountUsd", float("inf"), "budget.monthlyAmountUsd"),
    ("budget-1e400", "budget.monthlyAmountUsd", 1e400, "budget.monthlyAmountUsd"),
    ("budget-nan", "budget.monthlyAmountUsd", float("nan"), "budget.monthlyAmountUsd"),
    ("budget-text", "budget.monthlyAmountUsd", "lots", "budget.monthlyAmountUsd"),
    ("budget-zero", "budget.monthlyAmountUsd", 0, "budget.monthlyAmountUsd"),
    ("budget-percents-repeat", "budget.actualAlertPercents", [50, 50], "budget"),
    ("budget-percents-empty", "budget.actualAlertPercents", [], "budget.actualAlertPercents"),
    ("budget-forecast-0", "budget.forecastAlertPercent", 0, "budget.forecastAlertPercent"),
    ("budget-start-mid-month", "budget.startDate", "2026-12-15", "budget.startDate"),
    ("budget-start-too-early", "budget.startDate", "2001-01-01", "budget"),
]


def _config_problem(raw: dict[str, Any]) -> str:
    values = {PREFIX + key: value for key, value in raw.items()}
    with pytest.raises(ConfigError) as caught:
        validate_stack_values(values, "Pulumi.prod.yaml")
    return str(caught.value)


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [pytest.param(path, value, named, id=case) for case, path, value, named in CONFIG_CASES],
)
def test_bad_stack_value_is_one_config_error_naming_the_key(
    path: str, value: Any, named: str
) -> None:
    raw = prod_values()
    _set(raw, path, value if value is DELETE else copy.deepcopy(value))
    message = _config_problem(raw)
    assert message.startswith("Invalid configuration in Pulumi.prod.yaml"), message
    assert f"{PREFIX}{named}" in message, message
    assert "Traceback" not in message


def test_config_error_is_exit_2_through_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the table above raises reaches the user as exit 2 with an `error:` paragraph."""

    def fail(*_: Any, **__: Any) -> Any:
        raise ConfigError("Pulumi.dev.yaml", [f"{PREFIX}location: bad"])

    monkeypatch.setattr(cli, "run_plan", fail)
    with pytest.raises(PlanFailed) as caught:
        plan_stack(ROOT, "dev", preview=False)
    assert str(caught.value).startswith("error: Invalid configuration in Pulumi.dev.yaml")


def test_problems_in_several_sections_are_all_reported() -> None:
    raw = prod_values()
    _set(raw, "budget.monthlyAmountUsd", -1)  # field-level, in a required section
    _set(raw, "network.allowOperatorIps", ["20.30.40.50"])  # cross-field: dev only
    _set(raw, "vault.softDeleteRetentionDays", 30)  # cross-field: prod keeps 90
    _set(raw, "registry.geoReplicaLocation", "eastus")  # cross-field: the stack's own region
    message = _config_problem(raw)
    assert "(4 problems)" in message, message
    for key in ("budget.monthlyAmountUsd", "network.allowOperatorIps",
                "vault.softDeleteRetentionDays", "registry.geoReplicaLocation"):  # fmt: skip
        assert f"{PREFIX}{key}" in message


def test_secret_values_stand_where_a_secret_may_and_stay_marked_secret() -> None:
    """Offline, a `secure:` value is a placeholder: fields that may hold a secret take it."""
    raw = prod_values()
    _set(raw, "vmPools[0].sshPublicKey", "c2VjcmV0LXBsYWNlaG9sZGVyLW5vdC1hLWtleQ==")
    _set(raw, "monitoring.alertWebhooks", ["placeholder"])
    _set(raw, "aks.adminGroupObjectIds", ["c2VjcmV0"])
    values = {PREFIX + k: v for k, v in raw.items()}
    secret = [f"{PREFIX}vmPools", f"{PREFIX}monitoring", f"{PREFIX}aks"]
    config = validate_stack_values(values, "Pulumi.prod.yaml", secret_keys=secret)
    assert isinstance(config.vm_pools[0].ssh_public_key, SecretText)
    assert isinstance(config.monitoring.alert_webhooks[0], SecretText)
    assert config.aks is not None and isinstance(config.aks.admin_group_object_ids[0], SecretText)
    # Not secret, the same text is checked as what it claims to be.
    with pytest.raises(ConfigError, match=r"vmPools\[0\]\.sshPublicKey"):
        validate_stack_values(values, "Pulumi.prod.yaml")


# --- stack files: what `load_project` reads before the program runs --------------------------

GOOD_STACK = (ROOT / "Pulumi.dev.yaml").read_text()

# (case id, stack file content, text the message must name)
STACK_FILE_CASES: list[tuple[str, str | bytes, str]] = [
    ("config-a-list", "config:\n  - a\n  - b\n", "`config:` must be a mapping"),
    ("config-a-string", "config: hello\n", "`config:` must be a mapping"),
    ("config-a-number", "config: 3\n", "`config:` must be a mapping"),
    ("binary-file", bytes(range(256)) * 4, "not a text file"),
    ("not-yaml", "config: [unclosed\n", "not valid YAML"),
    ("top-level-list", "- config\n", "expected a mapping at the top level"),
    ("duplicate-key", GOOD_STACK.replace(
        "  azure-gpu-stacks:location: eastus\n",
        "  azure-gpu-stacks:location: eastus\n  azure-gpu-stacks:location: westus2\n"),
     "azure-gpu-stacks:location' is given twice"),
    ("duplicate-nested-key", GOOD_STACK.replace(
        "    logRetentionDays: 30\n", "    logRetentionDays: 30\n    logRetentionDays: 90\n"),
     "'logRetentionDays' is given twice"),
    ("config-key-not-text", "config:\n  1: x\n", "keys must be text"),
]


def _stack_problem(tmp_path: Path, content: str | bytes, stack: str = "bad") -> str:
    (tmp_path / "Pulumi.yaml").write_text(
        f"name: {PROJECT}\nruntime: python\nmain: {ROOT}\n", encoding="utf-8"
    )
    stack_file = tmp_path / f"Pulumi.{stack}.yaml"
    if isinstance(content, bytes):
        stack_file.write_bytes(content)
    else:
        stack_file.write_text(content, encoding="utf-8")
    try:
        project = load_project(tmp_path, stack)
        validate_stack_values(project.config, project.stack_file.name)
    except (ProjectError, ConfigError) as error:
        return str(error)
    raise AssertionError("the stack file was accepted")


@pytest.mark.parametrize(
    ("content", "named"),
    [pytest.param(content, named, id=case) for case, content, named in STACK_FILE_CASES],
)
def test_bad_stack_file_is_refused_naming_the_file(
    tmp_path: Path, content: str | bytes, named: str
) -> None:
    message = _stack_problem(tmp_path, content)
    assert "Pulumi.bad.yaml" in message, message
    assert named in message, message
    assert "Traceback" not in message


NAMESPACE_CASES = [
    ("namespace-missing-s", "azure-gpu-stack:vault"),
    ("namespace-capitals", "Azure-GPU-Stacks:vault"),
    ("namespace-underscores", "azure_gpu_stacks:vault"),
    ("namespace-foreign-with-our-key", "myproject:budget"),
]


@pytest.mark.parametrize("key", [pytest.param(k, id=c) for c, k in NAMESPACE_CASES])
def test_near_miss_namespace_is_named_not_ignored(tmp_path: Path, key: str) -> None:
    content = GOOD_STACK + f"  {key}:\n    softDeleteRetentionDays: 7\n"
    message = _stack_problem(tmp_path, content)
    assert key in message and f"write {PROJECT}:" in message, message


def test_provider_namespaces_are_left_alone(tmp_path: Path) -> None:
    content = GOOD_STACK + "  azure-native:location: eastus\n  kubernetes:context: x\n"
    (tmp_path / "Pulumi.yaml").write_text(f"name: {PROJECT}\nruntime: python\nmain: {ROOT}\n")
    (tmp_path / "Pulumi.ok.yaml").write_text(content)
    project = load_project(tmp_path, "ok")
    assert validate_stack_values(project.config, "Pulumi.ok.yaml").location == "eastus"


# --- command-line arguments: checked by `cli.main` before any planning -----------------------

NOT_UTF8 = bytes(range(128, 256))
QUOTA_ROW = {"name": {"value": "cores", "localizedValue": "Total Regional vCPUs"}}


def _json(value: Any) -> str:
    return json.dumps(value)


# (case id, files to write {name: content}, arguments, text the message must name)
CLI_CASES: list[tuple[str, dict[str, str | bytes], list[str], str]] = [
    ("out-is-a-directory", {"d/keep": ""}, ["plan", "--out", "{d}"], "--out"),
    ("out-under-a-file", {"f": ""}, ["plan", "--out", "{f}/plan.md"], "is a file"),
    ("out-on-read-only-fs", {}, ["plan", "--out", "/proc/plan.md"], "--out /proc/plan.md"),
    ("policy-config-list", {"p.json": "[1, 2]"}, ["plan", "--policy-config", "{p.json}"],
     "--policy-config"),
    ("policy-config-string", {"p.json": '"mandatory"'}, ["plan", "--policy-config", "{p.json}"],
     "--policy-config"),
    ("policy-config-binary", {"p.json": NOT_UTF8}, ["plan", "--policy-config", "{p.json}"],
     "--policy-config"),
    ("policy-config-missing", {}, ["plan", "--policy-config", "{nope.json}"], "--policy-config"),
    ("policy-config-directory", {"d/keep": ""}, ["plan", "--policy-config", "{d}"],
     "--policy-config"),
    ("policy-config-not-json", {"p.json": "{maxGpus: 8"}, ["plan", "--policy-config", "{p.json}"],
     "--policy-config"),
    ("policy-config-nan", {"p.json": '{"x": NaN}'}, ["plan", "--policy-config", "{p.json}"],
     "--policy-config"),
    ("quota-binary", {"q.json": NOT_UTF8}, ["plan", "--quota-from", "{q.json}"], "--quota-from"),
    ("quota-1e400", {"q.json": '[{"name": {"value": "cores"}, "currentValue": 1e400, '
                               '"limit": 10}]'},
     ["plan", "--quota-from", "{q.json}"], "currentValue"),
    ("quota-negative-limit", {"q.json": _json([{**QUOTA_ROW, "currentValue": 0, "limit": -5}])},
     ["plan", "--quota-from", "{q.json}"], "limit"),
    ("quota-fractional", {"q.json": _json([{**QUOTA_ROW, "currentValue": 1.5, "limit": 8}])},
     ["plan", "--quota-from", "{q.json}"], "currentValue"),
    ("quota-boolean", {"q.json": _json([{**QUOTA_ROW, "currentValue": 0, "limit": True}])},
     ["plan", "--quota-from", "{q.json}"], "limit"),
    ("quota-text-count", {"q.json": _json([{**QUOTA_ROW, "currentValue": "x", "limit": 8}])},
     ["plan", "--quota-from", "{q.json}"], "currentValue"),
    ("quota-infinity-literal", {"q.json": '[{"name": {"value": "cores"}, "currentValue": 0, '
                                          '"limit": Infinity}]'},
     ["plan", "--quota-from", "{q.json}"], "--quota-from"),
    ("quota-no-name", {"q.json": _json([{"currentValue": 0, "limit": 8}])},
     ["plan", "--quota-from", "{q.json}"], "name.value"),
    ("quota-not-a-list", {"q.json": _json({"value": []})}, ["plan", "--quota-from", "{q.json}"],
     "expected a JSON list"),
    ("quota-missing", {}, ["plan", "--quota-from", "{nope.json}"], "--quota-from"),
    ("quota-directory", {"d/keep": ""}, ["plan", "--quota-from", "{d}"], "--quota-from"),
    ("quota-region-nowhere", {}, ["plan", "--quota-region", "nowhere"], "--quota-region"),
    ("quota-region-display-name", {}, ["plan", "--quota-region", "East US 2"], "--quota-region"),
    ("stack-name-path", {}, ["plan", "--stack", "../dev"], "--stack"),
    ("stack-name-empty", {}, ["plan", "--stack", ""], "--stack"),
    ("stack-name-qualified", {}, ["plan", "--stack", "acme/gpu/dev"], "--stack"),
    ("policy-pack-missing", {}, ["plan", "--policy-pack", "{nope}"], "--policy-pack"),
    ("policy-pack-not-a-pack", {"d/keep": ""}, ["plan", "--policy-pack", "{d}"],
     "PulumiPolicy.yaml"),
    ("diff-binary", {"a.json": NOT_UTF8, "b.json": "{}"}, ["diff", "{a.json}", "{b.json}"],
     "a.json"),
    ("diff-resource-without-type",
     {"a.json": _json({"resources": [{"urn": "u", "name": "n"}]}), "b.json": "{}"},
     ["diff", "{a.json}", "{b.json}"], "resources[0].type"),
    ("diff-resource-not-object", {"a.json": _json({"resources": [3]}), "b.json": "{}"},
     ["diff", "{a.json}", "{b.json}"], "resources[0]"),
    ("diff-inputs-not-object",
     {"a.json": _json({"resources": [{"urn": "u", "type": "t", "name": "n", "inputs": []}]}),
      "b.json": "{}"}, ["diff", "{a.json}", "{b.json}"], "resources[0].inputs"),
    ("diff-cost-line-without-figures",
     {"a.json": _json({"resources": [], "cost": {"lines": [{"urn": "u"}]}}), "b.json": "{}"},
     ["diff", "{a.json}", "{b.json}"], "cost.lines[0]"),
    ("diff-not-a-plan", {"a.json": "[]", "b.json": "{}"}, ["diff", "{a.json}", "{b.json}"],
     "not a plan document"),
    ("diff-not-json", {"a.json": "{", "b.json": "{}"}, ["diff", "{a.json}", "{b.json}"],
     "a.json is not JSON"),
    ("diff-missing", {"b.json": "{}"}, ["diff", "{a.json}", "{b.json}"], "a.json"),
    ("diff-directory", {"d/keep": "", "b.json": "{}"}, ["diff", "{d}", "{b.json}"], "directory"),
    ("diff-head-bad", {"a.json": _json({"resources": []}), "b.json": NOT_UTF8},
     ["diff", "{a.json}", "{b.json}"], "b.json"),
    ("diff-out-directory", {"a.json": _json({"resources": []}), "d/keep": ""},
     ["diff", "{a.json}", "{a.json}", "--out", "{d}"], "--out"),
]


def _materialize(tmp_path: Path, files: dict[str, str | bytes], argv: list[str]) -> list[str]:
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return [re.sub(r"\{([^}]+)\}", lambda m: str(tmp_path / m.group(1)), arg) for arg in argv]


@pytest.mark.parametrize(
    ("files", "argv", "named"),
    [pytest.param(files, argv, named, id=case) for case, files, argv, named in CLI_CASES],
)
def test_bad_argument_exits_2_before_planning(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str | bytes],
    argv: list[str],
    named: str,
) -> None:
    def must_not_plan(*_: Any, **__: Any) -> Any:
        raise AssertionError("planning started before the arguments were checked")

    monkeypatch.setattr(cli, "run_plan", must_not_plan)
    code = cli.main(_materialize(tmp_path, files, argv))
    err = capsys.readouterr().err
    assert code == EXIT_ERROR, err
    assert err.startswith("error: "), err
    assert named in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["plan", "--format", "yaml"], id="unknown-format"),
        pytest.param(["planz"], id="unknown-command"),
        pytest.param(["plan", "--stack"], id="option-without-value"),
        pytest.param(["diff", "only-one.json"], id="diff-one-file"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: gpustack") and "--help" in err, err
    assert len(err.strip().splitlines()) == 1


def test_unexpected_exception_is_an_internal_error_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "plan_stack", broken)
    monkeypatch.delenv("GPUSTACK_DEBUG", raising=False)
    assert cli.main(["plan"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: internal error") and "GPUSTACK_DEBUG=1" in err
    assert "Traceback" not in err

    monkeypatch.setenv("GPUSTACK_DEBUG", "1")
    assert cli.main(["plan"]) == EXIT_ERROR
    assert "Traceback" in capsys.readouterr().err


def test_sys_exit_inside_a_command_is_not_a_verdict(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def exits(*_: Any, **__: Any) -> Any:
        raise SystemExit(1)

    monkeypatch.setattr(cli, "plan_stack", exits)
    assert cli.main(["plan"]) == EXIT_ERROR
    assert "sys.exit(1)" in capsys.readouterr().err


# --- programs: what a Pulumi program (or its project file) can do wrong -----------------------

# (case id, Pulumi.yaml, __main__.py or None, text the message must name)
PROGRAM_CASES: list[tuple[str, str, str | None, str]] = [
    ("program-raises", "name: p\nruntime: python\n", 'raise ValueError("bad thing")\n',
     "__main__.py:1"),
    ("program-syntax-error", "name: p\nruntime: python\n", "def f(:\n    pass\n",
     "SyntaxError"),
    ("program-missing-import", "name: p\nruntime: python\n", "import no_such_module_xyz\n",
     "no_such_module_xyz"),
    ("program-calls-sys-exit", "name: p\nruntime: python\n", "import sys\nsys.exit(1)\n",
     "sys.exit(1)"),
    ("program-interrupted", "name: p\nruntime: python\n", "raise KeyboardInterrupt\n",
     "interrupted"),
    ("project-without-name", "runtime: python\n", "", "`name` is required"),
    ("project-runtime-go", "name: p\nruntime: go\n", "", "runtime is 'go'"),
    ("project-without-entry-point", "name: p\nruntime: python\n", None, "entry point"),
    ("project-file-binary", "\udcff", "", "Pulumi.yaml"),
]


@pytest.mark.parametrize(
    ("project", "main", "named"),
    [pytest.param(p, m, n, id=case) for case, p, m, n in PROGRAM_CASES],
)
def test_bad_program_exits_2_naming_what_failed(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    project: str,
    main: str | None,
    named: str,
) -> None:
    (tmp_path / "Pulumi.yaml").write_bytes(project.encode("utf-8", "surrogateescape"))
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    if main is not None:
        (tmp_path / "__main__.py").write_text(main)
    code = cli.main(["plan", "--program", str(tmp_path), "--no-policy"])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR, err
    assert err.startswith("error: "), err
    assert named in err, err
    assert "Traceback" not in err


# (case id, __main__.py, extra file name, its text, where the message must point)
PROGRAM_LOCATION_CASES: list[tuple[str, str, str, str, str]] = [
    # Before: "at <frozen runpy>:259", runpy's frame resolved against the program's directory.
    ("syntax-error", "import pulumi\nsizes = [1, 2\n", "", "",
     "at __main__.py:2\n    sizes = [1, 2"),
    ("syntax-error-in-imported-module", "import helper\n", "helper.py", "def f(:\n    pass\n",
     "at helper.py:1\n    def f(:"),
    # Before: "raised outside the program's files": the SDK re-raises an input's failure as
    # its own ValueError (`While processing resource ...`), the lambda's frame on its cause.
    ("apply-error-in-a-resource-input",
     "import pulumi\nimport pulumi_random as random\n\n"
     "length = pulumi.Output.from_input('six').apply(lambda text: int(text))\n"
     "random.RandomString('s', length=length)\n", "", "",
     "at __main__.py:4\n    length = pulumi.Output.from_input('six')"),
]


@pytest.mark.parametrize(
    ("main", "extra", "extra_text", "where"),
    [pytest.param(m, e, t, w, id=case) for case, m, e, t, w in PROGRAM_LOCATION_CASES],
)
def test_a_program_error_names_the_programs_file_and_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    main: str,
    extra: str,
    extra_text: str,
    where: str,
) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: p\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "__main__.py").write_text(main)
    if extra:
        (tmp_path / extra).write_text(extra_text)
    code = cli.main(["plan", "--program", str(tmp_path), "--no-policy"])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR, err
    assert where in err, err
    assert "raised outside the program's files" not in err and "<frozen" not in err, err


# --- a representative subset through real subprocesses ---------------------------------------


def gpustack(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpustack", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def test_subprocess_stack_file_with_list_config_exits_2(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text(f"name: {PROJECT}\nruntime: python\nmain: {ROOT}\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  - a\n")
    result = gpustack("plan", "--program", str(tmp_path), "--no-policy")
    assert result.returncode == EXIT_ERROR
    assert result.stderr.startswith("error: Pulumi.dev.yaml: `config:` must be a mapping")
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_subprocess_quota_file_checked_before_planning(tmp_path: Path) -> None:
    quota = tmp_path / "usage.json"
    quota.write_bytes(NOT_UTF8)
    result = gpustack("plan", "--quota-from", str(quota))
    assert result.returncode == EXIT_ERROR
    assert result.stderr.startswith(f"error: --quota-from: {quota}")
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_subprocess_diff_with_binary_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(NOT_UTF8)
    result = gpustack("diff", str(tmp_path / "a.json"), str(tmp_path / "a.json"))
    assert result.returncode == EXIT_ERROR
    assert "a.json is not a UTF-8 text file" in result.stderr
    assert "Traceback" not in result.stderr


def test_subprocess_closed_pipe_ends_quietly() -> None:
    result = subprocess.run(
        f"{sys.executable} -m gpustack.cli catalog | head -1",
        shell=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout.startswith("SIZE")
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr


def test_subprocess_quota_region_outside_the_plan_exits_2() -> None:
    usage = FIXTURES / "list_usage_eastus.json"
    result = gpustack(
        "plan", "--program", str(FIXTURES / "foreign_program"), "--no-policy",
        "--quota-from", str(usage), "--quota-region", "eastus",
    )  # fmt: skip
    assert result.returncode == EXIT_ERROR
    assert "--quota-region eastus" in result.stderr and "westus2" in result.stderr
    assert "Traceback" not in result.stderr


def test_subprocess_policy_config_key_no_rule_takes_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "policy.json"
    config.write_text(_json({"gpustack-gpu-total-ceiling": {"maxGpuz": 8}}))
    result = gpustack(
        "plan", "--program", str(FIXTURES / "foreign_program"), "--policy-config", str(config)
    )
    assert result.returncode == EXIT_ERROR
    assert "maxGpuz" in result.stderr and "maxGpus" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_case_table_is_large_enough() -> None:
    """The gate is only as good as its cases: keep the tables from quietly shrinking."""
    tables: list[list[Any]] = [
        CONFIG_CASES, STACK_FILE_CASES, NAMESPACE_CASES, CLI_CASES, PROGRAM_CASES
    ]  # fmt: skip
    total = sum(len(table) for table in tables)
    assert total >= 150, total
    ids = [case[0] for table in tables for case in table]
    assert len(ids) == len(set(ids))



def test_unpriced_region_is_warned_about_on_stderr_and_in_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A VM in a region the price snapshot lacks is left out of the total, loudly."""
    (tmp_path / "Pulumi.yaml").write_text("name: westeu\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "__main__.py").write_text(
        "from pulumi_azure_native import compute\n"
        'compute.VirtualMachine("gpu", resource_group_name="rg", location="westeurope",\n'
        '    hardware_profile={"vm_size": "Standard_NC4as_T4_v3"})\n'
    )
    code = cli.main(["plan", "--program", str(tmp_path), "--no-policy", "-f", "markdown"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "warning: 1 resource(s) could not be priced" in captured.err
    assert "westeurope" in captured.err
    assert ":warning: 1 resource(s) could not be priced" in captured.out
    assert "1 resources unpriced (not in that total)" in captured.out


def test_quota_file_for_a_two_region_plan_needs_quota_region(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def vm(name: str, region: str) -> PlannedResource:
        return PlannedResource(
            urn=f"urn:pulumi:dev::p::azure-native:compute:VirtualMachine::{name}",
            type="azure-native:compute:VirtualMachine",
            name=name,
            parent=None,
            custom=True,
            inputs={"location": region, "hardwareProfile": {"vmSize": "Standard_NC4as_T4_v3"}},
            options={},
        )

    plan = Plan("p", "dev", tmp_path, False, [vm("a", "eastus"), vm("b", "westus2")], {}, {})
    monkeypatch.setattr(cli, "plan_stack", lambda *_, **__: plan)
    usage = tmp_path / "usage.json"
    usage.write_text(_json([{**QUOTA_ROW, "currentValue": 0, "limit": 100}]))
    code = cli.main(["plan", "--no-policy", "--quota-from", str(usage)])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR, err
    assert "--quota-region" in err and "eastus, westus2" in err
