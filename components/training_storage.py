"""`TrainingFileSystem`: Azure Managed Lustre for ND-series training where BlobFuse2 is not enough.

A Lustre file system in its own subnet (each file system needs one, sized for its capacity),
throughput per TiB fixed by the SKU, so the plan knows the aggregate bandwidth before anything
exists. Optionally Lustre HSM keeps a Blob container of the model storage as the backing
store; the "HPC Cache Resource Provider" principal then needs its two storage roles on the
account first. Facts: gpustack/data/serving.yaml, managed_lustre.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_azure_native import authorization, storagecache

from components.conventions import ComponentContext, stateful_options
from components.identity import assign_role
from components.network import security_rules, service_subnet
from gpustack import facts


def lustre_facts() -> dict[str, Any]:
    """The managed_lustre section of gpustack/data/serving.yaml."""
    found: dict[str, Any] = facts.load("serving")["managed_lustre"]
    return found


@dataclass(frozen=True)
class HsmTarget:
    """The Blob container Lustre HSM archives to, its logging container, and who may write."""

    storage_account_id: pulumi.Input[str]
    # Container ARM ids: the data and a separate logging container, in the same account.
    container_id: pulumi.Input[str]
    logging_container_id: pulumi.Input[str]
    # Object id of the "HPC Cache Resource Provider" service principal in this tenant.
    resource_provider_object_id: pulumi.Input[str]
    import_prefix: str = "/"


@dataclass(frozen=True)
class TrainingFileSystemArgs:
    """SKU and capacity, the dedicated subnet, zone, maintenance window and optional HSM."""

    context: ComponentContext
    vnet_name: pulumi.Input[str]
    subnet_cidr: str
    sku: str = "AMLFS-Durable-Premium-125"
    capacity_tib: int = 16
    zone: str = "1"
    maintenance_day: str = "Sunday"
    maintenance_hour_utc: int = 2
    hsm: HsmTarget | None = None
    # Other writers of the VNet's subnets, which the new subnet must wait for.
    subnet_depends_on: Sequence[pulumi.Resource] = ()


class TrainingFileSystem(pulumi.ComponentResource):
    """Azure Managed Lustre in its own subnet, with its expected aggregate throughput."""

    filesystem_id: pulumi.Output[str]
    mgs_address: pulumi.Output[str]
    mount_command: pulumi.Output[str]
    aggregate_mbps: int
    capacity_tib: int

    def __init__(
        self, name: str, args: TrainingFileSystemArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gpustack:storage:TrainingFileSystem", name, None, opts)
        context = args.context
        self._check(args)
        rules = lustre_facts()

        self.subnet = service_subnet(
            self,
            f"{name}-lustre",
            context=context,
            vnet_name=args.vnet_name,
            cidr=args.subnet_cidr,
            rules=security_rules(rules["nsg_rules"]),
            depends_on=args.subnet_depends_on,
        )
        hsm_ready = self._hsm_roles(name, args.hsm)
        self.filesystem = storagecache.AmlFilesystem(
            f"{name}-lustre",
            resource_group_name=context.resource_group_name,
            location=context.location,
            sku=storagecache.SkuNameArgs(name=args.sku),
            storage_capacity_ti_b=float(args.capacity_tib),
            filesystem_subnet=self.subnet.subnet.id,
            zones=[args.zone],
            maintenance_window=storagecache.AmlFilesystemMaintenanceWindowArgs(
                day_of_week=storagecache.MaintenanceDayOfWeekType(args.maintenance_day),
                time_of_day_utc=f"{args.maintenance_hour_utc:02d}:00",
            ),
            hsm=(
                storagecache.AmlFilesystemHsmArgs(
                    settings=storagecache.AmlFilesystemHsmSettingsArgs(
                        container=args.hsm.container_id,
                        logging_container=args.hsm.logging_container_id,
                        import_prefix=args.hsm.import_prefix,
                    )
                )
                if args.hsm is not None
                else None
            ),
            tags=dict(context.tags),
            # Training data and checkpoints live here between HSM archives.
            opts=stateful_options(self, context, depends_on=hsm_ready),
        )

        self.aggregate_mbps = facts.lustre_aggregate_mbps(args.sku, args.capacity_tib)
        self.capacity_tib = args.capacity_tib
        self.filesystem_id = self.filesystem.id
        client = self.filesystem.client_info
        self.mgs_address = client.apply(lambda info: (info.mgs_address or "") if info else "")
        self.mount_command = client.apply(lambda info: (info.mount_command or "") if info else "")
        self.register_outputs(
            {
                "filesystemId": self.filesystem_id,
                "mgsAddress": self.mgs_address,
                "aggregateMBps": self.aggregate_mbps,
                "capacityTiB": self.capacity_tib,
            }
        )

    @staticmethod
    def _check(args: TrainingFileSystemArgs) -> None:
        sku = facts.lustre_sku(args.sku)
        low, high, step = sku["min_tib"], sku["max_tib"], sku["increment_tib"]
        if not low <= args.capacity_tib <= high or args.capacity_tib % step:
            raise ValueError(
                f"{args.sku} takes {low} to {high} TiB in steps of {step}; got {args.capacity_tib}"
            )
        prefix = ipaddress.ip_network(args.subnet_cidr).prefixlen
        wanted = facts.lustre_subnet_prefix(args.capacity_tib)
        if prefix > wanted:
            raise ValueError(
                f"subnet {args.subnet_cidr} is a /{prefix}; {args.capacity_tib} TiB needs /{wanted}"
                " or larger"
            )

    def _hsm_roles(self, name: str, hsm: HsmTarget | None) -> list[authorization.RoleAssignment]:
        """The storage roles the Lustre resource provider needs before the file system exists."""
        if hsm is None:
            return []
        return [
            assign_role(
                self,
                f"{name}-hsm-{role.replace('_', '-')}",
                principal_id=hsm.resource_provider_object_id,
                role=role,
                scope=hsm.storage_account_id,
            )
            for role in lustre_facts()["hsm"]["roles"]
        ]
