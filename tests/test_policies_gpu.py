"""GPU rules: sizes, InfiniBand, MIG, taints, the GPU Operator, the GPU ceiling."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from gpustack import catalog
from gpustack.engine import Plan
from policies import gpu, rulebook
from tests.policy_runs import Declared, check_resource, check_stack

CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"
VM = "azure-native:compute:VirtualMachine"
SCALE_SET = "azure-native:compute:VirtualMachineScaleSet"
NIC = "azure-native:network:NetworkInterface"
VNET = "azure-native:network:VirtualNetwork"
SUBNET = "azure-native:network:Subnet"
AUTOSCALE = "azure-native:monitor:AutoscaleSetting"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"

T4 = "Standard_NC4as_T4_v3"
A100 = "Standard_NC24ads_A100_v4"
ND_A100 = "Standard_ND96asr_v4"
HPC_IMAGE = {"publisher": "microsoft-dsvm", "offer": "ubuntu-hpc", "sku": "2204",
             "version": "latest"}
UBUNTU = {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
          "sku": "22_04-lts-gen2", "version": "latest"}


def scale_set(size: str = ND_A100, capacity: int = 2, image: dict | None = None,
              single_placement_group: bool | None = True) -> dict[str, Any]:
    """A scale set's inputs."""
    props: dict[str, Any] = {
        "sku": {"name": size, "capacity": capacity},
        "virtualMachineProfile": {
            "storageProfile": {"imageReference": image or HPC_IMAGE},
            "networkProfile": {"networkInterfaceConfigurations": [
                {"name": "nic", "enableAcceleratedNetworking": True,
                 "ipConfigurations": [{"name": "ip"}]}]},
        },
    }
    if single_placement_group is not None:
        props["singlePlacementGroup"] = single_placement_group
    return props


def gpu_pool(**overrides: Any) -> dict[str, Any]:
    """A tainted T4 AgentPool's inputs."""
    return {"vmSize": T4, "mode": "User", "count": 1, "nodeTaints": ["sku=gpu:NoSchedule"],
            **overrides}


def test_allowed_sizes_follow_the_environment_config() -> None:
    config = {"allowedGpuSizes": [T4]}
    assert check_resource(gpu.gpu_allowed_sizes, AGENT_POOL, gpu_pool(), config=config) == []
    (message,) = check_resource(gpu.gpu_allowed_sizes, AGENT_POOL, gpu_pool(vmSize=A100),
                                config=config)
    assert f"uses {A100}, which is not in allowedGpuSizes" in message
    # CPU sizes are not GPU sizes; an unknown N-series size is.
    cpu = gpu_pool(vmSize="Standard_D4s_v5")
    assert check_resource(gpu.gpu_allowed_sizes, AGENT_POOL, cpu, config=config) == []
    unknown = {"hardwareProfile": {"vmSize": "Standard_NV6ads_A10_v5"}}
    assert check_resource(gpu.gpu_allowed_sizes, VM, unknown, config=config)


def test_allowed_sizes_default_to_the_catalog_gpu_sizes() -> None:
    assert check_resource(gpu.gpu_allowed_sizes, SCALE_SET, scale_set()) == []
    assert check_resource(gpu.gpu_allowed_sizes, SCALE_SET, scale_set("Standard_NC6s_v3"))


def test_infiniband_scale_set_needs_an_hpc_image() -> None:
    assert check_resource(gpu.gpu_infiniband_hpc_image, SCALE_SET, scale_set()) == []
    (message,) = check_resource(gpu.gpu_infiniband_hpc_image, SCALE_SET,
                                scale_set(image=UBUNTU))
    assert "image is Canonical:0001-com-ubuntu-server-jammy" in message
    # Sizes without InfiniBand may run any image; gallery images cannot be judged.
    assert check_resource(gpu.gpu_infiniband_hpc_image, SCALE_SET,
                          scale_set(T4, image=UBUNTU)) == []
    gallery = scale_set(image={"id": "/subscriptions/s/galleries/g/images/hpc"})
    assert check_resource(gpu.gpu_infiniband_hpc_image, SCALE_SET, gallery) == []


def test_infiniband_scale_set_stays_in_one_placement_group() -> None:
    good = [Declared(SCALE_SET, "train", scale_set())]
    assert check_stack(gpu.gpu_infiniband_placement, good) == []
    split = [Declared(SCALE_SET, "train", scale_set(single_placement_group=False))]
    ((message, urn),) = check_stack(gpu.gpu_infiniband_placement, split)
    assert "singlePlacementGroup is False" in message and urn == split[0].urn


def test_infiniband_autoscale_maximum_counts_against_the_placement_group() -> None:
    train = Declared(SCALE_SET, "train", scale_set(capacity=2))
    autoscale = Declared(AUTOSCALE, "train-autoscale", {
        "enabled": True,
        "targetResourceUri": "/subscriptions/s/resourceGroups/rg/providers/"
                             "Microsoft.Compute/virtualMachineScaleSets/train",
        "profiles": [{"name": "default",
                      "capacity": {"minimum": "0", "maximum": "150", "default": "2"}}],
    }, deps={"targetResourceUri": ["train"]})
    ((message, _),) = check_stack(gpu.gpu_infiniband_placement, [train, autoscale])
    assert "can grow to 150 VMs" in message


def test_vnet_overlapping_the_infiniband_range_is_reported_only_with_infiniband() -> None:
    vnet = Declared(VNET, "vnet", {"addressSpace": {"addressPrefixes": ["172.16.0.0/12"]}})
    subnet = Declared(SUBNET, "snet", {"addressPrefix": "172.16.4.0/24"})
    infiniband = Declared(SCALE_SET, "train", scale_set())
    found = check_stack(gpu.gpu_infiniband_vnet_overlap, [vnet, subnet, infiniband])
    assert {urn for _, urn in found} == {vnet.urn, subnet.urn}
    t4_only = Declared(SCALE_SET, "infer", scale_set(T4))
    assert check_stack(gpu.gpu_infiniband_vnet_overlap, [vnet, t4_only]) == []
    clear = Declared(VNET, "vnet", {"addressSpace": {"addressPrefixes": ["10.40.0.0/16"]}})
    assert check_stack(gpu.gpu_infiniband_vnet_overlap, [clear, infiniband]) == []


def test_mig_profile_needs_a_mig_capable_gpu() -> None:
    a100 = gpu_pool(vmSize=A100, gpuInstanceProfile="MIG1g")
    assert check_resource(gpu.gpu_mig_supported_size, AGENT_POOL, a100) == []
    (message,) = check_resource(gpu.gpu_mig_supported_size, AGENT_POOL,
                                gpu_pool(gpuInstanceProfile="MIG2g"))
    assert "(T4) has no MIG support" in message
    unknown = gpu_pool(vmSize="Standard_NC99_future", gpuInstanceProfile="MIG1g")
    assert check_resource(gpu.gpu_mig_supported_size, AGENT_POOL, unknown) == []
    assert check_resource(gpu.vm_size_known, AGENT_POOL, unknown)


def test_gpu_pools_carry_the_gpu_taint_inline_or_separate() -> None:
    assert check_resource(gpu.gpu_pool_tainted, AGENT_POOL, gpu_pool()) == []
    spot_only = gpu_pool(nodeTaints=["kubernetes.azure.com/scalesetpriority=spot:NoSchedule"])
    (message,) = check_resource(gpu.gpu_pool_tainted, AGENT_POOL, spot_only)
    assert "add sku=gpu:NoSchedule" in message
    cluster = {"agentPoolProfiles": [
        {"name": "system", "mode": "System", "vmSize": "Standard_D4s_v5"},
        {"name": "gpu", "mode": "User", "vmSize": T4}]}
    (message,) = check_resource(gpu.gpu_pool_tainted, CLUSTER, cluster)
    assert "inline node pool gpu" in message


def test_driver_none_pool_needs_the_gpu_operator_in_the_stack() -> None:
    pool = Declared(AGENT_POOL, "train", gpu_pool(vmSize=ND_A100, gpuProfile={"driver": "None"}))
    ((message, urn),) = check_stack(gpu.gpu_operator_for_driver_none, [pool])
    assert "installs no NVIDIA GPU Operator" in message and urn == pool.urn
    operator = Declared(HELM_RELEASE, "gpu-operator", {"chart": "gpu-operator",
                                                       "repositoryOpts": {"repo": "https://helm.ngc.nvidia.com/nvidia"}})
    assert check_stack(gpu.gpu_operator_for_driver_none, [pool, operator]) == []
    assert check_stack(gpu.gpu_operator_for_driver_none, [pool],
                       config={"installedOutsideStack": True}) == []


def test_total_gpus_at_full_scale_stay_under_the_ceiling() -> None:
    resources = [
        Declared(AGENT_POOL, "t4", gpu_pool(enableAutoScaling=True, minCount=0, maxCount=4)),
        Declared(SCALE_SET, "train", scale_set(capacity=2)),
        Declared(VM, "devbox", {"hardwareProfile": {"vmSize": T4}}),
    ]
    # 4 x 1 + 2 x 8 + 1 x 1 = 21 GPUs.
    assert check_stack(gpu.gpu_total_ceiling, resources, config={"maxGpus": 21}) == []
    ((message, urn),) = check_stack(gpu.gpu_total_ceiling, resources, config={"maxGpus": 20})
    assert "can run 21 GPUs at full scale, above maxGpus 20" in message and urn is None


def test_gpu_pools_inline_in_the_cluster_are_advised_to_move_out() -> None:
    system_only = {"agentPoolProfiles": [{"name": "system", "mode": "System",
                                          "vmSize": "Standard_D4s_v5"}]}
    assert check_resource(gpu.gpu_pools_separate, CLUSTER, system_only) == []
    inline = copy.deepcopy(system_only)
    inline["agentPoolProfiles"].append({"name": "gpu", "vmSize": T4})
    (message,) = check_resource(gpu.gpu_pools_separate, CLUSTER, inline)
    assert "inline node pool gpu" in message


def cannot(size: str) -> catalog.VmSize:
    """A catalog-shaped size without accelerated networking or encryption at host (A1_v2-like)."""
    return dataclasses.replace(catalog.lookup("Standard_D2s_v5"), name=size,
                               accelerated_networking=False, encryption_at_host=False)


@pytest.fixture
def small_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard_A1_v2 and Standard_A3 are known to the catalog and lack both capabilities."""
    lookup = rulebook.size_facts.__wrapped__

    def facts(size: str) -> catalog.VmSize | None:
        return cannot(size) if size in ("Standard_A1_v2", "Standard_A3") else lookup(size)

    monkeypatch.setattr(rulebook, "size_facts", facts)


def vm(size: str, nic_name: str) -> Declared:
    """A VM attached (by property dependency) to the NIC declared as `nic_name`."""
    return Declared(VM, f"vm-{nic_name}", {"hardwareProfile": {"vmSize": size}},
                    deps={"networkProfile": [nic_name]})


def test_accelerated_networking_on_scale_sets_and_attached_nics() -> None:
    good, bad = scale_set(), copy.deepcopy(scale_set())
    bad["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0].pop(
        "enableAcceleratedNetworking")
    assert check_stack(gpu.vm_accelerated_networking, [Declared(SCALE_SET, "ok", good)]) == []
    ((message, urn),) = check_stack(gpu.vm_accelerated_networking,
                                   [Declared(SCALE_SET, "slow", bad)])
    assert "NIC 'nic' does not enable accelerated networking" in message
    slow_nic = Declared(NIC, "nic1", {"enableAcceleratedNetworking": False})
    ((message, urn),) = check_stack(gpu.vm_accelerated_networking, [slow_nic, vm(T4, "nic1")])
    assert urn == slow_nic.urn and T4 in message
    fast_nic = Declared(NIC, "nic1", {"enableAcceleratedNetworking": True})
    assert check_stack(gpu.vm_accelerated_networking, [fast_nic, vm(T4, "nic1")]) == []


@pytest.mark.usefixtures("small_sizes")
@pytest.mark.parametrize("size", ["Standard_A1_v2", "Standard_A3"])
def test_accelerated_networking_is_not_demanded_of_sizes_without_it(size: str) -> None:
    assert rulebook.known_size(size) is not None  # judged by the catalog, not skipped unknown
    nic = Declared(NIC, "nic1", {"enableAcceleratedNetworking": False})
    assert check_stack(gpu.vm_accelerated_networking, [nic, vm(size, "nic1")]) == []
    scale = scale_set(size=size)
    scale["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0][
        "enableAcceleratedNetworking"] = False
    assert check_stack(gpu.vm_accelerated_networking, [Declared(SCALE_SET, "s", scale)]) == []


def test_accelerated_networking_leaves_unknown_sizes_and_detached_nics_alone() -> None:
    nic = Declared(NIC, "nic1", {"enableAcceleratedNetworking": False})
    assert check_stack(gpu.vm_accelerated_networking, [nic]) == []
    assert check_stack(gpu.vm_accelerated_networking, [nic, vm("Standard_A0", "nic1")]) == []


def test_unknown_sizes_are_reported_as_unknown() -> None:
    assert check_resource(gpu.vm_size_known, VM, {"hardwareProfile": {"vmSize": T4}}) == []
    (message,) = check_resource(gpu.vm_size_known, AGENT_POOL, gpu_pool(vmSize="Standard_A0"))
    assert "Standard_A0, an unknown size" in message
    assert gpu.vm_size_known.enforcement_level == EnforcementLevel.ADVISORY


def test_every_gpu_rule_is_tested() -> None:
    tested = {
        "gpustack-gpu-allowed-sizes", "gpustack-gpu-infiniband-hpc-image",
        "gpustack-gpu-infiniband-placement", "gpustack-gpu-infiniband-vnet-overlap",
        "gpustack-gpu-mig-supported-size", "gpustack-gpu-pool-tainted",
        "gpustack-gpu-operator-for-driver-none", "gpustack-gpu-total-ceiling",
        "gpustack-gpu-pools-separate", "gpustack-vm-accelerated-networking",
        "gpustack-vm-size-known", "gpustack-vm-disk-caching",
    }
    assert {p.name for p in gpu.POLICIES} == tested


# --- disk caching ---------------------------------------------------------------------------

MANAGED_OS = {"createOption": "FromImage", "caching": "ReadWrite",
              "managedDisk": {"storageAccountType": "Premium_LRS"}}
EPHEMERAL_OS = {"createOption": "FromImage", "caching": "ReadOnly",
                "diffDiskSettings": {"option": "Local", "placement": "ResourceDisk"}}


def data_disk(lun: int, storage_type: str | None = None, **props: Any) -> dict[str, Any]:
    """An empty data disk at `lun`, of `storage_type` when given."""
    disk: dict[str, Any] = {"lun": lun, "createOption": "Empty", "diskSizeGB": 1024, **props}
    if storage_type is not None:
        disk["managedDisk"] = {"storageAccountType": storage_type}
    return disk


def vm_storage(os_disk: Any = None, data_disks: Any = None) -> dict[str, Any]:
    """A VM's inputs with this storage profile (keys left out when None)."""
    storage: dict[str, Any] = {"imageReference": UBUNTU}
    if os_disk is not None:
        storage["osDisk"] = os_disk
    if data_disks is not None:
        storage["dataDisks"] = data_disks
    return {"hardwareProfile": {"vmSize": T4}, "storageProfile": storage}


def vmss_storage(os_disk: Any = None, data_disks: Any = None) -> dict[str, Any]:
    """A scale set's inputs with this storage profile under virtualMachineProfile."""
    storage = vm_storage(os_disk, data_disks)["storageProfile"]
    return {"sku": {"name": T4, "capacity": 2},
            "virtualMachineProfile": {"storageProfile": storage}}


def caching(props: dict[str, Any], type_: str = VM) -> list[str]:
    return check_resource(gpu.vm_disk_caching, type_, props)


@pytest.mark.parametrize(("type_", "shape"), [(VM, vm_storage), (SCALE_SET, vmss_storage)])
def test_disks_with_the_caching_their_storage_calls_for_pass(type_: str, shape: Any) -> None:
    disks = [data_disk(0, "Premium_LRS", caching="ReadOnly"),
             data_disk(1, "Standard_LRS", caching="None"),
             data_disk(2, "StandardSSD_LRS", caching="None"),
             data_disk(3, "UltraSSD_LRS", caching="None")]
    assert caching(shape(MANAGED_OS, disks), type_) == []


@pytest.mark.parametrize(("type_", "shape"), [(VM, vm_storage), (SCALE_SET, vmss_storage)])
def test_wrong_os_and_data_disk_caching_is_flagged_per_disk(type_: str, shape: Any) -> None:
    os_disk = {**MANAGED_OS, "caching": "None"}
    disks = [data_disk(0, "Premium_LRS", caching="None"),
             data_disk(1, "Standard_LRS", caching="ReadOnly"),
             data_disk(2, "Premium_LRS", caching="ReadOnly")]
    assert caching(shape(os_disk, disks), type_) == [
        "osDisk.caching is 'None'; use 'ReadWrite'",
        "dataDisks[0] (lun 0) (Premium_LRS) caching is 'None'; use 'ReadOnly'",
        "dataDisks[1] (lun 1) (Standard_LRS) caching is 'ReadOnly'; use 'None'",
    ]


def test_storage_types_and_caching_values_compare_case_insensitively() -> None:
    disks = [data_disk(0, "premium_lrs", caching="readonly")]
    assert caching(vm_storage({**MANAGED_OS, "caching": "readwrite"}, disks)) == []


def test_an_os_disk_without_caching_is_flagged_because_azure_would_not_pick_read_write() -> None:
    os_disk = {key: value for key, value in MANAGED_OS.items() if key != "caching"}
    (message,) = caching(vm_storage(os_disk))
    assert message.startswith("osDisk.caching is not set")
    assert message.endswith("set 'ReadWrite'")


def test_ephemeral_os_disks_are_exempt() -> None:
    assert caching(vm_storage(EPHEMERAL_OS)) == []
    assert caching(vmss_storage(EPHEMERAL_OS), SCALE_SET) == []


def test_data_disks_leaving_caching_to_azure_or_using_write_accelerator_pass() -> None:
    disks = [data_disk(0, "Premium_LRS"), data_disk(1, "Standard_LRS"),
             data_disk(2, "Premium_LRS", caching="None", writeAcceleratorEnabled=True)]
    assert caching(vm_storage(MANAGED_OS, disks)) == []


def test_a_data_disk_of_undeclared_type_is_flagged_only_for_read_write() -> None:
    attached = {"lun": 4, "createOption": "Attach", "managedDisk": {"id": "/subscriptions/s/"
                "resourceGroups/rg/providers/Microsoft.Compute/disks/scratch"}}
    assert caching(vm_storage(MANAGED_OS, [{**attached, "caching": "ReadOnly"}])) == []
    assert caching(vm_storage(MANAGED_OS, [{**attached, "caching": "None"}])) == []
    assert caching(vm_storage(MANAGED_OS, [{**attached, "caching": "ReadWrite"}])) == [
        "dataDisks[0] (lun 4) caching is 'ReadWrite'; data disks take 'ReadOnly' (premium) or "
        "'None'"
    ]


def test_missing_storage_profiles_and_foreign_shapes_do_not_crash_or_flag() -> None:
    assert caching({}) == []
    assert caching({"sku": {"name": T4}}, SCALE_SET) == []  # flexible set without a profile
    assert caching({"storageProfile": {"imageReference": UBUNTU}}) == []
    assert caching(vm_storage(MANAGED_OS, ["not a disk", None, 7])) == []


def caching_in_preview(props: dict[str, Any]) -> list[str]:
    """The violations reported before the rule notes, as the SDK does, a value it cannot know."""
    found: list[str] = []

    class Keep:
        def validate(self, args: Any, report: Any) -> None:
            gpu.vm_disk_caching.validate(args, lambda m, urn=None: (found.append(m), report(m)))

    with pytest.raises(UnknownValueError):
        check_resource(Keep(), VM, props)  # type: ignore[arg-type]
    return found


def test_unknown_values_during_preview_are_noted_never_flagged_nor_passed() -> None:
    unknown_os = {**MANAGED_OS, "caching": UNKNOWN_STRING_VALUE}
    bad_data = [data_disk(0, "Standard_LRS", caching="ReadOnly")]
    # An unknown OS disk setting leaves the data disks judged, and the other way round; the
    # unknown one then becomes the SDK's "can't run during preview" note, not a silent pass.
    assert caching_in_preview(vm_storage(unknown_os, bad_data)) == [
        "dataDisks[0] (lun 0) (Standard_LRS) caching is 'ReadOnly'; use 'None'"
    ]
    unknown_type = [data_disk(0, UNKNOWN_STRING_VALUE, caching="ReadOnly"),
                    data_disk(1, "Premium_LRS", caching=UNKNOWN_STRING_VALUE)]
    assert caching_in_preview(vm_storage(MANAGED_OS, unknown_type)) == []
    assert caching_in_preview(vm_storage(MANAGED_OS, UNKNOWN_STRING_VALUE)) == []
    assert caching_in_preview({"hardwareProfile": {"vmSize": T4},
                               "storageProfile": UNKNOWN_STRING_VALUE}) == []


def test_the_stacks_vms_and_scale_sets_pass_disk_caching(env_plan: Plan) -> None:
    machines = [*env_plan.by_type(VM), *env_plan.by_type(SCALE_SET)]
    assert machines
    for machine in machines:
        assert check_resource(gpu.vm_disk_caching, machine.type, machine.inputs) == [], machine.name


def test_a_nic_unknown_during_preview_is_noted_and_the_others_still_judged() -> None:
    slow_nic = Declared(NIC, "nic1", {"enableAcceleratedNetworking": False})
    unknown_nic = Declared(NIC, "nic2", {"enableAcceleratedNetworking": UNKNOWN_STRING_VALUE})
    found: list[str] = []

    class Keep:
        def validate(self, args: Any, report: Any) -> None:
            gpu.vm_accelerated_networking.validate(
                args, lambda m, urn=None: (found.append(m), report(m, urn)))

    with pytest.raises(UnknownValueError):
        check_stack(Keep(), [unknown_nic, slow_nic, vm(T4, "nic1"), vm(T4, "nic2")])  # type: ignore[arg-type]
    assert len(found) == 1 and found[0].startswith("nic1:")
