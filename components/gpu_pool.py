"""`GpuVmPool`: a GPU VM (a developer box) or a GPU VM scale set (scale-out training, inference).

Secure by default: no public IP, SSH keys only, a user-assigned identity for BlobFuse2 and Key
Vault, encryption at host where the size supports it. InfiniBand sizes get the HPC image and one
placement group; the node bootstrap (components/bootstrap.py) makes the GPUs, local NVMe, Blob
storage, NCCL and GPU metrics usable. Scale sets use Uniform orchestration: it is the mode where
`singlePlacementGroup` is an input (see gpustack/data/vm_pools.yaml, scale_set).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
from pulumi_azure_native import compute, managedidentity, monitor, network

from components.bootstrap import BlobMounts, NodeBootstrap, encode_custom_data, render_cloud_init
from components.conventions import BlobMountTarget, ComponentContext, IdentityRef, child_options
from components.diagnostics import send_diagnostics
from components.monitoring import monitoring_agent_extension
from gpustack import catalog, facts
from gpustack.catalog import VmSize

TOKEN = "gpustack:compute:GpuVmPool"
PoolKind = Literal["vm", "scaleSet"]


def _pool_facts() -> dict[str, Any]:
    return facts.load("vm_pools")


# --- images, disks and capacity: plain decisions the tests pin without declaring resources ---


@dataclass(frozen=True)
class PoolImage:
    """A marketplace image, and whether it already carries the NVIDIA driver."""

    publisher: str
    offer: str
    sku: str
    version: str = "latest"
    gpu_driver_preinstalled: bool = False


def default_image(size: VmSize) -> PoolImage:
    """The Gen2 HPC image for InfiniBand sizes (IB and GPU drivers inside; its ROCm flavour on
    AMD sizes), else Ubuntu 22.04. Arm64 sizes have no default: name an Arm64 image."""
    if size.architecture != "x64":
        raise ValueError(
            f"{size.name} has {size.architecture} CPUs and the toolkit knows no image for "
            "them; set the pool's image to an Arm64 marketplace image"
        )
    if size.has_infiniband and size.gpu_vendor == "AMD":
        entry = facts.load("amd_gpu")["hpc_image"]
    else:
        entry = _pool_facts()["images"]["hpc" if size.has_infiniband else "ubuntu"]
    return PoolImage(
        publisher=entry["publisher"],
        offer=entry["offer"],
        sku=entry["sku"],
        version=entry["version"],
        gpu_driver_preinstalled=entry["gpu_driver_preinstalled"],
    )


def uses_ephemeral_os_disk(size: VmSize, os_disk_gb: int, wanted: bool = True) -> bool:
    """True when the OS disk fits the size's local disk (its largest ephemeral OS disk)."""
    return wanted and size.max_ephemeral_os_disk_gib >= os_disk_gb


@dataclass(frozen=True)
class ScaleCapacity:
    """What a pool holds at one instance count."""

    instances: int
    gpus: int
    vram_gb: float
    vcpus: int

    def as_dict(self) -> dict[str, Any]:
        """camelCase, as outputs and the plan report carry it."""
        return {
            "instances": self.instances,
            "gpus": self.gpus,
            "vramGb": self.vram_gb,
            "vcpus": self.vcpus,
        }


@dataclass(frozen=True)
class PoolCapacity:
    """GPUs, VRAM and vCPUs of a pool at min and max scale, and the quota the vCPUs draw on."""

    vm_size: str
    gpu_model: str
    # Spot VMs draw on the regional spot quota, regular ones on the size's family quota.
    quota_family: str
    spot: bool
    minimum: ScaleCapacity
    maximum: ScaleCapacity

    def vcpus_by_quota_family(self) -> dict[str, dict[str, int]]:
        """{quota family: {"min": vCPUs, "max": vCPUs}}."""
        return {self.quota_family: {"min": self.minimum.vcpus, "max": self.maximum.vcpus}}

    def as_dict(self) -> dict[str, Any]:
        """camelCase, as outputs and the plan report carry it."""
        return {
            "vmSize": self.vm_size,
            "gpuModel": self.gpu_model,
            "quotaFamily": self.quota_family,
            "spot": self.spot,
            "min": self.minimum.as_dict(),
            "max": self.maximum.as_dict(),
            "vcpusByQuotaFamily": self.vcpus_by_quota_family(),
        }


def pool_capacity(size: VmSize, min_count: int, max_count: int, spot: bool) -> PoolCapacity:
    """Capacity of `min_count`..`max_count` instances of `size`."""

    def at(instances: int) -> ScaleCapacity:
        return ScaleCapacity(
            instances=instances,
            gpus=instances * size.gpu_count,
            vram_gb=instances * size.total_vram_gb,
            vcpus=instances * size.vcpus,
        )

    return PoolCapacity(
        vm_size=size.name,
        gpu_model=size.gpu_model or "",
        quota_family=_pool_facts()["spot"]["quota_family"] if spot else size.quota_family,
        spot=spot,
        minimum=at(min_count),
        maximum=at(max_count),
    )


# --- arguments ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AutoscaleRules:
    """Azure Monitor autoscale on average CPU: out by one above, in by one below, down to min."""

    scale_out_cpu_percent: int = 70
    scale_in_cpu_percent: int = 20
    window_minutes: int = 10
    cooldown_minutes: int = 10


@dataclass(frozen=True)
class GpuVmPoolArgs:
    """One GPU VM (`kind="vm"`) or scale set (`kind="scaleSet"`) on the GPU subnet."""

    context: ComponentContext
    vm_size: str
    subnet_id: pulumi.Input[str]
    ssh_public_key: str
    # The identity nodes run as; None creates one for the pool.
    identity: IdentityRef | None = None
    # Blob containers to mount with BlobFuse2; None mounts nothing.
    storage: BlobMountTarget | None = None
    kind: PoolKind = "scaleSet"
    purpose: str = "training"
    min_count: int = 0
    max_count: int = 1
    # Instances at deploy time; None starts at min_count.
    initial_count: int | None = None
    spot: bool = False
    # None: the size's default image (HPC for InfiniBand, else Ubuntu 22.04 + driver extension).
    image: PoolImage | None = None
    proximity_placement_group: bool = False
    admin_username: str = "azureuser"
    os_disk_gb: int = 128
    # Ephemeral OS disk where the size has room; False keeps a managed disk (stop-deallocate).
    ephemeral_os_disk: bool = True
    # Scale sets only; None leaves the instance count to the operator.
    autoscale: AutoscaleRules | None = field(default_factory=AutoscaleRules)
    blob_cache: Literal["block", "file"] = "block"
    # The storage account has a hierarchical namespace (ADLS Gen2).
    blob_hierarchical_namespace: bool = True
    # An On-demand Capacity Reservation Group (components/capacity_reservation.py) the VMs use.
    capacity_reservation_group_id: pulumi.Input[str] | None = None
    # The group's reservations: a VM naming the group fails unless one matches already.
    depends_on: Sequence[pulumi.Resource] = ()
    # Install the Azure Monitor Agent, authenticating as `identity`. It collects only what a
    # data collection rule associated with the pool asks for (VmPoolMonitoring), so the stack
    # turns it on for the pools it collects from.
    monitoring_agent: bool = False

    @property
    def instances_at_deploy(self) -> int:
        """Instances the pool is created with."""
        return self.min_count if self.initial_count is None else self.initial_count


def _check(name: str, args: GpuVmPoolArgs, size: VmSize) -> None:
    """Refuse argument combinations Azure would reject later, naming the pool."""
    if not 0 <= args.min_count <= args.instances_at_deploy <= args.max_count:
        raise ValueError(
            f"pool {name}: need 0 <= min_count ({args.min_count}) <= initial count "
            f"({args.instances_at_deploy}) <= max_count ({args.max_count})"
        )
    if args.kind == "vm" and args.max_count != 1:
        raise ValueError(f"pool {name}: kind 'vm' is one VM; max_count is {args.max_count}")
    if args.capacity_reservation_group_id is not None:
        # Capacity reservations refuse these deployment types (capacity_reservations.yaml).
        blocked = {
            "spot": args.spot,
            "proximity_placement_group": args.proximity_placement_group,
            "single_placement_group": args.kind == "scaleSet" and size.has_infiniband,
        }
        unsupported = facts.load("capacity_reservations")["unsupported_with"]
        for key, used in blocked.items():
            if used:
                raise ValueError(
                    f"pool {name}: a capacity reservation cannot be used with {unsupported[key]}"
                )
        if not size.capacity_reservation:
            raise ValueError(f"pool {name}: {size.name} does not support capacity reservations")
    prefix_max: int = _pool_facts()["scale_set"]["computer_name_prefix_max"]
    if args.kind == "scaleSet" and len(name) > prefix_max:
        raise ValueError(
            f"pool {name}: a scale set's computer name prefix is at most {prefix_max} characters"
        )


# --- the component --------------------------------------------------------------------------


class GpuVmPool(pulumi.ComponentResource):
    """GPU VMs on the GPU subnet, bootstrapped so their GPUs, NVMe, storage and IB are usable."""

    # Subclasses (components/cpu_pool.py) keep every secure default and change the size rule.
    token = TOKEN

    identity: IdentityRef
    identity_id: pulumi.Output[str]
    identity_principal_id: pulumi.Output[str]
    identity_client_id: pulumi.Output[str]
    resource_id: pulumi.Output[str]
    autoscale_setting_id: pulumi.Output[str] | None
    # What installs the Azure Monitor Agent: the VM's extension, or the scale set (its model
    # carries the extension); None without `monitoring_agent`.
    monitoring_agent: pulumi.Resource | None
    gpu_count: pulumi.Output[int]
    gpus_per_node: int
    capacity: PoolCapacity

    def __init__(
        self, name: str, args: GpuVmPoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.token, name, None, opts)
        size = catalog.lookup(args.vm_size)
        self._check_size(name, size)
        _check(name, args, size)
        pool = _pool_facts()
        context = args.context.with_tags({"gpuPool": name, "purpose": args.purpose})
        self.kind = args.kind
        self.own_identity: managedidentity.UserAssignedIdentity | None = None
        self.size = size
        self.image = args.image or default_image(size)
        self.ephemeral_os_disk = uses_ephemeral_os_disk(
            size, args.os_disk_gb, args.ephemeral_os_disk
        )

        identity = args.identity or self._own_identity(name, context)
        self.identity = identity
        identity_ids: list[pulumi.Input[str]] = [identity.id]
        blob_identity = identity
        if args.storage is not None and args.storage.identity is not None:
            # BlobFuse2 authenticates as the storage's identity; the nodes must carry it too.
            blob_identity = args.storage.identity
            if args.storage.identity != identity:
                identity_ids.append(args.storage.identity.id)

        self.proximity_placement_group = (
            compute.ProximityPlacementGroup(
                f"{name}-ppg",
                resource_group_name=context.resource_group_name,
                location=context.location,
                proximity_placement_group_type=compute.ProximityPlacementGroupType.STANDARD,
                tags=dict(context.tags),
                opts=child_options(self),
            )
            if args.proximity_placement_group
            else None
        )
        custom_data = self._custom_data(args, size, blob_identity)

        self.autoscale_setting: monitor.AutoscaleSetting | None = None
        self.monitoring_agent = None
        if args.kind == "vm":
            self.resource_id = self._vm(name, args, size, context, identity_ids, custom_data)
        else:
            self.resource_id = self._scale_set(name, args, size, context, identity_ids, custom_data)
            if args.autoscale is not None:
                self.autoscale_setting = self._autoscale(name, args, context)
                send_diagnostics(self, f"{name}-autoscale", self.autoscale_setting.id, context)

        self.identity_id = pulumi.Output.from_input(identity.id)
        self.identity_principal_id = pulumi.Output.from_input(identity.principal_id)
        self.identity_client_id = pulumi.Output.from_input(identity.client_id)
        self.autoscale_setting_id = self.autoscale_setting.id if self.autoscale_setting else None
        self.gpus_per_node = size.gpu_count
        self.gpu_count = pulumi.Output.from_input(size.gpu_count * args.instances_at_deploy)
        self.capacity = pool_capacity(size, args.min_count, args.max_count, args.spot)
        self.register_outputs(
            {
                "resourceId": self.resource_id,
                "identityId": self.identity_id,
                "identityPrincipalId": self.identity_principal_id,
                "autoscaleSettingId": self.autoscale_setting_id,
                "gpuCount": self.gpu_count,
                "gpusPerNode": self.gpus_per_node,
                "capacity": self.capacity.as_dict(),
                "image": f"{self.image.publisher}:{self.image.offer}:{self.image.sku}",
                "ephemeralOsDisk": self.ephemeral_os_disk,
                "monitoringAgent": args.monitoring_agent,
                "orchestration": (
                    pool["scale_set"]["orchestration_mode"] if args.kind == "scaleSet" else None
                ),
            }
        )

    def _check_size(self, name: str, size: VmSize) -> None:
        if not size.is_gpu:
            raise ValueError(f"pool {name}: {size.name} has no GPU; GpuVmPool takes a GPU size")

    # -- identity and bootstrap

    def _own_identity(self, name: str, context: ComponentContext) -> IdentityRef:
        identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_group_name=context.resource_group_name,
            location=context.location,
            tags=dict(context.tags),
            opts=child_options(self),
        )
        self.own_identity = identity
        return IdentityRef(
            id=identity.id, principal_id=identity.principal_id, client_id=identity.client_id
        )

    def _custom_data(
        self, args: GpuVmPoolArgs, size: VmSize, blob_identity: IdentityRef
    ) -> pulumi.Output[str]:
        ephemeral_gib = args.os_disk_gb if self.ephemeral_os_disk else 0
        storage = args.storage

        def render(values: list[Any]) -> str:
            account, client_id = values
            blob = (
                BlobMounts(
                    account,
                    client_id,
                    tuple(storage.containers),
                    args.blob_cache,
                    args.blob_hierarchical_namespace,
                )
                if storage is not None and storage.containers
                else None
            )
            return encode_custom_data(render_cloud_init(NodeBootstrap(size, ephemeral_gib, blob)))

        account = storage.account_name if storage is not None else ""
        return pulumi.Output.all(account, blob_identity.client_id).apply(render)

    # -- shared profile pieces

    def _linux(self, args: GpuVmPoolArgs) -> compute.LinuxConfigurationArgs:
        return compute.LinuxConfigurationArgs(
            disable_password_authentication=True,
            ssh=compute.SshConfigurationArgs(
                public_keys=[
                    compute.SshPublicKeyArgs(
                        path=f"/home/{args.admin_username}/.ssh/authorized_keys",
                        key_data=args.ssh_public_key,
                    )
                ]
            ),
        )

    def _image_reference(self) -> compute.ImageReferenceArgs:
        return compute.ImageReferenceArgs(
            publisher=self.image.publisher,
            offer=self.image.offer,
            sku=self.image.sku,
            version=self.image.version,
        )

    def _os_disk_settings(self) -> dict[str, Any]:
        """Caching, ephemeral placement and disk type, shared by VM and scale set OS disks."""
        disk = _pool_facts()["os_disk"]
        if self.ephemeral_os_disk:
            return {
                "caching": compute.CachingTypes(disk["ephemeral_caching"]),
                "diff_disk_settings": compute.DiffDiskSettingsArgs(
                    option=compute.DiffDiskOptions.LOCAL,
                    placement=compute.DiffDiskPlacement(disk["ephemeral_placement"]),
                ),
            }
        return {"caching": compute.CachingTypes(disk["managed_caching"])}

    def _managed_disk_type(self) -> compute.StorageAccountTypes:
        return compute.StorageAccountTypes(_pool_facts()["os_disk"]["managed_storage_account_type"])

    def _priority(self, args: GpuVmPoolArgs) -> dict[str, Any]:
        if not args.spot:
            return {"priority": compute.VirtualMachinePriorityTypes.REGULAR}
        spot = _pool_facts()["spot"]
        return {
            "priority": compute.VirtualMachinePriorityTypes.SPOT,
            "eviction_policy": compute.VirtualMachineEvictionPolicyTypes(spot["eviction_policy"]),
            "billing_profile": compute.BillingProfileArgs(max_price=float(spot["max_price"])),
        }

    def _security(self, size: VmSize) -> compute.SecurityProfileArgs | None:
        # Encryption at host also covers the temp disk and an ephemeral OS disk. It needs the
        # subscription feature Microsoft.Compute/EncryptionAtHost registered.
        if not size.encryption_at_host:
            return None
        return compute.SecurityProfileArgs(encryption_at_host=True)

    def _boot_diagnostics(self) -> compute.DiagnosticsProfileArgs:
        # Managed boot diagnostics (no storage account): serial log and console for a node
        # whose bootstrap or GPU health check failed.
        return compute.DiagnosticsProfileArgs(
            boot_diagnostics=compute.BootDiagnosticsArgs(enabled=True)
        )

    def _placement_group(self) -> compute.SubResourceArgs | None:
        if self.proximity_placement_group is None:
            return None
        return compute.SubResourceArgs(id=self.proximity_placement_group.id)

    def _capacity_reservation(
        self, args: GpuVmPoolArgs
    ) -> compute.CapacityReservationProfileArgs | None:
        if args.capacity_reservation_group_id is None:
            return None
        return compute.CapacityReservationProfileArgs(
            capacity_reservation_group=compute.SubResourceArgs(
                id=args.capacity_reservation_group_id
            )
        )

    def _driver_extension(self) -> dict[str, Any] | None:
        """The vendor's driver extension: NVIDIA's on NVIDIA sizes, AMD's on the AMD series its
        manifest lists; none where the image carries the driver."""
        if self.image.gpu_driver_preinstalled or not self.size.is_gpu:
            return None
        if self.size.gpu_vendor == "AMD":
            extension = facts.load("amd_gpu")["driver_extension"]
            if self.size.series not in extension["supported_series"]:
                raise ValueError(
                    f"{self.size.name}: the AMD GPU driver extension does not support the "
                    f"{self.size.series} series; use an image with the AMD driver (ROCm)"
                )
        else:
            extension = _pool_facts()["nvidia_driver_extension"]
        return {
            "publisher": extension["publisher"],
            "type": extension["type"],
            "type_handler_version": extension["type_handler_version"],
            "auto_upgrade_minor_version": extension["auto_upgrade_minor_version"],
        }

    # -- a single VM

    def _vm(
        self,
        name: str,
        args: GpuVmPoolArgs,
        size: VmSize,
        context: ComponentContext,
        identity_ids: list[pulumi.Input[str]],
        custom_data: pulumi.Output[str],
    ) -> pulumi.Output[str]:
        self.nic = network.NetworkInterface(
            f"{name}-nic",
            resource_group_name=context.resource_group_name,
            location=context.location,
            enable_accelerated_networking=size.accelerated_networking,
            # A private address only: no public IP configuration, ever.
            ip_configurations=[
                network.NetworkInterfaceIPConfigurationArgs(
                    name="ipconfig1",
                    primary=True,
                    private_ip_allocation_method=network.IPAllocationMethod.DYNAMIC,
                    subnet=network.SubnetArgs(id=args.subnet_id),
                )
            ],
            tags=dict(context.tags),
            opts=child_options(self),
        )
        self.vm = compute.VirtualMachine(
            f"{name}-vm",
            resource_group_name=context.resource_group_name,
            location=context.location,
            hardware_profile=compute.HardwareProfileArgs(vm_size=size.name),
            identity=compute.VirtualMachineIdentityArgs(
                type=compute.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=identity_ids,
            ),
            network_profile=compute.NetworkProfileArgs(
                network_interfaces=[
                    compute.NetworkInterfaceReferenceArgs(id=self.nic.id, primary=True)
                ]
            ),
            os_profile=compute.OSProfileArgs(
                computer_name=name,
                admin_username=args.admin_username,
                custom_data=custom_data,
                linux_configuration=self._linux(args),
            ),
            storage_profile=compute.StorageProfileArgs(
                image_reference=self._image_reference(),
                os_disk=compute.OSDiskArgs(
                    create_option=compute.DiskCreateOptionTypes.FROM_IMAGE,
                    delete_option=compute.DiskDeleteOptionTypes.DELETE,
                    disk_size_gb=args.os_disk_gb,
                    managed_disk=(
                        None
                        if self.ephemeral_os_disk
                        else compute.ManagedDiskParametersArgs(
                            storage_account_type=self._managed_disk_type()
                        )
                    ),
                    **self._os_disk_settings(),
                ),
            ),
            security_profile=self._security(size),
            diagnostics_profile=self._boot_diagnostics(),
            proximity_placement_group=self._placement_group(),
            capacity_reservation=self._capacity_reservation(args),
            tags=dict(context.tags),
            **self._priority(args),
            # ARM refuses customData changes on an existing VM: a new bootstrap reaches this VM
            # only by replacing it (`pulumi up --replace <urn>`).
            opts=child_options(
                self, depends_on=args.depends_on, ignore_changes=["osProfile.customData"]
            ),
        )
        extension = self._driver_extension()
        driver: compute.VirtualMachineExtension | None = None
        if extension is not None:
            vendor = (size.gpu_vendor or "gpu").lower()
            driver = self.driver_extension = compute.VirtualMachineExtension(
                f"{name}-{vendor}-driver",
                resource_group_name=context.resource_group_name,
                location=context.location,
                vm_name=self.vm.name,
                tags=dict(context.tags),
                opts=child_options(self),
                **extension,
            )
        if args.monitoring_agent:
            agent = monitoring_agent_extension(self.identity.id)
            self.monitoring_agent = compute.VirtualMachineExtension(
                f"{name}-monitoring-agent",
                resource_group_name=context.resource_group_name,
                location=context.location,
                vm_name=self.vm.name,
                # The name Microsoft's templates give it, so the portal and `az vm extension`
                # find it under its type.
                vm_extension_name=agent["type"],
                tags=dict(context.tags),
                # One extension operation on the VM at a time: after the driver's.
                opts=child_options(self, depends_on=[driver] if driver is not None else None),
                **agent,
            )
        return self.vm.id

    # -- a scale set and its autoscale setting

    def _scale_set(
        self,
        name: str,
        args: GpuVmPoolArgs,
        size: VmSize,
        context: ComponentContext,
        identity_ids: list[pulumi.Input[str]],
        custom_data: pulumi.Output[str],
    ) -> pulumi.Output[str]:
        pool = _pool_facts()
        extensions = [
            compute.VirtualMachineScaleSetExtensionArgs(name=extension["type"], **extension)
            for extension in (
                self._driver_extension(),
                # In the model, not a separate VirtualMachineScaleSetExtension: with the Manual
                # upgrade policy, instances created before a model change would never get it.
                monitoring_agent_extension(self.identity.id) if args.monitoring_agent else None,
            )
            if extension is not None
        ]
        self.scale_set = compute.VirtualMachineScaleSet(
            f"{name}-vmss",
            resource_group_name=context.resource_group_name,
            location=context.location,
            orchestration_mode=compute.OrchestrationMode(pool["scale_set"]["orchestration_mode"]),
            # InfiniBand connects only the VMs of one placement group; without IB, several
            # groups let the scale set grow past 100 VMs and find capacity more easily.
            single_placement_group=size.has_infiniband,
            # Overprovisioned extra VMs would draw on scarce GPU quota while they start.
            overprovision=False,
            sku=compute.SkuArgs(name=size.name, tier="Standard", capacity=args.instances_at_deploy),
            # A model change never reimages a running training node; roll instances on purpose.
            upgrade_policy=compute.UpgradePolicyArgs(mode=compute.UpgradeMode.MANUAL),
            identity=compute.VirtualMachineScaleSetIdentityArgs(
                type=compute.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=identity_ids,
            ),
            proximity_placement_group=self._placement_group(),
            virtual_machine_profile=compute.VirtualMachineScaleSetVMProfileArgs(
                os_profile=compute.VirtualMachineScaleSetOSProfileArgs(
                    computer_name_prefix=name,
                    admin_username=args.admin_username,
                    custom_data=custom_data,
                    linux_configuration=self._linux(args),
                ),
                storage_profile=compute.VirtualMachineScaleSetStorageProfileArgs(
                    image_reference=self._image_reference(),
                    os_disk=compute.VirtualMachineScaleSetOSDiskArgs(
                        create_option=compute.DiskCreateOptionTypes.FROM_IMAGE,
                        disk_size_gb=args.os_disk_gb,
                        managed_disk=(
                            None
                            if self.ephemeral_os_disk
                            else compute.VirtualMachineScaleSetManagedDiskParametersArgs(
                                storage_account_type=self._managed_disk_type()
                            )
                        ),
                        **self._os_disk_settings(),
                    ),
                ),
                network_profile=compute.VirtualMachineScaleSetNetworkProfileArgs(
                    network_interface_configurations=[
                        compute.VirtualMachineScaleSetNetworkConfigurationArgs(
                            name=f"{name}-nic",
                            primary=True,
                            enable_accelerated_networking=size.accelerated_networking,
                            # No public_ip_address_configuration: private addresses only.
                            ip_configurations=[
                                compute.VirtualMachineScaleSetIPConfigurationArgs(
                                    name="ipconfig1",
                                    primary=True,
                                    subnet=compute.ApiEntityReferenceArgs(id=args.subnet_id),
                                )
                            ],
                        )
                    ]
                ),
                security_profile=self._security(size),
                diagnostics_profile=self._boot_diagnostics(),
                capacity_reservation=self._capacity_reservation(args),
                extension_profile=(
                    compute.VirtualMachineScaleSetExtensionProfileArgs(extensions=extensions)
                    if extensions
                    else None
                ),
                **self._priority(args),
            ),
            tags=dict(context.tags),
            # With autoscale on, Azure owns the instance count; Pulumi must not reset it.
            opts=child_options(
                self,
                depends_on=args.depends_on,
                ignore_changes=["sku.capacity"] if args.autoscale is not None else [],
            ),
        )
        if args.monitoring_agent:
            self.monitoring_agent = self.scale_set
        return self.scale_set.id

    def _autoscale(
        self, name: str, args: GpuVmPoolArgs, context: ComponentContext
    ) -> monitor.AutoscaleSetting:
        rules = args.autoscale or AutoscaleRules()
        metric = _pool_facts()["autoscale"]
        target = self.scale_set.id

        def rule(
            operator: monitor.ComparisonOperationType,
            threshold: int,
            direction: monitor.ScaleDirection,
        ) -> monitor.ScaleRuleArgs:
            return monitor.ScaleRuleArgs(
                metric_trigger=monitor.MetricTriggerArgs(
                    metric_name=metric["metric_name"],
                    metric_namespace=metric["metric_namespace"],
                    metric_resource_uri=target,
                    operator=operator,
                    statistic=monitor.MetricStatisticType.AVERAGE,
                    threshold=float(threshold),
                    time_aggregation=monitor.TimeAggregationType.AVERAGE,
                    time_grain=metric["time_grain"],
                    time_window=f"PT{rules.window_minutes}M",
                ),
                scale_action=monitor.ScaleActionArgs(
                    direction=direction,
                    type=monitor.ScaleType.CHANGE_COUNT,
                    value="1",
                    cooldown=f"PT{rules.cooldown_minutes}M",
                ),
            )

        return monitor.AutoscaleSetting(
            f"{name}-autoscale",
            resource_group_name=context.resource_group_name,
            location=context.location,
            target_resource_uri=target,
            enabled=True,
            profiles=[
                monitor.AutoscaleProfileArgs(
                    name="cpu",
                    capacity=monitor.ScaleCapacityArgs(
                        minimum=str(args.min_count),
                        maximum=str(args.max_count),
                        # Autoscale applies `default` when it cannot read metrics and the count
                        # is below it; a scale set at 0 emits none. A default above the minimum
                        # would pull a pool that scaled in to 0 straight back up.
                        default=str(args.min_count),
                    ),
                    rules=[
                        rule(
                            monitor.ComparisonOperationType.GREATER_THAN,
                            rules.scale_out_cpu_percent,
                            monitor.ScaleDirection.INCREASE,
                        ),
                        rule(
                            monitor.ComparisonOperationType.LESS_THAN,
                            rules.scale_in_cpu_percent,
                            monitor.ScaleDirection.DECREASE,
                        ),
                    ],
                )
            ],
            tags=dict(context.tags),
            opts=child_options(self),
        )
