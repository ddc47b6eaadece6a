"""GpuVmPool under the Azure mocks, its config rules, and the committed stacks' pool defaults."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.conventions import BlobMountTarget, ComponentContext, IdentityRef
from components.gpu_pool import (
    AutoscaleRules,
    GpuVmPool,
    GpuVmPoolArgs,
    default_image,
    pool_capacity,
    uses_ephemeral_os_disk,
)
from gpustack import catalog, facts
from gpustack.engine import PlannedResource, capture
from gpustack.mocks import AzureMocks
from stacks.config import PROJECT, AutoscaleConfig, ConfigError, StackConfig, parse_config
from stacks.vm_pools import pool_args

ROOT = Path(__file__).resolve().parent.parent
POOL = facts.load("vm_pools")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICWWEKvBQHrRUG6uF5ZH8bPQTu/wiThy/6dSr1zezbrL test"
GROUP = "/subscriptions/s/resourceGroups/rg/providers"
SUBNET = f"{GROUP}/Microsoft.Network/virtualNetworks/v/subnets/gpu"
WORKSPACE = f"{GROUP}/Microsoft.OperationalInsights/workspaces/w"
GIVEN = IdentityRef(
    id=f"{GROUP}/Microsoft.ManagedIdentity/userAssignedIdentities/nodes",
    principal_id="00000000-0000-4000-8000-0000000000aa",
    client_id="00000000-0000-4000-8000-0000000000bb",
)
VMSS = "azure-native:compute:VirtualMachineScaleSet"
VM = "azure-native:compute:VirtualMachine"
NIC = "azure-native:network:NetworkInterface"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
AUTOSCALE = "azure-native:monitor:AutoscaleSetting"
EXTENSION = "azure-native:compute:VirtualMachineExtension"
PPG = "azure-native:compute:ProximityPlacementGroup"


def _identity_maps(value: Any) -> Any:
    """ARM's shape of identity.userAssignedIdentities: a map of id -> {principalId, clientId}."""
    if isinstance(value, list):
        return [_identity_maps(item) for item in value]
    if not isinstance(value, dict):
        return value
    reshaped = {key: _identity_maps(item) for key, item in value.items()}
    ids = reshaped.get("userAssignedIdentities")
    if isinstance(ids, list):
        reshaped["userAssignedIdentities"] = {i: {"principalId": "p", "clientId": "c"} for i in ids}
    return reshaped


@pytest.fixture(scope="module")
def planned() -> list[PlannedResource]:
    """Four pools declared once: IB training, spot T4 inference, an A100 VM, a fixed scale set."""
    # The engine's mocks echo identity.userAssignedIdentities as the input list, which
    # azure-native's output types reject (reported with a patch for gpustack/mocks.py). Answer
    # ARM's map here; once the engine does, this wrapper changes nothing.
    original = AzureMocks._azure

    def _azure(self: AzureMocks, args: Any, urn: str) -> tuple[str, dict[str, Any]]:
        resource_id, state = original(self, args, urn)
        return resource_id, _identity_maps(state)

    context = ComponentContext("rg-test", "eastus", {"environment": "test"}, WORKSPACE)

    def declare() -> None:
        GpuVmPool(
            "ibtrain",
            GpuVmPoolArgs(
                context=context,
                vm_size="Standard_ND96isr_H100_v5",
                subnet_id=SUBNET,
                ssh_public_key=KEY,
                identity=GIVEN,
                storage=BlobMountTarget("stmodels", ["models", "datasets"], GIVEN),
                min_count=0,
                max_count=4,
                initial_count=2,
                proximity_placement_group=True,
            ),
        )
        GpuVmPool(
            "t4spot",
            GpuVmPoolArgs(
                context=context,
                vm_size="Standard_NC4as_T4_v3",
                subnet_id=SUBNET,
                ssh_public_key=KEY,
                storage=BlobMountTarget("stmodels", ["models"]),
                purpose="inference",
                max_count=3,
                spot=True,
            ),
        )
        GpuVmPool(
            "a100box",
            GpuVmPoolArgs(
                context=context,
                vm_size="Standard_NC24ads_A100_v4",
                subnet_id=SUBNET,
                ssh_public_key=KEY,
                kind="vm",
                purpose="development",
                min_count=1,
                max_count=1,
            ),
        )
        GpuVmPool(
            "fixed",
            GpuVmPoolArgs(
                context=context,
                vm_size="Standard_NC8as_T4_v3",
                subnet_id=SUBNET,
                ssh_public_key=KEY,
                min_count=2,
                max_count=2,
                autoscale=None,
            ),
        )

    AzureMocks._azure = _azure  # type: ignore[method-assign]
    try:
        return capture(declare)
    finally:
        AzureMocks._azure = original  # type: ignore[method-assign]


def of(planned: list[PlannedResource], token: str, pool: str) -> list[PlannedResource]:
    return [r for r in planned if r.type == token and r.name.startswith(f"{pool}-")]


def one(planned: list[PlannedResource], token: str, pool: str) -> PlannedResource:
    found = of(planned, token, pool)
    assert len(found) == 1, f"{pool}: {[r.name for r in found]}"
    return found[0]


def bootstrap(custom_data: str) -> dict[str, Any]:
    document = yaml.safe_load(base64.b64decode(custom_data))
    return {entry["path"]: entry["content"] for entry in document["write_files"]}


def has_key(value: Any, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(has_key(item, key) for item in value.values())
    if isinstance(value, list):
        return any(has_key(item, key) for item in value)
    return False


# --- InfiniBand, images, network ---------------------------------------------------------------


def test_infiniband_sizes_get_the_hpc_image_one_placement_group_and_no_public_ip(
    planned: list[PlannedResource],
) -> None:
    scale_set = one(planned, VMSS, "ibtrain").inputs
    hpc = POOL["images"]["hpc"]
    image = scale_set["virtualMachineProfile"]["storageProfile"]["imageReference"]
    assert (image["publisher"], image["offer"], image["sku"]) == (
        hpc["publisher"],
        hpc["offer"],
        hpc["sku"],
    )
    assert scale_set["singlePlacementGroup"] is True
    assert scale_set["orchestrationMode"] == "Uniform"
    assert not has_key(scale_set, "publicIPAddressConfiguration")
    # The HPC image carries the GPU driver: no driver extension on top.
    assert "extensionProfile" not in scale_set["virtualMachineProfile"]


def test_other_sizes_get_ubuntu_gen2_with_the_nvidia_driver_extension(
    planned: list[PlannedResource],
) -> None:
    scale_set = one(planned, VMSS, "t4spot").inputs
    profile = scale_set["virtualMachineProfile"]
    assert profile["storageProfile"]["imageReference"]["sku"] == POOL["images"]["ubuntu"]["sku"]
    assert profile["storageProfile"]["imageReference"]["sku"].endswith("gen2")
    (extension,) = profile["extensionProfile"]["extensions"]
    driver = POOL["nvidia_driver_extension"]
    assert (extension["publisher"], extension["type"]) == ("Microsoft.HpcCompute", driver["type"])
    assert extension["typeHandlerVersion"] == driver["type_handler_version"]
    # Several placement groups: room past 100 VMs and more places to find capacity.
    assert scale_set["singlePlacementGroup"] is False
    vm_extension = one(planned, EXTENSION, "a100box").inputs
    assert vm_extension["type"] == "NvidiaGpuDriverLinux"


def test_every_nic_has_accelerated_networking_and_only_a_private_address(
    planned: list[PlannedResource],
) -> None:
    nic = one(planned, NIC, "a100box").inputs
    assert nic["enableAcceleratedNetworking"] is True
    (ip_configuration,) = nic["ipConfigurations"]
    assert ip_configuration["subnet"]["id"] == SUBNET
    assert "publicIPAddress" not in ip_configuration
    for scale_set in [r for r in planned if r.type == VMSS]:
        network = scale_set.inputs["virtualMachineProfile"]["networkProfile"]
        for configuration in network["networkInterfaceConfigurations"]:
            assert configuration["enableAcceleratedNetworking"] is True
            for ip in configuration["ipConfigurations"]:
                assert ip["subnet"]["id"] == SUBNET
                assert "publicIPAddressConfiguration" not in ip
    assert not [r for r in planned if r.type == "azure-native:network:PublicIPAddress"]


def test_ssh_keys_only(planned: list[PlannedResource]) -> None:
    profiles = [r.inputs["virtualMachineProfile"]["osProfile"] for r in planned if r.type == VMSS]
    profiles += [r.inputs["osProfile"] for r in planned if r.type == VM]
    for profile in profiles:
        linux = profile["linuxConfiguration"]
        assert linux["disablePasswordAuthentication"] is True
        assert linux["ssh"]["publicKeys"][0]["keyData"] == KEY
        assert "adminPassword" not in profile


def test_proximity_placement_group_when_asked(planned: list[PlannedResource]) -> None:
    group = one(planned, PPG, "ibtrain")
    assert one(planned, VMSS, "ibtrain").inputs["proximityPlacementGroup"]["id"] == group.id
    assert not of(planned, PPG, "t4spot")


# --- spot, disks, encryption -------------------------------------------------------------------


def test_spot_pools_are_spot_delete_and_never_evicted_for_price(
    planned: list[PlannedResource],
) -> None:
    spot = one(planned, VMSS, "t4spot").inputs["virtualMachineProfile"]
    assert spot["priority"] == "Spot"
    assert spot["evictionPolicy"] == "Delete"
    assert spot["billingProfile"]["maxPrice"] == -1
    regular = one(planned, VMSS, "ibtrain").inputs["virtualMachineProfile"]
    assert regular["priority"] == "Regular"
    assert "evictionPolicy" not in regular and "billingProfile" not in regular


def test_encryption_at_host_follows_the_catalog(planned: list[PlannedResource]) -> None:
    checked = 0
    for resource in planned:
        if resource.type == VMSS:
            size = catalog.lookup(resource.inputs["sku"]["name"])
            security = resource.inputs["virtualMachineProfile"].get("securityProfile", {})
        elif resource.type == VM:
            size = catalog.lookup(resource.inputs["hardwareProfile"]["vmSize"])
            security = resource.inputs.get("securityProfile", {})
        else:
            continue
        assert security.get("encryptionAtHost", False) is size.encryption_at_host, resource.name
        checked += 1
    assert checked == 4


def test_ephemeral_os_disk_where_the_size_has_room_else_premium_ssd(
    planned: list[PlannedResource],
) -> None:
    # NC4as_T4_v3 keeps a 128 GiB OS disk on its temp disk; NC24ads_A100_v4's is too small.
    ephemeral = one(planned, VMSS, "t4spot").inputs["virtualMachineProfile"]["storageProfile"]
    disk = ephemeral["osDisk"]
    assert disk["diffDiskSettings"] == {"option": "Local", "placement": "ResourceDisk"}
    assert disk["caching"] == "ReadOnly"
    assert "managedDisk" not in disk
    managed = one(planned, VM, "a100box").inputs["storageProfile"]["osDisk"]
    assert "diffDiskSettings" not in managed
    assert managed["managedDisk"]["storageAccountType"] == "Premium_LRS"
    assert managed["caching"] == "ReadWrite"


def test_ephemeral_decision_follows_the_catalog_for_every_gpu_size() -> None:
    for size in catalog.all_sizes():
        if not size.is_gpu:
            continue
        assert uses_ephemeral_os_disk(size, 128) is (size.max_ephemeral_os_disk_gib >= 128)
        assert uses_ephemeral_os_disk(size, 128, wanted=False) is False


def test_the_bootstrap_cache_accounts_for_the_ephemeral_os_disk(
    planned: list[PlannedResource],
) -> None:
    profile = one(planned, VMSS, "t4spot").inputs["virtualMachineProfile"]
    written = bootstrap(profile["osProfile"]["customData"])
    block = yaml.safe_load(written["/etc/gpustack/blobfuse2/models.yaml"])["block_cache"]
    size = catalog.lookup("Standard_NC4as_T4_v3")
    assert block["disk-size-mb"] < (size.temp_disk_gib - 128) * 1024


# --- identity --------------------------------------------------------------------------------


def test_a_given_identity_is_used_and_none_creates_one_for_the_pool(
    planned: list[PlannedResource],
) -> None:
    given = one(planned, VMSS, "ibtrain").inputs
    assert not of(planned, IDENTITY, "ibtrain")
    assert given["identity"]["type"] == "UserAssigned"
    assert given["identity"]["userAssignedIdentities"] == [GIVEN.id]
    written = bootstrap(given["virtualMachineProfile"]["osProfile"]["customData"])
    config = yaml.safe_load(written["/etc/gpustack/blobfuse2/models.yaml"])
    assert config["azstorage"]["appid"] == GIVEN.client_id

    own = one(planned, IDENTITY, "t4spot")
    created = one(planned, VMSS, "t4spot").inputs
    assert created["identity"]["userAssignedIdentities"] == [own.id]
    written = bootstrap(created["virtualMachineProfile"]["osProfile"]["customData"])
    config = yaml.safe_load(written["/etc/gpustack/blobfuse2/models.yaml"])
    assert config["azstorage"]["appid"] == own.outputs["clientId"]


# --- autoscale and capacity --------------------------------------------------------------------


def test_autoscale_scales_between_min_zero_and_max_on_cpu(planned: list[PlannedResource]) -> None:
    scale_set = one(planned, VMSS, "ibtrain")
    setting = one(planned, AUTOSCALE, "ibtrain").inputs
    assert setting["targetResourceUri"] == scale_set.id
    (profile,) = setting["profiles"]
    # Default = min: a pool at 0 emits no metrics, and a higher default would scale it back up.
    assert profile["capacity"] == {"minimum": "0", "maximum": "4", "default": "0"}
    out, back_in = profile["rules"]
    rules = AutoscaleRules()
    assert out["metricTrigger"]["metricName"] == POOL["autoscale"]["metric_name"]
    assert out["metricTrigger"]["operator"] == "GreaterThan"
    assert out["metricTrigger"]["threshold"] == rules.scale_out_cpu_percent
    assert out["scaleAction"]["direction"] == "Increase"
    assert back_in["metricTrigger"]["operator"] == "LessThan"
    assert back_in["metricTrigger"]["threshold"] == rules.scale_in_cpu_percent
    assert back_in["scaleAction"]["direction"] == "Decrease"
    # Deployed at the initial count; autoscale owns the count afterwards.
    assert scale_set.inputs["sku"]["capacity"] == 2
    assert scale_set.options["ignoreChanges"] == ["sku.capacity"]
    diagnostics = one(planned, "azure-native:monitor:DiagnosticSetting", "ibtrain")
    assert diagnostics.inputs["workspaceId"] == WORKSPACE


def test_without_autoscale_pulumi_keeps_the_instance_count(planned: list[PlannedResource]) -> None:
    assert not of(planned, AUTOSCALE, "fixed")
    scale_set = one(planned, VMSS, "fixed")
    assert scale_set.inputs["sku"]["capacity"] == 2
    assert scale_set.options["ignoreChanges"] == []


def test_capacity_counts_gpus_vram_and_vcpus_per_quota_family() -> None:
    size = catalog.lookup("Standard_ND96isr_H100_v5")
    capacity = pool_capacity(size, 0, 4, spot=False)
    assert capacity.minimum.gpus == 0 and capacity.maximum.gpus == 4 * size.gpu_count
    assert capacity.maximum.vram_gb == 4 * size.gpu_count * size.gpu_memory_gb
    assert capacity.vcpus_by_quota_family() == {
        size.quota_family: {"min": 0, "max": 4 * size.vcpus}
    }
    spot = pool_capacity(catalog.lookup("Standard_NC4as_T4_v3"), 1, 3, spot=True)
    # Spot VMs draw on the regional spot pool, not on the size's family quota.
    assert spot.quota_family == POOL["spot"]["quota_family"]
    assert spot.as_dict()["max"] == {"instances": 3, "gpus": 3, "vramGb": 48.0, "vcpus": 12}


def test_unknown_size_fails_clearly() -> None:
    with pytest.raises(catalog.UnknownVmSizeError) as caught:
        GpuVmPool(
            "bogus",
            GpuVmPoolArgs(
                context=ComponentContext("rg", "eastus"),
                vm_size="Standard_ND96isr_H100_v9",
                subnet_id=SUBNET,
                ssh_public_key=KEY,
            ),
        )
    message = str(caught.value)
    assert "Standard_ND96isr_H100_v9" in message and "Standard_ND96isr_H100_v5" in message


def test_default_image_is_gen2_and_hpc_exactly_for_infiniband_sizes() -> None:
    for size in catalog.all_sizes():
        if size.is_gpu and size.architecture == "x64":
            image = default_image(size)
            assert (image.offer == "ubuntu-hpc") is size.has_infiniband, size.name
            assert image.gpu_driver_preinstalled is size.has_infiniband
            # The ROCm flavour of the HPC image exactly on AMD InfiniBand sizes.
            assert ("rocm" in image.sku) is (size.has_infiniband and size.gpu_vendor == "AMD")


def test_arm64_size_has_no_default_image() -> None:
    gb200 = catalog.lookup("Standard_ND128isr_NDR_GB200_v6")
    with pytest.raises(ValueError, match="Arm64"):
        default_image(gb200)


# --- config ------------------------------------------------------------------------------------


def stack_values(stack: str) -> dict[str, Any]:
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {key[len(PROJECT) + 1 :]: value for key, value in config.items()}


def with_pool(**pool: Any) -> dict[str, Any]:
    """The committed dev config with one vmPools entry (valid apart from what `pool` sets)."""
    values = copy.deepcopy(stack_values("dev"))
    values["vmPools"] = [{"name": "pool", "vmSize": "Standard_NC4as_T4_v3", "sshPublicKey": KEY}]
    values["vmPools"][0].update(pool)
    return values


def problems(values: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(values, "Pulumi.test.yaml")
    return caught.value.problems


def test_101_infiniband_instances_are_rejected_naming_both_limits() -> None:
    (problem,) = problems(with_pool(vmSize="Standard_ND96isr_H100_v5", maxCount=101))
    assert problem.startswith(f"{PROJECT}:vmPools[0]")
    assert "101" in problem and "100" in problem and "300" in problem
    assert "support request" in problem
    parse_config(with_pool(vmSize="Standard_ND96isr_H100_v5", maxCount=100), "Pulumi.test.yaml")
    parse_config(with_pool(vmSize="Standard_NC4as_T4_v3", maxCount=101), "Pulumi.test.yaml")


@pytest.mark.parametrize(
    ("pool", "expected"),
    [
        ({"name": "a-scale-set-name-longer-than-a-dns-label"}, "vmPools[0].name"),
        ({"kind": "vm", "minCount": 0, "maxCount": 1}, "minCount: 1 and maxCount: 1"),
        ({"autoscale": {"scaleInCpuPercent": 70, "scaleOutCpuPercent": 70}}, "flaps"),
        ({"autoscale": {"windowMinutes": 1}}, "greater than or equal to 5"),
        ({"vmSize": "Standard_D4s_v5"}, "CPU size"),
        ({"vmSize": "Standard_NC4as_T4_v9"}, "unknown VM size"),
    ],
)
def test_bad_pools_are_config_errors(pool: dict[str, Any], expected: str) -> None:
    (problem,) = problems(with_pool(**pool))
    assert problem.startswith(f"{PROJECT}:vmPools[0]") and expected in problem


def test_training_pools_scale_in_only_when_nearly_idle() -> None:
    training = AutoscaleConfig.for_purpose("training")
    inference = AutoscaleConfig.for_purpose("inference")
    assert training.scale_in_cpu_percent < inference.scale_in_cpu_percent
    assert training.window_minutes > inference.window_minutes
    cfg = parse_config(with_pool(purpose="training"), "Pulumi.test.yaml")
    assert cfg.vm_pools[0].autoscale_rules == training


# --- the committed stacks ----------------------------------------------------------------------


def committed(stack: str) -> StackConfig:
    return parse_config(stack_values(stack), f"Pulumi.{stack}.yaml")


def args_of(stack: str) -> GpuVmPoolArgs:
    cfg = committed(stack)
    (pool,) = cfg.vm_pools
    return pool_args(cfg, pool, ComponentContext("rg", cfg.location), SUBNET, None, None)


def test_dev_has_one_t4_spot_developer_vm() -> None:
    args = args_of("dev")
    assert args.kind == "vm" and args.spot
    assert catalog.lookup(args.vm_size).gpu_model == "T4"


def test_staging_has_a_small_t4_scale_set_from_zero() -> None:
    args = args_of("staging")
    assert args.kind == "scaleSet" and args.min_count == 0 and args.instances_at_deploy == 0
    assert catalog.lookup(args.vm_size).gpu_model == "T4"
    assert args.autoscale is not None


def test_prod_has_an_infiniband_training_scale_set_of_two_nodes() -> None:
    args = args_of("prod")
    size = catalog.lookup(args.vm_size)
    assert size.has_infiniband and args.kind == "scaleSet"
    assert args.instances_at_deploy == 2 and args.proximity_placement_group
    assert args.image is None  # the HPC default
    assert args.autoscale == AutoscaleRules(
        scale_out_cpu_percent=70, scale_in_cpu_percent=5, window_minutes=30, cooldown_minutes=10
    )


# --- AMD sizes --------------------------------------------------------------------------------


def _amd_pool(vm_size: str) -> list[PlannedResource]:
    original = AzureMocks._azure

    def _azure(self: AzureMocks, args: Any, urn: str) -> tuple[str, dict[str, Any]]:
        resource_id, state = original(self, args, urn)
        return resource_id, _identity_maps(state)

    context = ComponentContext("rg-test", "eastus", {"environment": "test"}, WORKSPACE)
    AzureMocks._azure = _azure  # type: ignore[method-assign]
    try:
        return capture(
            lambda: GpuVmPool(
                "amd",
                GpuVmPoolArgs(
                    context=context,
                    vm_size=vm_size,
                    subnet_id=SUBNET,
                    ssh_public_key=KEY,
                    identity=GIVEN,
                    max_count=2,
                ),
            )
        )
    finally:
        AzureMocks._azure = original  # type: ignore[method-assign]


def test_v710_scale_set_gets_the_amd_driver_extension_not_nvidias() -> None:
    (scale_set,) = [r for r in _amd_pool("Standard_NV24ads_V710_v5") if r.type == VMSS]
    extensions = scale_set.inputs["virtualMachineProfile"]["extensionProfile"]["extensions"]
    amd = facts.load("amd_gpu")["driver_extension"]
    assert [(e["publisher"], e["type"]) for e in extensions] == [(amd["publisher"], amd["type"])]
    assert POOL["nvidia_driver_extension"]["type"] not in {e["type"] for e in extensions}


def test_mi300x_scale_set_gets_the_rocm_hpc_image_and_no_driver_extension() -> None:
    (scale_set,) = [r for r in _amd_pool("Standard_ND96isr_MI300X_v5") if r.type == VMSS]
    profile = scale_set.inputs["virtualMachineProfile"]
    image = profile["storageProfile"]["imageReference"]
    rocm = facts.load("amd_gpu")["hpc_image"]
    assert (image["offer"], image["sku"]) == (rocm["offer"], rocm["sku"])
    assert "extensionProfile" not in profile


# --- the Azure Monitor Agent --------------------------------------------------------------------

AGENT = facts.load("azure_monitor")["monitoring_agent"]
READER = IdentityRef(
    id=f"{GROUP}/Microsoft.ManagedIdentity/userAssignedIdentities/reader",
    principal_id="00000000-0000-4000-8000-0000000000cc",
    client_id="00000000-0000-4000-8000-0000000000dd",
)


@pytest.fixture(scope="module")
def with_agent() -> tuple[list[PlannedResource], dict[str, GpuVmPool]]:
    """A T4 scale set and an A100 VM with the agent; both also carry a storage identity."""
    original = AzureMocks._azure

    def _azure(self: AzureMocks, args: Any, urn: str) -> tuple[str, dict[str, Any]]:
        resource_id, state = original(self, args, urn)
        return resource_id, _identity_maps(state)

    context = ComponentContext("rg-test", "eastus", {"environment": "test"}, WORKSPACE)
    pools: dict[str, GpuVmPool] = {}

    def declare() -> None:
        for name, kind, size in (
            ("amaset", "scaleSet", "Standard_NC4as_T4_v3"),
            ("amabox", "vm", "Standard_NC24ads_A100_v4"),
        ):
            pools[name] = GpuVmPool(
                name,
                GpuVmPoolArgs(
                    context=context,
                    vm_size=size,
                    subnet_id=SUBNET,
                    ssh_public_key=KEY,
                    identity=GIVEN,
                    storage=BlobMountTarget("stmodels", ["models"], READER),
                    kind=kind,  # type: ignore[arg-type]
                    max_count=1 if kind == "vm" else 2,
                    monitoring_agent=True,
                ),
            )

    AzureMocks._azure = _azure  # type: ignore[method-assign]
    try:
        return capture(declare), pools
    finally:
        AzureMocks._azure = original  # type: ignore[method-assign]


def _is_agent(extension: dict[str, Any]) -> bool:
    return (extension["publisher"], extension["type"]) == (
        AGENT["publisher"],
        AGENT["types"]["linux"],
    )


def _assert_agent_as_documented(extension: dict[str, Any]) -> None:
    assert extension["typeHandlerVersion"] == AGENT["type_handler_version"]
    assert extension["autoUpgradeMinorVersion"] is True
    assert extension["enableAutomaticUpgrade"] is True
    # The nodes carry two identities: the agent is told to use the pool's, by resource id.
    assert extension["settings"] == {
        "authentication": {
            "managedIdentity": {"identifier-name": "mi_res_id", "identifier-value": GIVEN.id}
        }
    }


def test_scale_set_carries_the_agent_in_its_model_beside_the_driver(
    with_agent: tuple[list[PlannedResource], dict[str, GpuVmPool]],
) -> None:
    planned, pools = with_agent
    scale_set = one(planned, VMSS, "amaset")
    assert scale_set.inputs["identity"]["userAssignedIdentities"] == [GIVEN.id, READER.id]
    extensions = scale_set.inputs["virtualMachineProfile"]["extensionProfile"]["extensions"]
    assert [e["type"] for e in extensions] == [
        POOL["nvidia_driver_extension"]["type"],
        AGENT["types"]["linux"],
    ]
    (agent,) = [e for e in extensions if _is_agent(e)]
    assert agent["name"] == AGENT["types"]["linux"]
    _assert_agent_as_documented(agent)
    # No separate extension resource: the model is what new instances are built from.
    assert not [r for r in planned if "VirtualMachineScaleSetExtension" in r.type]
    assert pools["amaset"].monitoring_agent is not None
    assert pools["amaset"].monitoring_agent is pools["amaset"].scale_set


def test_vm_gets_the_agent_extension_after_the_driver(
    with_agent: tuple[list[PlannedResource], dict[str, GpuVmPool]],
) -> None:
    planned, pools = with_agent
    extensions = {r.inputs["type"]: r for r in of(planned, EXTENSION, "amabox")}
    agent = extensions[AGENT["types"]["linux"]]
    assert _is_agent(agent.inputs)
    _assert_agent_as_documented(agent.inputs)
    assert agent.inputs["vmExtensionName"] == AGENT["types"]["linux"]
    assert agent.inputs["vmName"] == one(planned, VM, "amabox").outputs["name"]
    driver = extensions[POOL["nvidia_driver_extension"]["type"]]
    assert driver.urn in agent.options["dependsOn"]
    assert pools["amabox"].monitoring_agent is not None


def test_pools_install_no_agent_unless_asked(planned: list[PlannedResource]) -> None:
    for pool in ("ibtrain", "t4spot", "fixed"):
        profile = one(planned, VMSS, pool).inputs["virtualMachineProfile"]
        extensions = profile.get("extensionProfile", {}).get("extensions", [])
        assert not [e for e in extensions if _is_agent(e)], pool
    assert [r.inputs["type"] for r in of(planned, EXTENSION, "a100box")] == [
        POOL["nvidia_driver_extension"]["type"]
    ]
