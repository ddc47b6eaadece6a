"""GPU rules: allowed sizes, InfiniBand placement and images, MIG, taints, the GPU Operator,
a ceiling on GPUs per stack, and the settings GPU nodes need to perform.

VM size facts (GPU count, InfiniBand, MIG) come from the catalog (gpustack/data/vm_sizes.yaml).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pulumi_policy import Severity
from pulumi_policy.proxy import UnknownValueError

from gpustack import catalog
from policies.rulebook import (
    ADVISORY,
    MANDATORY,
    Deferred,
    Report,
    Resource,
    Rule,
    Stack,
    StackReport,
    dig,
    gpu_count,
    has_infiniband,
    is_gpu_size,
    is_list,
    items,
    kind_of,
    known_size,
    lower,
    names,
    nic_configurations,
    node_pools,
    number,
    one_of,
    policy_fact,
    resource_rule,
    stack_rule,
    taints,
    vm_profile,
    vm_size,
)

CLUSTER = "containerservice:ManagedCluster"
AGENT_POOL = "containerservice:AgentPool"
VM = "compute:VirtualMachine"
SCALE_SET = "compute:VirtualMachineScaleSet"
NIC = "network:NetworkInterface"
VNET = "network:VirtualNetwork"
SUBNET = "network:Subnet"


def _sizes(resource: Resource) -> list[tuple[str, str]]:
    """(where, size) for every VM size a resource declares."""
    if resource.is_a(VM, SCALE_SET):
        size = vm_size(resource)
        return [("vmSize" if resource.is_a(VM) else "sku.name", size)] if size else []
    return [(pool.label, pool.size) for pool in node_pools(resource) if isinstance(pool.size, str)]


@resource_rule(
    Rule(
        id="gpustack-gpu-allowed-sizes",
        area="gpu",
        title="GPU VM sizes are on the environment's allowed list",
        why="Each environment has GPU quota, a budget and a driver stack tested for specific "
        "sizes; an unlisted size fails on quota, blows the budget or runs untested drivers.",
        fix="Use a size from the environment's allowedGpuSizes (policies/config/<env>.json), "
        "or add the size there after checking quota and price.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/virtual-machines/sizes/overview#gpu-accelerated",
            "https://learn.microsoft.com/azure/quotas/per-vm-quota-requests",
        ),
        settings={
            "allowedGpuSizes": {
                "type": "array",
                "items": {"type": "string"},
                "default": [size.name for size in catalog.all_sizes() if size.is_gpu],
                "description": "GPU VM sizes this environment may use.",
            }
        },
    ),
    VM,
    SCALE_SET,
    AGENT_POOL,
    CLUSTER,
)
def gpu_allowed_sizes(resource: Resource, report: Report) -> None:
    allowed = {size.lower() for size in resource.config["allowedGpuSizes"]}
    for where, size in _sizes(resource):
        if is_gpu_size(size) and size.lower() not in allowed:
            report(f"{where} uses {size}, which is not in allowedGpuSizes "
                   f"({names(resource.config['allowedGpuSizes'])})")


@resource_rule(
    Rule(
        id="gpustack-gpu-infiniband-hpc-image",
        area="gpu",
        title="InfiniBand sizes run an HPC image",
        why="InfiniBand needs the Mellanox OFED drivers that only the HPC images ship; on a "
        "plain image NCCL falls back to TCP and multi-node training runs many times slower.",
        fix="Use microsoft-dsvm:ubuntu-hpc:2204:latest or almalinux:almalinux-hpc, or a "
        "gallery image built from them.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/virtual-machines/workloads/hpc/configure",
            "https://github.com/Azure/azhpc-images",
        ),
    ),
    VM,
    SCALE_SET,
)
def gpu_infiniband_hpc_image(resource: Resource, report: Report) -> None:
    size = vm_size(resource)
    if not has_infiniband(size):
        return
    image = vm_profile(resource, "storageProfile", "imageReference")
    if image is None:
        report(f"{size} has InfiniBand but no imageReference is set; use an HPC image")
        return
    publisher, offer = dig(image, "publisher"), dig(image, "offer")
    if publisher is None and offer is None:
        return  # a gallery or custom image (by id): built from an HPC image or not, unknowable
    hpc = policy_fact("hpc_images")["images"]
    if not any(one_of(publisher, i["publisher"]) and one_of(offer, i["offer"]) for i in hpc):
        choices = names(f"{i['publisher']}:{i['offer']}" for i in hpc)
        report(f"{size} has InfiniBand but the image is {publisher}:{offer}; use one of {choices}")


@stack_rule(
    Rule(
        id="gpustack-gpu-infiniband-placement",
        area="gpu",
        title="InfiniBand scale sets keep one placement group of at most 100 VMs",
        why="RDMA reaches only VMs of one placement group; a scale set that spans several, or "
        "grows past 100 VMs, silently splits the InfiniBand fabric.",
        fix="Set single_placement_group=True and keep capacity and any autoscale maximum at or "
        "below 100 (300 after a support request).",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-placement-groups",
        ),
    )
)
def gpu_infiniband_placement(stack: Stack, report: StackReport) -> None:
    limit = policy_fact("infiniband")["single_placement_group_limit"]
    for pool in _compute_pools(stack):
        if pool.kind != "scaleSet" or not has_infiniband(pool.vm_size):
            continue
        if pool.single_placement_group is not True:
            report(f"scale set {pool.name} ({pool.vm_size}) has InfiniBand but "
                   f"singlePlacementGroup is {pool.single_placement_group!r}", pool.urn)
        if pool.max is not None and pool.max > limit:
            report(f"scale set {pool.name} can grow to {pool.max} VMs ({pool.count_basis}); "
                   f"one placement group holds {limit}", pool.urn)


@stack_rule(
    Rule(
        id="gpustack-gpu-infiniband-vnet-overlap",
        area="gpu",
        title="VNets do not overlap the InfiniBand range when InfiniBand sizes are present",
        why="Azure's RDMA back-end network uses 172.16.0.0/16 on InfiniBand sizes; a VNet or "
        "subnet in that range breaks routing between the two networks.",
        fix="Choose an address space outside 172.16.0.0/16, e.g. 10.40.0.0/16.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/virtual-machines/workloads/hpc/enable-infiniband",
        ),
    )
)
def gpu_infiniband_vnet_overlap(stack: Stack, report: StackReport) -> None:
    sizes = {size for r in stack.of(VM, SCALE_SET, AGENT_POOL, CLUSTER) for _, size in _sizes(r)}
    ib_sizes = sorted(size for size in sizes if has_infiniband(size))
    if not ib_sizes:
        return
    reserved = ipaddress.ip_network(policy_fact("infiniband")["reserved_range"])
    for network in stack.of(VNET, SUBNET):
        if network.is_a(VNET):
            prefixes = items(network.get("addressSpace", "addressPrefixes"))
        else:
            prefixes = [network.get("addressPrefix"), *items(network.get("addressPrefixes"))]
        for prefix in prefixes:
            if not isinstance(prefix, str):
                continue
            try:
                overlaps = ipaddress.ip_network(prefix, strict=False).overlaps(reserved)
            except ValueError:
                continue
            if overlaps:
                report(f"{network.name} uses {prefix}, which overlaps {reserved} reserved for "
                       f"InfiniBand ({names(ib_sizes)} in this stack)", network.urn)


@resource_rule(
    Rule(
        id="gpustack-gpu-mig-supported-size",
        area="gpu",
        title="MIG profiles only on GPUs that support MIG",
        why="Multi-Instance GPU exists on A100, H100 and H200 class GPUs only; AKS rejects the "
        "pool, or it comes up without the expected GPU slices.",
        fix="Remove gpu_instance_profile, or use a MIG-capable size (NC A100 v4, ND A100 v4, "
        "NC/ND H100 v5).",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/aks/gpu-multi-instance",),
    ),
    AGENT_POOL,
    CLUSTER,
)
def gpu_mig_supported_size(resource: Resource, report: Report) -> None:
    for pool in node_pools(resource):
        profile = pool.get("gpuInstanceProfile")
        if profile is None:
            continue
        known = known_size(pool.size)
        if known is None:
            continue  # unknown size: gpustack-vm-size-known says so, advisory
        if not known.mig:
            report(f"{pool.label} sets gpuInstanceProfile {profile} but {known.name} "
                   f"({known.gpu_model}) has no MIG support")


@resource_rule(
    Rule(
        id="gpustack-gpu-pool-tainted",
        area="gpu",
        title="AKS GPU node pools are tainted",
        why="AKS does not taint GPU nodes; without a taint, any pod (CoreDNS, agents, CPU jobs) "
        "can land on a node that costs dollars per hour and hold it from scaling down.",
        fix="Add node_taints=['sku=gpu:NoSchedule'] to the pool and a matching toleration to "
        "GPU workloads.",
        severity=Severity.MEDIUM,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/aks/use-nvidia-gpu",),
        settings={
            "taint": {
                "type": "string",
                "default": policy_fact("aks_gpu_taint")["taint"],
                "description": "The taint every GPU user pool must carry (key=value:Effect).",
            }
        },
    ),
    AGENT_POOL,
    CLUSTER,
)
def gpu_pool_tainted(resource: Resource, report: Report) -> None:
    wanted = resource.config["taint"]
    for pool in node_pools(resource):
        if pool.is_system or not is_gpu_size(pool.size):
            continue
        if wanted not in taints(pool):
            report(f"{pool.label} ({pool.size}) has taints {names(taints(pool))}; add {wanted}")


@stack_rule(
    Rule(
        id="gpustack-gpu-operator-for-driver-none",
        area="gpu",
        title="Pools that skip the AKS GPU driver have the NVIDIA GPU Operator",
        why="gpuProfile.driver None tells AKS not to install the NVIDIA driver; without the GPU "
        "Operator the nodes join with no driver and no schedulable GPUs.",
        fix="Install the gpu-operator Helm chart in the stack (e.g. aks.gpuOperator: true), or "
        "use driver Install.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=(
            "https://learn.microsoft.com/azure/aks/nvidia-gpu-operator",
            "https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/microsoft-aks.html",
        ),
        settings={
            "installedOutsideStack": {
                "type": "boolean",
                "default": False,
                "description": "The GPU Operator is installed by another stack or GitOps.",
            }
        },
    )
)
def gpu_operator_for_driver_none(stack: Stack, report: StackReport) -> None:
    if stack.config["installedOutsideStack"]:
        return
    charts = [c.lower() for c in policy_fact("gpu_operator")["chart_names"]]
    for release in stack.resources:
        if not release.type.startswith("kubernetes:helm.sh/"):
            continue
        chart = str(release.known("chart") or release.name).lower()
        if any(name in chart for name in charts):
            return
    for resource in stack.of(AGENT_POOL, CLUSTER):
        for pool in node_pools(resource):
            if one_of(pool.get("gpuProfile", "driver"), "None"):
                report(f"{pool.label} sets gpuProfile.driver None but the stack installs no "
                       "NVIDIA GPU Operator", resource.urn)


@stack_rule(
    Rule(
        id="gpustack-gpu-total-ceiling",
        area="gpu",
        title="A stack stays under its ceiling of GPUs",
        why="GPU quota is per subscription and region and GPUs cost dollars per hour each; a "
        "typo in maxCount should not be able to ask for a hundred A100s.",
        fix="Lower pool maxima, or raise maxGpus in policies/config/<env>.json after checking "
        "quota and budget.",
        severity=Severity.HIGH,
        level=MANDATORY,
        references=("https://learn.microsoft.com/azure/quotas/per-vm-quota-requests",),
        settings={
            "maxGpus": {
                "type": "integer",
                "minimum": 0,
                "default": 64,
                "description": "Most GPUs the stack may run at full scale.",
            }
        },
    )
)
def gpu_total_ceiling(stack: Stack, report: StackReport) -> None:
    total = 0
    parts = []
    for pool in _compute_pools(stack):
        per_vm = gpu_count(pool.vm_size)
        if not per_vm or pool.max is None:
            continue
        total += per_vm * pool.max
        parts.append(f"{pool.name} {pool.max}x{pool.vm_size} ({per_vm * pool.max})")
    ceiling = stack.config["maxGpus"]
    if total > ceiling:
        report(f"the stack can run {total} GPUs at full scale, above maxGpus {ceiling:g}: "
               f"{names(parts)}")


@resource_rule(
    Rule(
        id="gpustack-gpu-pools-separate",
        area="gpu",
        title="AKS GPU pools are separate AgentPool resources",
        why="Inline agentPoolProfiles are updated as one list: changing a GPU pool's size or MIG "
        "profile replaces it in place with the cluster, and edits can rescale every pool.",
        fix="Keep only the system pool inline and declare each GPU pool as a "
        "containerservice.AgentPool (ignore_changes=['count'] when autoscaled).",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/aks/create-node-pools",),
    ),
    CLUSTER,
)
def gpu_pools_separate(cluster: Resource, report: Report) -> None:
    inline = [pool.label for pool in node_pools(cluster) if is_gpu_size(pool.size)]
    if inline:
        report(f"{names(inline)} declare GPU sizes inline; declare them as AgentPool resources")


@stack_rule(
    Rule(
        id="gpustack-vm-accelerated-networking",
        area="gpu",
        title="VM and scale set NICs use accelerated networking where the size offers it",
        why="SR-IOV networking cuts latency and CPU use for data loading and multi-node "
        "training; every supported GPU size offers it. Sizes without it (A-series, the original "
        "B-series) are left alone: the fix would be impossible there.",
        fix="Set enable_accelerated_networking=True on the NIC configurations (or the NIC).",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=(
            "https://learn.microsoft.com/azure/virtual-network/accelerated-networking-overview",
        ),
        mirrors=("Azure.VM.AcceleratedNetworking",),
    )
)
def vm_accelerated_networking(stack: Stack, report: StackReport) -> None:
    machines = stack.of(VM, SCALE_SET)
    for machine in machines:
        if not _offers_accelerated_networking(vm_size(machine)):
            continue
        for nic in nic_configurations(machine):
            if dig(nic, "enableAcceleratedNetworking") is not True:
                report(f"{machine.name}: NIC {dig(nic, 'name')!r} does not enable accelerated "
                       "networking", machine.urn)
    deferred = Deferred()
    for nic in stack.of(NIC):
        try:
            if nic.get("enableAcceleratedNetworking") is True:
                continue
        except UnknownValueError as error:
            # Unknown during a preview: the other NICs are judged, then the rule notes this one.
            deferred.error = deferred.error or error
            continue
        # A NIC has no size of its own: judge it by the VMs it is attached to, and leave it
        # alone when none is declared here or their size is not known to offer the feature.
        owners = [vm for vm in stack.of(VM) if _attaches(stack, vm, nic)]
        sizes = [vm_size(vm) for vm in owners]
        if sizes and all(_offers_accelerated_networking(size) for size in sizes):
            report(f"{nic.name}: enableAcceleratedNetworking is not True, and "
                   f"{names(sorted({str(s) for s in sizes}))} offers it", nic.urn)
    deferred.finish()


def _offers_accelerated_networking(size: str | None) -> bool:
    known = known_size(size)
    return known is not None and known.accelerated_networking


def _attaches(stack: Stack, vm: Resource, nic: Resource) -> bool:
    if stack.refers_to(vm, "networkProfile", nic, "networkInterfaces", "networkInterfaceName"):
        return True
    return any(
        stack.id_refers_to(reference, nic, "networkInterfaces", "networkInterfaceName")
        for reference in (
            dig(ref, "id") for ref in items(vm.known("networkProfile", "networkInterfaces"))
        )
    )


@resource_rule(
    Rule(
        id="gpustack-vm-size-known",
        area="gpu",
        title="VM sizes are in the catalog, so their capabilities can be checked",
        why="Encryption at host, accelerated networking and ephemeral OS disks depend on the "
        "size; for a size the catalog does not list, those rules cannot tell a missing setting "
        "from one the size does not support, so they skip it and this rule says so. Basic, "
        "promotional and retired sizes are not in the catalog either.",
        fix="Use a size from gpustack/data/vm_sizes.yaml (`gpustack catalog`), or add the size "
        "there with its facts and sources.",
        severity=Severity.LOW,
        level=ADVISORY,
        references=("https://learn.microsoft.com/azure/virtual-machines/sizes/overview",),
        mirrors=("Azure.VM.BasicSku", "Azure.VM.PromoSku"),
    ),
    VM,
    SCALE_SET,
    AGENT_POOL,
    CLUSTER,
)
def vm_size_known(resource: Resource, report: Report) -> None:
    for where, size in _sizes(resource):
        if known_size(size) is None:
            report(f"{where} uses {size}, an unknown size: the catalog does not list it, so "
                   "encryption at host, accelerated networking and ephemeral OS disk support "
                   "are not checked")


def _compute_pools(stack: Stack) -> list[Any]:
    """The stack's VMs, scale sets and AKS pools with their node counts (gpustack.inventory)."""
    from gpustack.inventory import Inventory, compute_pools

    views = []
    for resource in stack.resources:
        view = resource.plain_view()
        # The inventory matches default azure-native tokens; versioned ones read the same.
        if resource.type.startswith("azure-native:"):
            view["type"] = f"azure-native:{kind_of(resource.type)}"
        views.append(view)
    return compute_pools(Inventory(views))


@resource_rule(
    Rule(
        id="gpustack-vm-disk-caching",
        area="gpu",
        title="VM and scale set disks use the host caching their storage type calls for",
        why="Host caching serves reads from the host's cache instead of the storage network: "
        "ReadWrite suits the OS disk, ReadOnly premium data disks (datasets, model weights); "
        "ReadWrite on a data disk risks losing writes, and Standard disks gain nothing from a "
        "cache.",
        fix="Set caching='ReadWrite' on managed OS disks (ephemeral OS disks keep 'ReadOnly'); "
        "on data disks set 'ReadOnly' for Premium_LRS and 'None' for other storage types.",
        severity=Severity.MEDIUM,
        level=ADVISORY,
        references=(
            "https://learn.microsoft.com/azure/virtual-machines/premium-storage-performance#disk-caching",
            "https://azure.github.io/PSRule.Rules.Azure/en/rules/Azure.VM.DiskCaching/",
        ),
        mirrors=("Azure.VM.DiskCaching",),
    ),
    VM,
    SCALE_SET,
)
def vm_disk_caching(machine: Resource, report: Report) -> None:
    caching = policy_fact("disk_caching")
    # A profile unknown during a preview raises (the SDK notes the rule could not run); an
    # unknown disk setting leaves that disk for the note and the others are still judged.
    storage = vm_profile(machine, "storageProfile")
    if storage is None:
        return  # e.g. a flexible scale set without a VM profile
    deferred = Deferred()
    deferred.check(lambda: _check_os_disk_caching(dig(storage, "osDisk"), caching, report))
    disks = deferred.check(dig, storage, "dataDisks")
    for index in range(len(disks) if is_list(disks) else 0):
        disk = deferred.check(lambda i=index: disks[i])
        if disk is not None:
            deferred.check(_check_data_disk_caching, index, disk, caching, report)
    deferred.finish()


def _check_os_disk_caching(disk: Any, caching: dict[str, Any], report: Report) -> None:
    if disk is None:
        return  # no OS disk settings declared (a profile that only names its image elsewhere)
    if one_of(dig(disk, "diffDiskSettings", "option"), caching["ephemeral_option"]):
        return  # ephemeral OS disks take ReadOnly; Azure offers no other cache for them
    value = dig(disk, "caching")
    wanted = caching["os_disk"]
    if value is None:
        report(f"osDisk.caching is not set (Azure's documented default is ReadOnly on premium "
               f"and None on standard storage); set '{wanted}'")
    elif not one_of(value, wanted):
        report(f"osDisk.caching is {value!r}; use '{wanted}'")


def _check_data_disk_caching(index: int, disk: Any, caching: dict[str, Any],
                             report: Report) -> None:
    if dig(disk, "writeAcceleratorEnabled") is True:
        return  # Write Accelerator prescribes the caching of these disks itself
    value = dig(disk, "caching")
    if value is None:
        return  # Azure's default (ReadOnly on premium, None on standard) is the wanted value
    lun = number(dig(disk, "lun"))
    label = f"dataDisks[{index}]" + (f" (lun {lun:g})" if lun is not None else "")
    storage_type = dig(disk, "managedDisk", "storageAccountType")
    if storage_type is None:
        # The type comes from an attached disk or Azure's choice: only ReadWrite is wrong for
        # every type.
        if one_of(value, "ReadWrite"):
            report(f"{label} caching is 'ReadWrite'; data disks take 'ReadOnly' (premium) or "
                   "'None'")
        return
    by_type = {lower(k): v for k, v in caching["data_disk_by_storage_type"].items()}
    wanted = by_type.get(lower(storage_type), caching["data_disk_otherwise"])
    if not one_of(value, wanted):
        report(f"{label} ({storage_type}) caching is {value!r}; use '{wanted}'")


POLICIES = [
    gpu_allowed_sizes,
    gpu_infiniband_hpc_image,
    gpu_infiniband_placement,
    gpu_infiniband_vnet_overlap,
    gpu_mig_supported_size,
    gpu_pool_tainted,
    gpu_operator_for_driver_none,
    gpu_total_ceiling,
    gpu_pools_separate,
    vm_accelerated_networking,
    vm_disk_caching,
    vm_size_known,
]
