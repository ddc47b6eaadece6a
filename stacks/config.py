"""Typed configuration for one environment, read from the stack's structured Pulumi config.

Every key lives in the project namespace (`azure-gpu-stacks:<key>`) of `Pulumi.<stack>.yaml`.
YAML keys are camelCase; Python attributes are snake_case. Unknown keys are errors, and all
problems are reported together in one `ConfigError` naming each key path and the stack file.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args, get_origin

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from gpustack import catalog

PROJECT = "azure-gpu-stacks"

# Azure's InfiniBand (RDMA) back-end network uses this range on IB-capable sizes; a VNet that
# overlaps it breaks RDMA routing. Source: DESIGN.md "Hard-won facts"; Azure HPC networking docs.
INFINIBAND_RESERVED_RANGE = ipaddress.ip_network("172.16.0.0/16")

# Azure reserves 5 addresses in every subnet (network, gateway, 2x DNS, broadcast).
# Source: https://learn.microsoft.com/azure/virtual-network/virtual-networks-faq
AZURE_RESERVED_IPS_PER_SUBNET = 5

# One scale set with singlePlacementGroup=true holds at most 100 VMs; 300 by support request.
# Source: https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-placement-groups
SINGLE_PLACEMENT_GROUP_LIMIT = 100
SINGLE_PLACEMENT_GROUP_LIMIT_ON_REQUEST = 300

Environment = Literal["dev", "staging", "prod"]


class ConfigError(pulumi.RunError):
    """Invalid stack configuration: one message listing every problem with its key path."""

    def __init__(self, stack_file: str, problems: list[str]) -> None:
        self.stack_file = stack_file
        self.problems = problems
        noun = "problem" if len(problems) == 1 else "problems"
        lines = [f"Invalid configuration in {stack_file} ({len(problems)} {noun}):"]
        lines += [f"  - {problem}" for problem in problems]
        lines.append("Fix these keys in the stack file; docs/config.md lists every key.")
        super().__init__("\n".join(lines))


def _check_cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as error:
        raise ValueError(f"must be an IPv4 CIDR such as 10.40.0.0/16 ({error})") from None
    return value


Cidr = Annotated[str, AfterValidator(_check_cidr)]
DnsLabel = Annotated[str, Field(pattern=r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")]
# AKS Linux node pool names: lowercase letters and digits, start with a letter, at most 12.
# Source: https://learn.microsoft.com/azure/aks/create-node-pools#limitations
AksPoolName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{0,11}$")]
AzureRegion = Annotated[str, Field(pattern=r"^[a-z]+[a-z0-9]*$")]
_HEX = "[0-9a-fA-F]"
Guid = Annotated[
    str, Field(pattern=rf"^{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}$")
]


class ConfigModel(BaseModel):
    """Strict base: camelCase keys in YAML, unknown keys rejected, immutable once read."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


def _gpu_size(name: str) -> str:
    size = catalog.lookup(name)
    if not size.is_gpu:
        raise ValueError(f"{size.name} is a CPU size; a GPU pool needs a GPU size from the catalog")
    return size.name


def _cpu_size(name: str) -> str:
    size = catalog.lookup(name)
    if size.is_gpu:
        raise ValueError(f"{size.name} is a GPU size; this pool takes a CPU size (D/E/F series)")
    return size.name


GpuSizeName = Annotated[str, AfterValidator(_gpu_size)]
CpuSizeName = Annotated[str, AfterValidator(_cpu_size)]


# --- network ---------------------------------------------------------------------------------


class NetworkConfig(ConfigModel):
    """The spoke VNet: address space and the subnets every environment has."""

    address_space: Cidr = "10.40.0.0/16"
    system_subnet: Cidr = "10.40.0.0/22"
    gpu_subnet: Cidr = "10.40.4.0/22"
    private_endpoint_subnet: Cidr = "10.40.8.0/24"
    bastion_subnet: Cidr = "10.40.9.0/26"
    extra_subnets: dict[DnsLabel, Cidr] = Field(default_factory=dict)
    nat_gateway: bool = True
    bastion: bool = False
    hub_vnet_id: str | None = None
    # Explicit loosening for dev: the operator's public IPs allowed through storage/vault firewalls.
    allow_operator_ips: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _address_plan(self) -> NetworkConfig:
        space = ipaddress.ip_network(self.address_space)
        if space.overlaps(INFINIBAND_RESERVED_RANGE):
            raise ValueError(
                f"addressSpace {space} overlaps {INFINIBAND_RESERVED_RANGE}, which Azure reserves "
                "for the InfiniBand (RDMA) network; choose another range, e.g. 10.40.0.0/16"
            )
        subnets = {name: ipaddress.ip_network(cidr) for name, cidr in self.subnet_cidrs().items()}
        for name, subnet in subnets.items():
            if not subnet.subnet_of(space):  # type: ignore[arg-type]
                raise ValueError(f"{name} {subnet} is outside addressSpace {space}")
        names = list(subnets)
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                if subnets[first].overlaps(subnets[second]):
                    raise ValueError(
                        f"{first} {subnets[first]} overlaps {second} {subnets[second]}"
                    )
        return self

    def subnet_cidrs(self) -> dict[str, str]:
        """Every subnet this config declares, by its config key."""
        cidrs = {
            "systemSubnet": self.system_subnet,
            "gpuSubnet": self.gpu_subnet,
            "privateEndpointSubnet": self.private_endpoint_subnet,
        }
        if self.bastion:
            cidrs["bastionSubnet"] = self.bastion_subnet
        cidrs.update({f"extraSubnets.{name}": cidr for name, cidr in self.extra_subnets.items()})
        return cidrs


# --- storage and secrets -------------------------------------------------------------------


class StorageConfig(ConfigModel):
    """Model storage: an ADLS Gen2 account with the containers workloads mount."""

    containers: list[DnsLabel] = Field(
        default_factory=lambda: ["datasets", "models", "checkpoints"], min_length=1
    )
    replication: Literal["LRS", "ZRS", "GRS", "GZRS"] = "ZRS"
    checkpoints_cool_after_days: int = Field(default=30, ge=1, le=3650)
    delete_old_versions_after_days: int = Field(default=90, ge=1, le=3650)
    soft_delete_days: int = Field(default=14, ge=1, le=365)
    customer_managed_key: bool = False
    # Estimates for the cost report only; Azure bills what is actually stored.
    estimated_capacity_gb: float = Field(default=1024, ge=0)
    cache: Literal["block", "file"] = "block"


class VaultConfig(ConfigModel):
    """Key Vault: RBAC, purge protection and a soft-delete window."""

    soft_delete_retention_days: int = Field(default=90, ge=7, le=90)


# --- AKS ----------------------------------------------------------------------------------


class MaintenanceWindowConfig(ConfigModel):
    """Weekly window for cluster and node-image upgrades (UTC)."""

    day_of_week: Literal[
        "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"
    ] = "Sunday"
    start_hour: int = Field(default=2, ge=0, le=23)
    duration_hours: int = Field(default=4, ge=4, le=24)


class SystemPoolConfig(ConfigModel):
    """The CPU system pool that runs CoreDNS, metrics and the GPU software's controllers."""

    vm_size: CpuSizeName = "Standard_D4s_v5"
    min_count: int = Field(default=1, ge=1, le=1000)
    max_count: int = Field(default=3, ge=1, le=1000)
    zones: list[Literal["1", "2", "3"]] = Field(default_factory=lambda: ["1", "2", "3"])

    @model_validator(mode="after")
    def _bounds(self) -> SystemPoolConfig:
        if self.min_count > self.max_count:
            raise ValueError(f"minCount {self.min_count} exceeds maxCount {self.max_count}")
        return self


class GpuNodePoolConfig(ConfigModel):
    """One AKS GPU node pool."""

    name: AksPoolName
    vm_size: GpuSizeName
    purpose: Literal["training", "inference"] = "inference"
    min_count: int = Field(default=0, ge=0, le=1000)
    max_count: int = Field(ge=1, le=1000)
    autoscale: bool = True
    spot: bool = False
    # "Install": AKS installs the NVIDIA driver; "None": the GPU Operator does (GPUDirect RDMA).
    driver: Literal["Install", "None"] = "Install"
    mig_profile: Literal["MIG1g", "MIG2g", "MIG3g", "MIG4g", "MIG7g"] | None = None
    time_slicing_replicas: int | None = Field(default=None, ge=2, le=48)
    zones: list[Literal["1", "2", "3"]] | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _pool_rules(self) -> GpuNodePoolConfig:
        size = catalog.lookup(self.vm_size)
        if self.min_count > self.max_count:
            raise ValueError(f"minCount {self.min_count} exceeds maxCount {self.max_count}")
        if self.mig_profile and not size.mig:
            raise ValueError(
                f"migProfile {self.mig_profile} needs a MIG-capable GPU (A100, H100, H200); "
                f"{size.name} has {size.gpu_model}"
            )
        if self.mig_profile and self.time_slicing_replicas:
            raise ValueError("choose migProfile or timeSlicingReplicas, not both")
        return self


class TeamConfig(ConfigModel):
    """A team sharing the cluster: namespace, GPU quota and the data it may touch."""

    name: DnsLabel
    gpu_quota: int = Field(ge=0, le=10000)
    read_containers: list[DnsLabel] = Field(default_factory=lambda: ["models"])
    write_containers: list[DnsLabel] = Field(default_factory=list)
    key_vault_secrets: bool = True


class AksConfig(ConfigModel):
    """The AKS cluster, its system pool, GPU pools, NVIDIA software and teams."""

    enabled: bool = True
    kubernetes_version: str | None = Field(default=None, pattern=r"^\d+\.\d+(\.\d+)?$")
    tier: Literal["Free", "Standard", "Premium"] = "Free"
    private_cluster: bool = False
    authorized_ip_ranges: list[Cidr] = Field(default_factory=list)
    admin_group_object_ids: list[Guid] = Field(default_factory=list)
    auto_upgrade_channel: Literal["patch", "stable", "rapid", "node-image"] = "patch"
    node_os_upgrade_channel: Literal["NodeImage", "SecurityPatch", "Unmanaged"] = "NodeImage"
    maintenance_window: MaintenanceWindowConfig = Field(default_factory=MaintenanceWindowConfig)
    system_pool: SystemPoolConfig = Field(default_factory=SystemPoolConfig)
    gpu_pools: list[GpuNodePoolConfig] = Field(default_factory=list)
    gpu_operator: bool = False
    gpu_operator_version: str = "v25.3.0"
    device_plugin_version: str = "v0.17.1"
    teams: list[TeamConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cluster_rules(self) -> AksConfig:
        names = [pool.name for pool in self.gpu_pools]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"gpuPools names must be unique; repeated: {', '.join(duplicates)}")
        if "system" in names:
            raise ValueError("gpuPools may not be named 'system' (the system pool's name)")
        operator_pools = [p.name for p in self.gpu_pools if p.driver == "None"]
        if operator_pools and not self.gpu_operator:
            raise ValueError(
                f"gpuPools {', '.join(operator_pools)} set driver: None, which leaves the NVIDIA "
                "driver to the GPU Operator; set aks.gpuOperator: true or use driver: Install"
            )
        if not self.private_cluster and not self.authorized_ip_ranges:
            raise ValueError(
                "the API server must be private (privateCluster: true) or limited to "
                "authorizedIpRanges; neither is set"
            )
        return self


# --- VM and scale set pools ---------------------------------------------------------------


class ImageConfig(ConfigModel):
    """A marketplace image reference; overrides the size's default image."""

    publisher: str
    offer: str
    sku: str
    version: str = "latest"


class AutoscaleConfig(ConfigModel):
    """Azure Monitor autoscale thresholds for a scale set (average CPU, percent)."""

    scale_out_cpu_percent: int = Field(default=70, ge=1, le=100)
    scale_in_cpu_percent: int = Field(default=20, ge=0, le=99)
    window_minutes: int = Field(default=10, ge=1, le=720)


class VmPoolConfig(ConfigModel):
    """A GPU VM (a developer box) or a VM scale set (scale-out training or inference)."""

    name: DnsLabel
    vm_size: GpuSizeName
    kind: Literal["vm", "scaleSet"] = "scaleSet"
    purpose: Literal["training", "inference", "development"] = "training"
    min_count: int = Field(default=0, ge=0, le=1000)
    max_count: int = Field(default=1, ge=1, le=1000)
    default_count: int | None = Field(default=None, ge=0, le=1000)
    spot: bool = False
    image: ImageConfig | None = None
    proximity_placement_group: bool = False
    admin_username: str = Field(default="azureuser", pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    ssh_public_key: str = Field(pattern=r"^(ssh-(rsa|ed25519)|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+")
    os_disk_gb: int = Field(default=128, ge=30, le=4095)
    autoscale: AutoscaleConfig = Field(default_factory=AutoscaleConfig)
    mount_containers: list[DnsLabel] = Field(default_factory=lambda: ["models", "datasets"])

    @model_validator(mode="after")
    def _pool_rules(self) -> VmPoolConfig:
        size = catalog.lookup(self.vm_size)
        if self.min_count > self.max_count:
            raise ValueError(f"minCount {self.min_count} exceeds maxCount {self.max_count}")
        default = self.default_count
        if default is not None and not self.min_count <= default <= self.max_count:
            raise ValueError(
                f"defaultCount {default} must lie between minCount {self.min_count} "
                f"and maxCount {self.max_count}"
            )
        if self.kind == "vm" and self.max_count != 1:
            raise ValueError("kind: vm is a single VM; use maxCount: 1 or kind: scaleSet")
        if size.has_infiniband and self.max_count > SINGLE_PLACEMENT_GROUP_LIMIT:
            raise ValueError(
                f"maxCount {self.max_count} exceeds {SINGLE_PLACEMENT_GROUP_LIMIT}: InfiniBand "
                f"({size.name}) needs one placement group, which holds "
                f"{SINGLE_PLACEMENT_GROUP_LIMIT} VMs ({SINGLE_PLACEMENT_GROUP_LIMIT_ON_REQUEST} "
                "through an Azure support request)"
            )
        return self

    @property
    def initial_count(self) -> int:
        """Instances at deploy time: defaultCount, else minCount."""
        return self.min_count if self.default_count is None else self.default_count


# --- monitoring and spend -----------------------------------------------------------------


class MonitoringConfig(ConfigModel):
    """Workspaces, Grafana, alert receivers and alert thresholds."""

    log_retention_days: int = Field(default=30, ge=30, le=730)
    grafana: bool = True
    grafana_admin_group_object_id: Guid | None = None
    alert_emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = Field(
        default_factory=list
    )
    alert_webhooks: list[Annotated[str, Field(pattern=r"^https://")]] = Field(default_factory=list)
    gpu_idle_percent: int = Field(default=10, ge=1, le=100)
    gpu_idle_minutes: int = Field(default=60, ge=5, le=1440)
    gpu_memory_full_percent: int = Field(default=95, ge=50, le=100)
    cache_disk_full_percent: int = Field(default=90, ge=50, le=100)
    # Estimate for the cost report only.
    estimated_log_ingestion_gb_per_day: float = Field(default=1.0, ge=0)


class BudgetConfig(ConfigModel):
    """A monthly Consumption budget with actual and forecast alerts."""

    monthly_amount_usd: float = Field(gt=0)
    actual_alert_percents: list[Annotated[int, Field(ge=1, le=1000)]] = Field(
        default_factory=lambda: [50, 80, 100]
    )
    forecast_alert_percent: int = Field(default=100, ge=1, le=1000)
    start_date: str = Field(default="2026-12-01", pattern=r"^\d{4}-\d{2}-01$")


# --- the environment ----------------------------------------------------------------------


class StackConfig(ConfigModel):
    """One environment: everything `stacks.build` needs, validated before any resource exists."""

    environment: Environment
    location: AzureRegion
    name_prefix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{1,9}$")] = "gpu"
    tags: dict[str, str] = Field(default_factory=dict)
    protect_stateful: bool | None = None
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    vault: VaultConfig = Field(default_factory=VaultConfig)
    aks: AksConfig | None = None
    vm_pools: list[VmPoolConfig] = Field(default_factory=list)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    budget: BudgetConfig

    @field_validator("tags")
    @classmethod
    def _tag_keys(cls, tags: dict[str, str]) -> dict[str, str]:
        # Azure tag names cannot contain these characters. Source:
        # https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources#limitations
        bad = [key for key in tags if re.search(r"[<>%&\\?/]", key) or len(key) > 512]
        if bad:
            raise ValueError(f"tag names may not contain < > % & \\ ? / : {', '.join(bad)}")
        return tags

    @model_validator(mode="after")
    def _stack_rules(self) -> StackConfig:
        names = [pool.name for pool in self.vm_pools]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"vmPools names must be unique; repeated: {', '.join(duplicates)}")
        for pool in self.vm_pools:
            missing = sorted(set(pool.mount_containers) - set(self.storage.containers))
            if missing:
                raise ValueError(
                    f"vmPools {pool.name} mounts {', '.join(missing)}, which storage.containers "
                    f"does not declare ({', '.join(self.storage.containers)})"
                )
        return self

    @property
    def protect(self) -> bool:
        """Whether stateful resources are protected and retained: on in staging and prod."""
        if self.protect_stateful is not None:
            return self.protect_stateful
        return self.environment != "dev"

    @property
    def all_tags(self) -> dict[str, str]:
        """The configured tags plus the ones every resource carries."""
        return {"environment": self.environment, "managedBy": "pulumi", **self.tags}


# --- reading and reporting ----------------------------------------------------------------


def parse_config(raw: Mapping[str, Any], stack_file: str) -> StackConfig:
    """Validate project-namespace config values (camelCase keys, no namespace prefix)."""
    try:
        return StackConfig.model_validate(dict(raw))
    except ValidationError as error:
        problems = [_describe(item) for item in error.errors(include_url=False)]
        raise ConfigError(stack_file, problems) from None


def load_stack_config() -> StackConfig:
    """Read and validate this stack's config from the running Pulumi program."""
    stack_file = f"Pulumi.{pulumi.get_stack()}.yaml"
    prefix = f"{PROJECT}:"
    # The language host passes config in PULUMI_CONFIG; set_all_config (mocks) overrides it.
    values = {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    raw = {
        key[len(prefix) :]: _decode(value)
        for key, value in values.items()
        if key.startswith(prefix)
    }
    return parse_config(raw, stack_file)


def _decode(value: Any) -> Any:
    """Pulumi hands structured config over as JSON text and scalars as plain strings."""
    if not isinstance(value, str):
        return value
    try:
        decoded = json.loads(value)
    except json.JSONDecodeError:
        return value
    return decoded if isinstance(decoded, dict | list) else value


def _describe(item: Mapping[str, Any]) -> str:
    location = tuple(item["loc"])
    path = _key_path(location)
    kind = item["type"]
    given = item.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(location[:-1])
        hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        return f"{path}: unknown key{hint}"
    if kind == "missing":
        return f"{path}: required key is missing"
    message = item["msg"].removeprefix("Value error, ")
    shown = json.dumps(given, default=str)
    if isinstance(given, dict | list) or len(shown) > 60:
        return f"{path}: {message}"
    return f"{path}: {message} (got {shown})"


def _key_path(location: tuple[Any, ...]) -> str:
    path = f"{PROJECT}:"
    for index, part in enumerate(location):
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith(("function-after", "function-")) or part in {"str", "int"}:
            continue
        else:
            path += part if index == 0 else f".{part}"
    return path.rstrip(":") if path.endswith(":") else path


def _allowed_keys(location: tuple[Any, ...]) -> list[str]:
    """The camelCase keys the model at `location` accepts, for 'unknown key' errors."""
    model: Any = StackConfig
    for part in location:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(_snake(part)) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        model = _model_of(field.annotation)
        if model is None:
            return []
    return sorted(field.alias or to_camel(name) for name, field in model.model_fields.items())


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is not None:
        for argument in get_args(annotation):
            found = _model_of(argument)
            if found is not None:
                return found
    return None


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()
