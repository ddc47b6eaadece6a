"""Typed configuration for one environment, read from the stack's structured Pulumi config.

Every key lives in the project namespace (`azure-gpu-stacks:<key>`) of `Pulumi.<stack>.yaml`.
YAML keys are camelCase; Python attributes are snake_case. Unknown keys are errors, and all
problems are reported together in one `ConfigError` naming each key path and the stack file.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import difflib
import ipaddress
import json
import re
import struct
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args, get_origin

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from gpustack import catalog, facts
from gpustack.regions import availability_zone_regions, check_region
from stacks.config_reservations import CapacityReservationConfig, check_capacity_reservations
from stacks.config_yaml import refuse_boolean_numbers

PROJECT = "azure-gpu-stacks"
# Config namespaces of the Pulumi providers a stack file may configure besides this project's.
PROVIDER_NAMESPACES = frozenset({"azure-native", "azure", "azuread", "kubernetes", "pulumi"})
# Deploy-time limits of Azure and Kubernetes, each with its source (data/azure_limits.yaml).
_LIMITS = facts.load("azure_limits")
# One validator may find several problems; they travel in one ValueError, one per line.
_PROBLEM_SEPARATOR = "\n"

# InfiniBand facts (the policy pack checks the same ones), with their sources in
# gpustack/data/policy_facts.yaml: the RDMA back-end network reserves a range that a VNet must
# not overlap, and RDMA needs one placement group (100 VMs; 300 through a support request).
_INFINIBAND = facts.load("policy_facts")["infiniband"]
INFINIBAND_RESERVED_RANGE = ipaddress.ip_network(_INFINIBAND["reserved_range"])
SINGLE_PLACEMENT_GROUP_LIMIT: int = _INFINIBAND["single_placement_group_limit"]
SINGLE_PLACEMENT_GROUP_LIMIT_ON_REQUEST: int = _INFINIBAND[
    "single_placement_group_limit_on_request"
]

# Azure reserves 5 addresses in every subnet (network, gateway, 2x DNS, broadcast).
# Source: https://learn.microsoft.com/azure/virtual-network/virtual-networks-faq
AZURE_RESERVED_IPS_PER_SUBNET = 5

# AKS adds surge nodes during an upgrade: maxSurge defaults to 10% of the pool, fractional
# nodes rounded up. Source: the AgentPoolUpgradeSettings.maxSurge reference in
# pulumi-azure-native 3.29 (AKS API); https://learn.microsoft.com/azure/aks/upgrade-cluster
AKS_DEFAULT_MAX_SURGE_PERCENT = 10
# With Azure CNI Overlay (aks.podCidr) pods take overlay addresses; only nodes use subnet IPs.
# Source: https://learn.microsoft.com/azure/aks/azure-cni-overlay
SUBNET_IPS_PER_NODE = 1

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
    """An IPv4 CIDR with no host bits set."""
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as error:
        raise ValueError(f"must be an IPv4 CIDR such as 10.40.0.0/16 ({error})") from None
    if network.version != 4:
        # Azure CNI overlay, the InfiniBand range check and the subnet arithmetic are IPv4.
        raise ValueError("must be an IPv4 CIDR such as 10.40.0.0/16; IPv6 is not supported")
    return value


def _raise_all(problems: list[str]) -> None:
    """Raise every problem a validator found at once (`_describe` splits them again)."""
    if problems:
        raise ValueError(_PROBLEM_SEPARATOR.join(problems))


class SecretText(str):
    """Text from a config key the stack file holds encrypted (`secure:`, at any depth).

    Pulumi marks the whole top-level key secret; every string inside it is one of these, so
    components can keep it secret, and fields that may hold a secret do not format-check it
    (offline it is a placeholder, not the real value).
    """


def _mark_secret(value: Any) -> Any:
    if isinstance(value, str):
        return SecretText(value)
    if isinstance(value, dict):
        return {key: _mark_secret(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mark_secret(item) for item in value]
    return value


def _secret_or(value: Any, handler: Callable[[Any], Any]) -> Any:
    """May be a secure (encrypted) value in the stack file."""
    if isinstance(value, SecretText):
        return value
    return handler(value)


def _run_checks(*checks: Callable[[], None]) -> None:
    """Run independent checks and raise every problem they find together, not just the first."""
    problems = []
    for check in checks:
        try:
            check()
        except ValueError as error:
            problems.append(str(error))
    _raise_all(problems)


# Marks a string field that a stack file may hold as a `secure:` (encrypted) value.
SecretAllowed = WrapValidator(_secret_or)


def _check_ssh_public_key(value: str) -> str:
    """An OpenSSH public key line of a type Azure accepts (ssh-rsa of 2048 bits or more,
    ssh-ed25519), its key data intact.

    The blob must be the RFC 4253 encoding of the named key type: a truncated or pasted-wrong
    key fails here instead of at `pulumi up`.
    """
    rules = _LIMITS["ssh_public_key"]
    allowed = ", ".join(rules["types"])
    parts = value.split()
    if len(parts) < 2 or parts[0] not in rules["types"]:
        raise ValueError(
            f"must be an OpenSSH public key line '<type> <base64 key> [comment]' with type "
            f"{allowed} (Azure's supported formats)"
        )
    key_type, blob_text = parts[0], parts[1]
    try:
        blob = base64.b64decode(blob_text, validate=True)
        fields = _ssh_fields(blob)
    except (binascii.Error, ValueError, struct.error):
        raise ValueError(
            f"the {key_type} key is truncated or not base64 (RFC 4253 public key blob); paste "
            "the whole line of your .pub file"
        ) from None
    if fields[0] != key_type.encode():
        raise ValueError(f"the key says {key_type} but its data is a {fields[0].decode()!r} key")
    if key_type == "ssh-ed25519" and (len(fields) != 2 or len(fields[1]) != 32):
        raise ValueError("the ssh-ed25519 key data is not a 32-byte key; paste the whole line")
    if key_type == "ssh-rsa":
        if len(fields) != 3:
            raise ValueError("the ssh-rsa key data is incomplete; paste the whole line")
        bits = int.from_bytes(fields[2], "big").bit_length()
        if bits < rules["min_rsa_bits"]:
            raise ValueError(
                f"the ssh-rsa key has {bits} bits; Azure needs at least {rules['min_rsa_bits']}"
            )
    return value


def _ssh_fields(blob: bytes) -> list[bytes]:
    """The length-prefixed strings of an SSH wire-format blob (RFC 4251 section 5)."""
    fields, offset = [], 0
    while offset < len(blob):
        (length,) = struct.unpack(">I", blob[offset : offset + 4])
        offset += 4
        if offset + length > len(blob):
            raise ValueError("truncated")
        fields.append(blob[offset : offset + length])
        offset += length
    if not fields:
        raise ValueError("empty")
    return fields


def _check_admin_username(value: str) -> str:
    """Not a user name Azure refuses for VMs (data/azure_limits.yaml)."""
    rules = _LIMITS["admin_username"]
    if value.lower() in rules["disallowed"]:
        raise ValueError(
            f"{value!r} is a user name Azure refuses for VMs (its disallowed list: "
            f"{', '.join(rules['disallowed'])}); choose another, e.g. azureuser"
        )
    return value


# Node labels the pool components set themselves (components/aks.py, components/cpu_node_pool.py);
# a pool's own label with one of these keys would be silently overwritten.
STACK_NODE_LABELS = (
    "accelerator",
    "gpu-model",
    "purpose",
    "gpu-driver",
    "workload-class",
    "nvidia.com/gpu.deploy.operands",
    "nvidia.com/device-plugin.config",
)
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?)?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def _check_node_labels(labels: dict[str, str]) -> dict[str, str]:
    """Kubernetes label syntax for keys and values; no prefix AKS reserves."""
    rules = _LIMITS["kubernetes_labels"]
    problems = []
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if (
            not name
            or len(name) > rules["name_max_length"]
            or not _LABEL_NAME.fullmatch(name)
            or (prefix and (len(prefix) > rules["prefix_max_length"]
                            or not _DNS_SUBDOMAIN.fullmatch(prefix)))
        ):  # fmt: skip
            problems.append(
                f"label key {key!r} is not a Kubernetes label key: an optional DNS-subdomain "
                f"prefix and '/', then at most {rules['name_max_length']} letters, digits, "
                "'-', '_' or '.', starting and ending with a letter or digit"
            )
        elif key.startswith(tuple(rules["aks_reserved_prefixes"])):
            problems.append(
                f"label key {key!r} uses a prefix AKS reserves "
                f"({', '.join(rules['aks_reserved_prefixes'])})"
            )
        elif key in STACK_NODE_LABELS:
            problems.append(
                f"label key {key!r} is one the stack sets on its pools itself (the NVIDIA "
                f"software and alerts select nodes by it; {', '.join(STACK_NODE_LABELS)}), so "
                "yours would be overwritten; choose another key"
            )
        if len(value) > rules["value_max_length"] or not _LABEL_NAME.fullmatch(value):
            problems.append(
                f"label {key!r} value {value!r} is not a Kubernetes label value: at most "
                f"{rules['value_max_length']} letters, digits, '-', '_' or '.', starting and "
                "ending with a letter or digit"
            )
    _raise_all(problems)
    return labels


def _check_unique(values: list[Any]) -> list[Any]:
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"entries must be unique; repeated: {', '.join(repeated)}")
    return values


_CONTAINER_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


def _check_container_name(value: str) -> str:
    """A blob container name: 3 to 63 lowercase letters, digits and single hyphens, starting and
    ending with a letter or digit."""
    rules = _LIMITS["blob_container_name"]
    if (
        not rules["min_length"] <= len(value) <= rules["max_length"]
        or not _CONTAINER_NAME.fullmatch(value)
    ):
        raise ValueError(
            f"{value!r} is not a blob container name: {rules['min_length']} to "
            f"{rules['max_length']} lowercase letters, digits and hyphens, starting and ending "
            "with a letter or digit, no two hyphens in a row"
        )
    return value


SshPublicKey = Annotated[str, AfterValidator(_check_ssh_public_key), SecretAllowed]
AdminUsername = Annotated[
    str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$"), AfterValidator(_check_admin_username)
]
NodeLabels = Annotated[dict[str, str], AfterValidator(_check_node_labels)]


Cidr = Annotated[str, AfterValidator(_check_cidr)]
DnsLabel = Annotated[str, Field(pattern=r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")]
# A blob container, as Azure Storage names them. Kubernetes names derived from it (the Blob CSI
# StorageClass and PersistentVolume, components/storage.py) are DNS subdomains, which fit.
ContainerName = Annotated[str, AfterValidator(_check_container_name)]
# AKS Linux node pool names: lowercase letters and digits, start with a letter, at most 12.
# Source: https://learn.microsoft.com/azure/aks/create-node-pools#limitations
AksPoolName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{0,11}$")]
AzureRegion = Annotated[str, AfterValidator(check_region)]
_HEX = "[0-9a-fA-F]"
# Object ids (Entra groups) and ARM ids may be kept encrypted in the stack file.
Guid = Annotated[
    str,
    Field(pattern=rf"^{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}$"),
    SecretAllowed,
]


class ConfigModel(BaseModel):
    """Strict base: camelCase keys in YAML, unknown keys rejected, immutable once read."""

    # allow_inf_nan=False: `.inf` and `1e400` are YAML floats, and Azure takes no infinite amount.
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        allow_inf_nan=False,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        return refuse_boolean_numbers(cls, value, info)


def _gpu_size(name: str) -> str:
    """A GPU size from the catalog (gpustack catalog)."""
    size = catalog.lookup(name)
    if not size.is_gpu:
        raise ValueError(f"{size.name} is a CPU size; a GPU pool needs a GPU size from the catalog")
    return size.name


def _cpu_size(name: str) -> str:
    """A CPU size from the catalog (gpustack catalog)."""
    size = catalog.lookup(name)
    if size.is_gpu:
        raise ValueError(f"{size.name} is a GPU size; this pool takes a CPU size (D/E/F series)")
    return size.name


GpuSizeName = Annotated[str, AfterValidator(_gpu_size)]
CpuSizeName = Annotated[str, AfterValidator(_cpu_size)]


def _zone_text(value: Any) -> Any:
    """An availability zone "1", "2" or "3"; the numbers 1, 2 and 3 are read as that text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


# An availability zone; written as a number or as text in the stack file.
Zone = Annotated[Literal["1", "2", "3"], BeforeValidator(_zone_text)]
# A list of zones, each at most once.
Zones = Annotated[list[Zone], AfterValidator(_check_unique)]


def _check_kubernetes_version(value: str) -> str:
    """A Kubernetes minor (or patch) version AKS still creates clusters on: not older than the
    oldest supported minor in data/aks_versions.yaml. Newer minors pass (the data may lag)."""
    versions = facts.load("aks_versions")
    supported = sorted(
        tuple(int(part) for part in minor.split("."))
        for minor in versions["supported_minor_versions"]
    )
    wanted = tuple(int(part) for part in value.split(".")[:2])
    if wanted[0] != supported[0][0] or wanted < supported[0]:
        listed = ", ".join(".".join(map(str, minor)) for minor in supported)
        raise ValueError(
            f"{value} is not a Kubernetes version AKS creates clusters on; supported minors are "
            f"{listed} (gpustack/data/aks_versions.yaml, as of {versions['as_of']}); leave it "
            "unset for the default"
        )
    return value


# "1.34" or "1.34.2": ASCII digits without leading zeros, as AKS lists versions.
KubernetesVersion = Annotated[
    str,
    Field(pattern=r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))?$"),
    AfterValidator(_check_kubernetes_version),
]


# --- network ---------------------------------------------------------------------------------


def _operator_ip(value: str) -> str:
    """A public IPv4 address or CIDR (not /31 or /32)."""
    # Storage firewall IP rules: public IPv4 only, no RFC 1918 ranges, no /31 or /32 (write the
    # bare address). Source: https://learn.microsoft.com/azure/storage/common/storage-network-security
    try:
        addresses = ipaddress.ip_network(value, strict=True)
    except ValueError as error:
        raise ValueError(f"must be a public IPv4 address or CIDR ({error})") from None
    if addresses.version != 4 or not addresses.is_global:
        raise ValueError("must be a public IPv4 address or CIDR, not a private or reserved one")
    if "/" in value and addresses.prefixlen >= 31:
        raise ValueError(f"storage firewalls refuse /31 and /32 ranges; write {addresses[0]}")
    return value


OperatorIp = Annotated[str, AfterValidator(_operator_ip)]

# Names of the subnets the stack itself creates (snet-<name>: stacks/environment.py, and the
# API Management and Managed Lustre subnets of stacks/serving.py). An extraSubnets entry with one
# of them would replace that subnet (NAT egress and all) or fight it over one Azure subnet.
BUILT_IN_SUBNET_NAMES = (
    "system", "gpu", "endpoints", "bastion", "inference-apim", "training-lustre"
)  # fmt: skip


def _subnet_size_problem(key: str, cidr: str) -> str | None:
    """Azure's subnet size range (data/azure_limits.yaml virtual_network), or None when it fits."""
    rules = _LIMITS["virtual_network"]
    smallest = rules["subnet_smallest_prefix_length"]
    largest = rules["subnet_largest_prefix_length"]
    prefix = ipaddress.ip_network(cidr).prefixlen
    if largest <= prefix <= smallest:
        return None
    return (
        f"{key}: {cidr} is a /{prefix}; an Azure subnet is /{largest} to /{smallest} "
        f"(the smallest holds {2 ** (32 - smallest) - AZURE_RESERVED_IPS_PER_SUBNET} usable "
        "addresses)"
    )


def _reserved_overlaps(cidr: str, ranges: Collection[str]) -> list[str]:
    """The ranges of `ranges` that `cidr` overlaps."""
    network = ipaddress.ip_network(cidr)
    return [other for other in ranges if network.overlaps(ipaddress.ip_network(other))]


# ARM id of a virtual network (a hub VNet to peer with).
VnetId = Annotated[
    str,
    Field(
        # ARM ids are case-insensitive: `az` and the portal print resourceGroups, some tools
        # resourcegroups.
        pattern=r"(?i)^/subscriptions/[0-9a-f-]{36}/resourceGroups/[^/]+/providers/"
        r"Microsoft\.Network/virtualNetworks/[^/]+$"
    ),
    SecretAllowed,
]


class NetworkConfig(ConfigModel):
    """The spoke VNet: address space and the subnets every environment has."""

    address_space: Cidr = "10.40.0.0/16"
    system_subnet: Cidr = "10.40.0.0/22"
    gpu_subnet: Cidr = "10.40.4.0/22"
    private_endpoint_subnet: Cidr = "10.40.8.0/24"
    bastion_subnet: Cidr = "10.40.9.0/26"
    extra_subnets: dict[DnsLabel, Cidr] = Field(default_factory=dict)
    # Egress for the system and GPU subnets (they have no default outbound access).
    nat_gateway: bool = True
    # Zones the NAT gateway's public IP spans; [] for regions without availability zones.
    nat_public_ip_zones: Zones = Field(default_factory=lambda: ["1", "2", "3"])
    bastion: bool = False
    bastion_sku: Literal["Basic", "Standard"] = "Standard"
    hub_vnet_id: VnetId | None = None
    # Explicit loosening for dev only: the operator's public IPs allowed through the storage and
    # vault firewalls (which then accept public traffic from these addresses). Off when empty.
    allow_operator_ips: list[OperatorIp] = Field(default_factory=list)

    @model_validator(mode="after")
    def _network_rules(self) -> NetworkConfig:
        _run_checks(self._egress_and_bastion, self._address_plan, self._operator_ip_count)
        return self

    def _operator_ip_count(self) -> None:
        most = _LIMITS["storage_firewall"]["max_ip_rules"]
        if len(self.allow_operator_ips) > most:
            raise ValueError(
                f"allowOperatorIps: {len(self.allow_operator_ips)} addresses; the storage "
                f"account's firewall takes at most {most} IP rules"
            )

    def _egress_and_bastion(self) -> None:
        problems: list[str] = []
        if not self.nat_gateway and self.hub_vnet_id is None:
            problems.append(
                "natGateway: false leaves the subnets without any egress (they have no default "
                "outbound access); keep natGateway: true or peer to a hub (hubVnetId) whose "
                "firewall routes egress"
            )
        bastion_subnet = facts.load("bastion")["subnet"]
        prefix = ipaddress.ip_network(self.bastion_subnet).prefixlen
        if self.bastion and prefix > bastion_subnet["min_prefix_length"]:
            problems.append(
                f"bastionSubnet: {self.bastion_subnet} is a /{prefix}; Azure Bastion needs "
                f"/{bastion_subnet['min_prefix_length']} or larger"
            )
        _raise_all(problems)

    def _address_plan(self) -> None:
        problems: list[str] = []
        space = ipaddress.ip_network(self.address_space)
        if space.overlaps(INFINIBAND_RESERVED_RANGE):
            problems.append(
                f"addressSpace: {space} overlaps {INFINIBAND_RESERVED_RANGE}, which Azure reserves "
                "for the InfiniBand (RDMA) network; choose another range, e.g. 10.40.0.0/16"
            )
        vnet_reserved = _LIMITS["virtual_network"]["reserved_ranges"]
        reserved = _reserved_overlaps(self.address_space, vnet_reserved)
        if reserved:
            problems.append(
                f"addressSpace: {space} overlaps {', '.join(reserved)}, which Azure reserves "
                "(multicast, broadcast, loopback, link-local, its internal DNS) and refuses in a "
                "virtual network"
            )
        taken = sorted(set(self.extra_subnets) & set(BUILT_IN_SUBNET_NAMES))
        for name in taken:
            problems.append(
                f"extraSubnets.{name}: {name!r} is the name of a subnet this stack creates "
                f"({', '.join(BUILT_IN_SUBNET_NAMES)}) and would replace it; choose another name"
            )
        subnets = {name: ipaddress.ip_network(cidr) for name, cidr in self.subnet_cidrs().items()}
        for name, subnet in subnets.items():
            if not subnet.subnet_of(space):  # type: ignore[arg-type]
                problems.append(f"{name}: {subnet} is outside addressSpace {space}")
            size = _subnet_size_problem(name, str(subnet))
            if size:
                problems.append(size)
        names = list(subnets)
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                if subnets[first].overlaps(subnets[second]):
                    problems.append(
                        f"{first}: {subnets[first]} overlaps {second} {subnets[second]}"
                    )
        _raise_all(problems)

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

    containers: list[ContainerName] = Field(
        default_factory=lambda: ["datasets", "models", "checkpoints"], min_length=1
    )
    replication: Literal["LRS", "ZRS", "GRS", "GZRS"] = "ZRS"
    # ADLS Gen2. Azure does not support blob versioning with it, so versioning (and the
    # deleteOldVersionsAfterDays rule) applies only when this is false. See components/storage.py.
    hierarchical_namespace: bool = True
    checkpoints_cool_after_days: int = Field(default=30, ge=1, le=3650)
    delete_old_versions_after_days: int = Field(default=90, ge=1, le=3650)
    # Blob and container soft delete, 1 to 365 days.
    # Source: https://learn.microsoft.com/azure/storage/blobs/soft-delete-blob-overview
    soft_delete_days: int = Field(default=14, ge=1, le=365)
    customer_managed_key: bool = False
    # Estimates for the cost report only; Azure bills what is actually stored.
    estimated_capacity_gb: float = Field(default=1024, ge=0)
    cache: Literal["block", "file"] = "block"

    @field_validator("containers")
    @classmethod
    def _unique_containers(cls, containers: list[str]) -> list[str]:
        # Each container is one resource: a repeated name would be two resources with one URN.
        return _check_unique(containers)

    @model_validator(mode="after")
    def _known_containers(self) -> StorageConfig:
        problems: list[str] = []
        # The access plan (components/identity.py) and the lifecycle rule are built on these.
        missing = [name for name in ("models", "checkpoints") if name not in self.containers]
        if missing:
            problems.append(
                f"containers: must include {' and '.join(missing)} (inference reads models, "
                f"training writes checkpoints); got {', '.join(self.containers)}"
            )
        _raise_all(problems)
        return self


class VaultConfig(ConfigModel):
    """Key Vault: RBAC, purge protection and a soft-delete window (7 to 90 days)."""

    # Source: https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview
    soft_delete_retention_days: int = Field(default=90, ge=7, le=90)


# --- AKS ----------------------------------------------------------------------------------


# Nodes in one AKS node pool (a scale set), data/azure_limits.yaml aks_cluster.
_AKS_POOL_MAX_NODES: int = _LIMITS["aks_cluster"]["max_nodes_per_pool"]


class MaintenanceWindowConfig(ConfigModel):
    """Weekly window for cluster and node-image upgrades (UTC)."""

    day_of_week: Literal[
        "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"
    ] = "Sunday"
    start_hour: int = Field(default=2, ge=0, le=23)
    # AKS rejects auto-upgrade windows shorter than 4 hours.
    # Source: https://learn.microsoft.com/azure/aks/planned-maintenance
    duration_hours: int = Field(default=4, ge=4, le=24)


class SystemPoolConfig(ConfigModel):
    """The CPU system pool that runs CoreDNS, metrics and the GPU software's controllers."""

    vm_size: CpuSizeName = "Standard_D4s_v5"
    min_count: int = Field(default=1, ge=1, le=_AKS_POOL_MAX_NODES)
    max_count: int = Field(default=3, ge=1, le=_AKS_POOL_MAX_NODES)
    zones: Zones = Field(default_factory=lambda: ["1", "2", "3"])
    os_disk_gb: int = Field(default=128, ge=30, le=2048)

    @model_validator(mode="after")
    def _bounds(self) -> SystemPoolConfig:
        problems: list[str] = []
        if self.min_count > self.max_count:
            problems.append(f"minCount: {self.min_count} exceeds maxCount {self.max_count}")
        _raise_all(problems)
        return self


class GpuNodePoolConfig(ConfigModel):
    """One AKS GPU node pool."""

    name: AksPoolName
    vm_size: GpuSizeName
    purpose: Literal["training", "inference"] = "inference"
    min_count: int = Field(default=0, ge=0, le=_AKS_POOL_MAX_NODES)
    max_count: int = Field(ge=1, le=_AKS_POOL_MAX_NODES)
    # With autoscale off the pool is fixed at minCount == maxCount nodes.
    autoscale: bool = True
    spot: bool = False
    # "Install": AKS installs the NVIDIA driver; "None": the GPU Operator does (GPUDirect RDMA).
    driver: Literal["Install", "None"] = "Install"
    mig_profile: Literal["MIG1g", "MIG2g", "MIG3g", "MIG4g", "MIG7g"] | None = None
    time_slicing_replicas: int | None = Field(default=None, ge=2, le=48)
    zones: Zones | None = None
    labels: NodeLabels = Field(default_factory=dict)
    # Ephemeral when the size's cache/temp disk holds it, else a managed disk.
    os_disk_gb: int = Field(default=128, ge=30, le=2048)

    @model_validator(mode="after")
    def _pool_rules(self) -> GpuNodePoolConfig:
        problems: list[str] = []
        size = catalog.lookup(self.vm_size)
        if self.min_count > self.max_count:
            problems.append(f"minCount: {self.min_count} exceeds maxCount {self.max_count}")
        if not self.autoscale and self.min_count != self.max_count:
            problems.append(
                f"autoscale: false fixes the pool size, so minCount ({self.min_count}) must "
                f"equal maxCount ({self.max_count})"
            )
        if self.mig_profile and not size.mig:
            problems.append(
                f"migProfile: {self.mig_profile} needs a MIG-capable GPU (A100, H100, H200); "
                f"{size.name} has {size.gpu_model}"
            )
        if self.mig_profile and self.driver == "None":
            problems.append(
                "migProfile: applied by AKS together with its own NVIDIA driver; with "
                "driver: None partition GPUs through the GPU Operator's MIG manager instead"
            )
        if self.mig_profile and self.time_slicing_replicas:
            problems.append("timeSlicingReplicas: choose it or migProfile, not both")
        if self.driver not in size.aks_gpu_drivers:
            problems.append(
                f"driver: {self.driver} is not usable on {size.name} on AKS (catalog "
                f"aks_gpu_drivers: {', '.join(size.aks_gpu_drivers) or 'none'})"
            )
        if self.zones and not size.zonal:
            problems.append(
                f"zones: {size.name} is not offered in availability zones; remove them"
            )
        if size.has_infiniband and self.max_count > SINGLE_PLACEMENT_GROUP_LIMIT:
            # An AKS node pool is one scale set: the same placement-group limit as a vmPools entry.
            problems.append(
                f"maxCount: {self.max_count} exceeds {SINGLE_PLACEMENT_GROUP_LIMIT}: InfiniBand "
                f"({size.name}) connects only the nodes of one placement group, which holds "
                f"{SINGLE_PLACEMENT_GROUP_LIMIT} VMs ({SINGLE_PLACEMENT_GROUP_LIMIT_ON_REQUEST} "
                "through an Azure support request); split the pool or lower maxCount"
            )
        if self.zones and len(self.zones) > 1 and size.has_infiniband:
            problems.append(
                f"zones: {size.name} uses InfiniBand, which only connects VMs of one placement "
                "group; "
                f"pin the pool to one zone, not {len(self.zones)}"
            )
        _raise_all(problems)
        return self


# Kubernetes resource quantities such as 500m, 2, 1Gi.
Quantity = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")]


def _quantity(text: str) -> Decimal:
    """The value of a Kubernetes quantity such as 500m or 8Gi (suffixes in azure_limits.yaml)."""
    suffixes = _LIMITS["kubernetes_limit_range"]["quantity_suffixes"]
    number = text.rstrip("".join(suffixes))
    return Decimal(number) * Decimal(str(suffixes.get(text[len(number):], 1)))


# Namespaces the cluster or this toolkit's GPU software already use.
RESERVED_NAMESPACES = frozenset(
    {"default", "kube-system", "kube-public", "kube-node-lease", "gpu-operator",
     "gpu-resources", "network-operator"}
)  # fmt: skip


class TeamConfig(ConfigModel):
    """A team sharing the cluster: namespace, GPU quota and the data it may touch."""

    name: DnsLabel
    gpu_quota: int = Field(ge=0, le=10000)
    read_containers: list[ContainerName] = Field(default_factory=lambda: ["models"])
    write_containers: list[ContainerName] = Field(default_factory=list)
    key_vault_secrets: bool = True
    service_account: DnsLabel = "workload"
    # Defaults the LimitRange gives containers that set no requests/limits of their own.
    default_cpu_request: Quantity = "500m"
    default_memory_request: Quantity = "1Gi"
    default_memory_limit: Quantity = "8Gi"

    @model_validator(mode="after")
    def _team_rules(self) -> TeamConfig:
        problems: list[str] = []
        if self.name in RESERVED_NAMESPACES:
            problems.append(
                f"name: {self.name!r} is a namespace the cluster already uses "
                f"({', '.join(sorted(RESERVED_NAMESPACES))}); choose another"
            )
        request, limit = (
            _quantity(self.default_memory_request), _quantity(self.default_memory_limit)
        )
        if request > limit:
            problems.append(
                f"defaultMemoryRequest: {self.default_memory_request} exceeds "
                f"defaultMemoryLimit {self.default_memory_limit}; Kubernetes refuses a container "
                "whose request exceeds its limit, so every container without its own resources "
                "would be refused"
            )
        both = sorted(set(self.read_containers) & set(self.write_containers))
        if both:
            problems.append(
                f"readContainers: {', '.join(both)} are in readContainers and writeContainers; "
                "write access includes read, so list them under writeContainers only"
            )
        _raise_all(problems)
        return self


class AksConfig(ConfigModel):
    """The AKS cluster, its system pool, GPU pools, NVIDIA software and teams."""

    enabled: bool = True
    kubernetes_version: KubernetesVersion | None = Field(
        default=None,
        description="major.minor or major.minor.patch, not older than the oldest minor AKS "
        "supports (gpustack/data/aks_versions.yaml); unset: the default minor",
    )
    tier: Literal["Free", "Standard", "Premium"] = "Free"
    private_cluster: bool = False
    authorized_ip_ranges: list[Cidr] = Field(default_factory=list)
    admin_group_object_ids: list[Guid] = Field(default_factory=list)
    auto_upgrade_channel: Literal["patch", "stable", "rapid", "node-image"] = "patch"
    node_os_upgrade_channel: Literal["NodeImage", "SecurityPatch", "Unmanaged"] = "NodeImage"
    maintenance_window: MaintenanceWindowConfig = Field(
        default_factory=MaintenanceWindowConfig,
        description="Weekly window (UTC) for cluster upgrades (autoUpgradeChannel), and for "
        "node OS image upgrades too unless nodeOsMaintenanceWindow is set.",
    )
    node_os_maintenance_window: MaintenanceWindowConfig | None = Field(
        default=None,
        description="Weekly window (UTC) for node OS image upgrades (nodeOsUpgradeChannel "
        "NodeImage or SecurityPatch); unset, they use maintenanceWindow.",
    )
    # Azure CNI overlay ranges: pods and services live outside the VNet but must not overlap it.
    # Defaults are AKS's own. Source: https://learn.microsoft.com/azure/aks/azure-cni-overlay
    pod_cidr: Cidr = "10.244.0.0/16"
    service_cidr: Cidr = "10.0.0.0/16"
    system_pool: SystemPoolConfig = Field(default_factory=SystemPoolConfig)
    gpu_pools: list[GpuNodePoolConfig] = Field(default_factory=list)
    gpu_operator: bool = False
    # NVIDIA GPU Operator Helm chart (helm.ngc.nvidia.com/nvidia). Its dcgm-exporter predates the
    # 4.9 metric renames (data/dcgm_metrics.yaml). Source:
    # https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/release-notes.html
    gpu_operator_version: str = "v25.3.0"
    # nvcr.io/nvidia/k8s-device-plugin tag; the version AKS's GPU guide deploys. Source:
    # https://learn.microsoft.com/azure/aks/gpu-cluster (azure-aks-docs gpu-cluster.md)
    device_plugin_version: str = "v0.17.1"
    # nvcr.io/nvidia/k8s/dcgm-exporter tag (DCGM 4.2.3, exporter 4.1.3) for driver: Install pools;
    # the default of NVIDIA/dcgm-exporter deployment/values.yaml at commit 9190a38a.
    dcgm_exporter_image_tag: str = "4.2.3-4.1.3-ubuntu22.04"
    # NVIDIA Network Operator chart and the NicClusterPolicy images of the same release, as
    # Azure's AKS InfiniBand guide pins them together. Source:
    # https://github.com/Azure/aks-rdma-infiniband configs/nicclusterpolicy (commit 20f3999f)
    network_operator_version: str = "v25.10.0"
    doca_driver_version: str = "doca3.2.0-25.10-1.2.8.0-2"
    rdma_shared_device_plugin_version: str = "network-operator-v25.10.0"
    teams: list[TeamConfig] = Field(default_factory=list)
    # CPU pools for preprocessing and data ingestion, in the GPU (workload) subnet.
    cpu_pools: list[CpuNodePoolConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cluster_rules(self) -> AksConfig:
        problems: list[str] = []
        names = [pool.name for pool in self.gpu_pools]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            problems.append(f"gpuPools: names must be unique; repeated: {', '.join(duplicates)}")
        if "system" in names:
            problems.append("gpuPools: may not be named 'system' (the system pool's name)")
        operator_pools = [p.name for p in self.gpu_pools if p.driver == "None"]
        if operator_pools and not self.gpu_operator:
            problems.append(
                f"gpuOperator: gpuPools {', '.join(operator_pools)} set driver: None, which "
                "leaves the NVIDIA "
                "driver to the GPU Operator; set aks.gpuOperator: true or use driver: Install"
            )
        if not self.private_cluster and not self.authorized_ip_ranges:
            problems.append(
                "privateCluster: the API server must be private (privateCluster: true) or "
                "limited to "
                "authorizedIpRanges; neither is set"
            )
        teams = [team.name for team in self.teams]
        repeated = sorted({name for name in teams if teams.count(name) > 1})
        if repeated:
            problems.append(f"teams: names must be unique; repeated: {', '.join(repeated)}")
        pods = ipaddress.ip_network(self.pod_cidr)
        services = ipaddress.ip_network(self.service_cidr)
        if pods.overlaps(services):
            problems.append(f"serviceCidr: {services} overlaps podCidr {pods}")
        api_server = _LIMITS["aks_api_server"]
        if self.private_cluster and self.authorized_ip_ranges:
            # AKS refuses them on private clusters; components/aks.py would drop them silently.
            problems.append(
                "authorizedIpRanges: apply to a public API server only (AKS does not take them "
                "on private clusters); remove them, or set privateCluster: false"
            )
        if len(self.authorized_ip_ranges) > api_server["max_authorized_ip_ranges"]:
            problems.append(
                f"authorizedIpRanges: {len(self.authorized_ip_ranges)} ranges; AKS takes at most "
                f"{api_server['max_authorized_ip_ranges']} (summarise them into wider ranges)"
            )
        problems += self._cluster_size_problems()
        _raise_all(problems)
        return self

    def _cluster_size_problems(self) -> list[str]:
        limits = _LIMITS["aks_cluster"]
        problems = []
        pools = 1 + len(self.gpu_pools) + len(self.cpu_pools)
        if pools > limits["max_node_pools"]:
            problems.append(
                f"gpuPools: {pools} node pools with the system pool and cpuPools; an AKS "
                f"cluster holds at most {limits['max_node_pools']}"
            )
        nodes = self.system_pool.max_count + sum(
            pool.max_count for pool in [*self.gpu_pools, *self.cpu_pools]
        )
        if nodes > limits["max_nodes"]:
            problems.append(
                f"gpuPools: the pools' maxCount add up to {nodes} nodes with the system pool "
                f"and cpuPools; an AKS cluster holds at most {limits['max_nodes']}"
            )
        return problems


# --- VM and scale set pools ---------------------------------------------------------------


ImageName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class ImageConfig(ConfigModel):
    """A marketplace image reference; overrides the size's default image."""

    # Marketplace names: letters, digits, '.', '_' and '-'. The version is Major.Minor.Build
    # (decimal numbers) or "latest". Source: ImageReference in
    # https://learn.microsoft.com/rest/api/compute/virtual-machines/create-or-update#imagereference
    publisher: ImageName
    offer: ImageName
    sku: ImageName
    version: str = Field(default="latest", pattern=r"^(latest|[0-9]+\.[0-9]+\.[0-9]+)$")
    # True for images that ship the NVIDIA driver (HPC images); otherwise the pool adds the
    # NVIDIA GPU driver VM extension.
    gpu_driver_preinstalled: bool = False


class AutoscaleConfig(ConfigModel):
    """Azure Monitor autoscale for a scale set on average CPU (percent): out above, in below.

    Azure takes a metric window of 5 minutes to 12 hours and a cooldown of 1 minute to 1 week.
    Source: https://learn.microsoft.com/rest/api/monitor/autoscale-settings/create-or-update
    """

    enabled: bool = True
    scale_out_cpu_percent: int = Field(default=70, ge=1, le=100)
    scale_in_cpu_percent: int = Field(default=20, ge=0, le=99)
    window_minutes: int = Field(default=10, ge=5, le=720)
    cooldown_minutes: int = Field(default=10, ge=1, le=10080)

    @model_validator(mode="after")
    def _thresholds(self) -> AutoscaleConfig:
        problems: list[str] = []
        if self.scale_in_cpu_percent >= self.scale_out_cpu_percent:
            problems.append(
                f"scaleInCpuPercent: {self.scale_in_cpu_percent} must be below "
                f"scaleOutCpuPercent {self.scale_out_cpu_percent}, or the pool flaps"
            )
        _raise_all(problems)
        return self

    @classmethod
    def for_purpose(cls, purpose: str) -> AutoscaleConfig:
        """Defaults per purpose: a GPU-bound training job can run at low CPU, so training pools
        scale in only when nearly idle for half an hour."""
        if purpose == "training":
            return cls(scale_in_cpu_percent=5, window_minutes=30)
        return cls()


class VmPoolConfig(ConfigModel):
    """A GPU VM (a developer box) or a VM scale set (scale-out training or inference)."""

    name: DnsLabel = Field(
        description="the VM's host name (kind vm) or its VMs' host name prefix (kind scaleSet)"
    )
    vm_size: GpuSizeName
    kind: Literal["vm", "scaleSet"] = "scaleSet"
    purpose: Literal["training", "inference", "development"] = "training"
    min_count: int = Field(default=0, ge=0, le=1000)
    max_count: int = Field(default=1, ge=1, le=1000)
    # Instances at deploy time (scale sets). Autoscale then moves between min and max.
    default_count: int | None = Field(default=None, ge=0, le=1000)
    spot: bool = False
    image: ImageConfig | None = None
    proximity_placement_group: bool = False
    admin_username: AdminUsername = "azureuser"
    ssh_public_key: SshPublicKey
    os_disk_gb: int = Field(default=128, ge=30, le=4095)
    # Ephemeral OS disk where the size's local disk has room. An ephemeral VM cannot be
    # stop-deallocated: set false for a developer box you stop at night.
    ephemeral_os_disk: bool = True
    # None: the defaults for the pool's purpose (AutoscaleConfig.for_purpose).
    autoscale: AutoscaleConfig | None = None
    mount_containers: list[ContainerName] = Field(default_factory=lambda: ["models", "datasets"])

    @model_validator(mode="after")
    def _pool_rules(self) -> VmPoolConfig:
        problems: list[str] = []
        size = catalog.lookup(self.vm_size)
        if self.min_count > self.max_count:
            problems.append(f"minCount: {self.min_count} exceeds maxCount {self.max_count}")
        default = self.default_count
        if default is not None and not self.min_count <= default <= self.max_count:
            problems.append(
                f"defaultCount: {default} must lie between minCount {self.min_count} "
                f"and maxCount {self.max_count}"
            )
        if self.kind == "vm" and (self.min_count, self.max_count) != (1, 1):
            problems.append(
                "kind: vm is a single VM: use minCount: 1 and maxCount: 1, or kind: scaleSet"
            )
        prefix_max = facts.load("vm_pools")["scale_set"]["computer_name_prefix_max"]
        if self.kind == "scaleSet" and len(self.name) > prefix_max:
            problems.append(
                f"name: {self.name!r} is {len(self.name)} characters; a scale set's name is its "
                f"VMs' computer name prefix, at most {prefix_max} characters"
            )
        if size.architecture != "x64" and self.image is None:
            problems.append(
                f"image: {size.name} has {size.architecture} CPUs: set image to an "
                f"{size.architecture} marketplace image"
            )
        if size.has_infiniband and self.max_count > SINGLE_PLACEMENT_GROUP_LIMIT:
            problems.append(
                f"maxCount: {self.max_count} exceeds {SINGLE_PLACEMENT_GROUP_LIMIT}: InfiniBand "
                f"({size.name}) needs one placement group, which holds "
                f"{SINGLE_PLACEMENT_GROUP_LIMIT} VMs ({SINGLE_PLACEMENT_GROUP_LIMIT_ON_REQUEST} "
                "through an Azure support request)"
            )
        _raise_all(problems)
        return self

    @property
    def autoscale_rules(self) -> AutoscaleConfig:
        """The configured autoscale, else the defaults for the pool's purpose."""
        return self.autoscale or AutoscaleConfig.for_purpose(self.purpose)

    @property
    def initial_count(self) -> int:
        """Instances at deploy time: defaultCount, else minCount."""
        return self.min_count if self.default_count is None else self.default_count


# --- registry, inference entry point, CPU pools, training storage ----------------------------


def _serving_facts(section: str) -> dict[str, Any]:
    """A section of gpustack/data/serving.yaml."""
    found: dict[str, Any] = facts.load("serving")[section]
    return found


class RegistryConfig(ConfigModel):
    """The private container registry: Premium, private endpoint, retention, geo-replicas."""

    enabled: bool = True
    # A second region that replicates every image (Premium geo-replication); None: one region.
    geo_replica_location: AzureRegion | None = None
    # Untagged manifests are purged after this many days (0 to 365; data/serving.yaml).
    untagged_retention_days: int = Field(default=7, ge=0, le=365)
    zone_redundant: bool = True


class ApiConsumerConfig(ConfigModel):
    """One API consumer: its own subscription key and rate limit (rate-limit-by-key)."""

    name: DnsLabel
    calls: int = Field(default=60, ge=1, le=1_000_000)
    renewal_period_seconds: int = Field(default=60, ge=1)

    @model_validator(mode="after")
    def _renewal(self) -> ApiConsumerConfig:
        problems: list[str] = []
        limit = _serving_facts("api_management")["rate_limit_max_renewal_seconds"]
        if self.renewal_period_seconds > limit:
            problems.append(
                f"renewalPeriodSeconds: {self.renewal_period_seconds} exceeds {limit}, the "
                "longest window rate-limit-by-key accepts"
            )
        _raise_all(problems)
        return self


class InferenceConfig(ConfigModel):
    """The private inference path: API Management -> internal NGINX on AKS -> GPU pods."""

    enabled: bool = True
    apim_sku: Literal["Developer", "Premium"] = "Developer"
    apim_units: int = Field(default=1, ge=1)
    # Internal: reachable only from the VNet and networks peered to it. External is an
    # explicit loosening (a public gateway in front of the private backends), never in prod.
    apim_virtual_network: Literal["Internal", "External"] = "Internal"
    # The API Management subnet (its own, with the NSG rules APIM requires); required.
    apim_subnet: Cidr | None = None
    # None: the first of monitoring.alertEmails.
    publisher_email: (
        Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), SecretAllowed] | None
    ) = None
    publisher_name: str = Field(default="ML platform", min_length=1, max_length=100)
    consumers: list[ApiConsumerConfig] = Field(
        default_factory=lambda: [ApiConsumerConfig(name="default")], min_length=1
    )
    # Static private address of the internal NGINX load balancer, in network.systemSubnet;
    # None: the subnet's last usable address (dynamic node addresses are taken from the start).
    ingress_ip: str | None = None
    # The sample model server: an image in this stack's registry, on an AKS GPU pool.
    sample_image: str = Field(
        default="inference/sample-server:v1",
        # A repository of path components (lowercase alphanumerics joined by '.', '_', '__' or
        # '-' runs) and a tag of up to 128 characters, as the OCI distribution reference grammar
        # has them (https://github.com/distribution/reference, reference.go).
        pattern=r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*"
        r":[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
    )
    sample_port: int = Field(default=8000, ge=1, le=65535)
    # None: the first AKS GPU pool with purpose inference (else the first GPU pool).
    sample_gpu_pool: AksPoolName | None = None
    sample_min_replicas: int = Field(default=1, ge=1, le=100)
    sample_max_replicas: int = Field(default=2, ge=1, le=100)
    sample_target_cpu_percent: int = Field(default=70, ge=1, le=100)

    @model_validator(mode="after")
    def _inference_rules(self) -> InferenceConfig:
        problems: list[str] = []
        apim = _serving_facts("api_management")
        most = apim["max_units"][self.apim_sku]
        if self.apim_units > most:
            problems.append(
                f"apimUnits: {self.apim_units}; the {self.apim_sku} tier has at most {most}"
            )
        if self.sample_min_replicas > self.sample_max_replicas:
            problems.append(
                f"sampleMinReplicas: {self.sample_min_replicas} exceeds sampleMaxReplicas "
                f"{self.sample_max_replicas}"
            )
        names = [consumer.name for consumer in self.consumers]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            problems.append(f"consumers: names must be unique; repeated: {', '.join(repeated)}")
        if self.ingress_ip is not None:
            try:
                ipaddress.IPv4Address(self.ingress_ip)
            except ValueError:
                problems.append(f"ingressIp: {self.ingress_ip!r} is not an IPv4 address")
        _raise_all(problems)
        return self

    def apim_subnet_needs(self) -> int:
        """Addresses the API Management subnet needs: Azure's, the units' and the internal LB's."""
        subnet = _serving_facts("api_management")["subnet"]
        internal = (
            subnet["internal_load_balancer_ips"] if self.apim_virtual_network == "Internal" else 0
        )
        return (
            subnet["azure_reserved_ips"]
            + self.apim_units * subnet["ips_per_unit"][self.apim_sku]
            + internal
        )


class CpuNodePoolConfig(ConfigModel):
    """An autoscaled AKS CPU pool for preprocessing and data ingestion (no GPU taint)."""

    name: AksPoolName
    vm_size: CpuSizeName = "Standard_D8ds_v5"
    purpose: Literal["preprocessing", "ingestion"] = "preprocessing"
    min_count: int = Field(default=0, ge=0, le=_AKS_POOL_MAX_NODES)
    max_count: int = Field(ge=1, le=_AKS_POOL_MAX_NODES)
    spot: bool = False
    zones: Zones | None = None
    labels: NodeLabels = Field(default_factory=dict)
    os_disk_gb: int = Field(default=128, ge=30, le=2048)

    @model_validator(mode="after")
    def _pool_rules(self) -> CpuNodePoolConfig:
        problems: list[str] = []
        if self.min_count > self.max_count:
            problems.append(f"minCount: {self.min_count} exceeds maxCount {self.max_count}")
        if self.zones and not catalog.lookup(self.vm_size).zonal:
            problems.append(
                f"zones: {self.vm_size} is not offered in availability zones; remove them"
            )
        _raise_all(problems)
        return self


class CpuScaleSetConfig(VmPoolConfig):
    """A CPU VM scale set for preprocessing: a `vmPools` entry with a D or E series size."""

    name: DnsLabel = Field(
        max_length=facts.load("vm_pools")["scale_set"]["computer_name_prefix_max"],
        description="the VMs' computer name prefix",
    )
    vm_size: CpuSizeName = "Standard_D8ds_v5"  # type: ignore[assignment]
    kind: Literal["scaleSet"] = "scaleSet"  # type: ignore[assignment]
    purpose: Literal["preprocessing", "ingestion"] = "preprocessing"  # type: ignore[assignment]
    mount_containers: list[ContainerName] = Field(default_factory=lambda: ["datasets"])


LustreSku = Literal[
    "AMLFS-Durable-Premium-40",
    "AMLFS-Durable-Premium-125",
    "AMLFS-Durable-Premium-250",
    "AMLFS-Durable-Premium-500",
]


class TrainingStorageConfig(ConfigModel):
    """Optional Azure Managed Lustre for ND-series training where BlobFuse2 is not enough."""

    enabled: bool = False
    kind: Literal["managedLustre"] = "managedLustre"
    sku: LustreSku = "AMLFS-Durable-Premium-125"
    capacity_tib: int = Field(default=16, ge=1)
    # Its own subnet, sized for the capacity (data/serving.yaml); required when enabled.
    subnet: Cidr | None = None
    zone: Zone = "1"
    maintenance_day: Literal[
        "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"
    ] = "Sunday"
    maintenance_hour_utc: int = Field(default=2, ge=0, le=23)
    # Lustre HSM with a Blob container of the model storage as backing store.
    hsm: bool = False
    hsm_container: DnsLabel = "datasets"

    @model_validator(mode="after")
    def _lustre_rules(self) -> TrainingStorageConfig:
        problems: list[str] = []
        sku = facts.lustre_sku(self.sku)
        low, high, step = sku["min_tib"], sku["max_tib"], sku["increment_tib"]
        if not low <= self.capacity_tib <= high or self.capacity_tib % step:
            problems.append(
                f"capacityTib: {self.capacity_tib}; {self.sku} takes {low} to {high} TiB in steps "
                f"of {step} TiB"
            )
        if self.hsm:
            hsm = _serving_facts("managed_lustre")["hsm"]
            problems.append(
                "hsm: true needs Shared Key access on the storage account (Azure Managed Lustre "
                f"blob integration prerequisite, {hsm['source']}), which model storage disables "
                "and the policy pack requires off; leave hsm: false and copy data in from clients"
            )
        _raise_all(problems)
        return self

    def subnet_prefix(self) -> int:
        """The largest prefix length (smallest subnet) Microsoft recommends for the capacity."""
        return facts.lustre_subnet_prefix(self.capacity_tib)


# --- monitoring and spend -----------------------------------------------------------------


# An https URL with a host (action group webhook receivers call it).
_HTTPS_URL = r"^https://[A-Za-z0-9.-]+(:[0-9]+)?([/?][^\s]*)?$"


class MonitoringConfig(ConfigModel):
    """Workspaces, Grafana, alert receivers and the alert thresholds of this environment."""

    log_retention_days: int = Field(default=30, ge=30, le=730)
    grafana: bool = True
    # Entra group granted Grafana Admin on the workspace; without it nobody administers Grafana.
    grafana_admin_group_object_id: Guid | None = None
    # Explicit loosening: reach Grafana over its public endpoint (Entra sign-in still required).
    grafana_public_network_access: bool = False
    alert_emails: list[
        Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), SecretAllowed]
    ] = Field(default_factory=list)
    # A webhook URL often carries its token: a stack file may hold it as a `secure:` value.
    alert_webhooks: list[Annotated[str, Field(pattern=_HTTPS_URL), SecretAllowed]] = Field(
        default_factory=list
    )
    gpu_idle_percent: int = Field(default=10, ge=1, le=100)
    gpu_idle_minutes: int = Field(default=60, ge=5, le=1440)
    gpu_memory_full_percent: int = Field(default=95, ge=50, le=100)
    gpu_memory_full_minutes: int = Field(default=15, ge=1, le=1440)
    node_not_ready_minutes: int = Field(default=10, ge=1, le=1440)
    # How long a pool may sit at its maximum node count before capacity pressure is reported.
    capacity_pressure_minutes: int = Field(default=30, ge=5, le=1440)
    cache_disk_full_percent: int = Field(default=90, ge=50, le=100)
    # Mount points of the BlobFuse2 cache disk on GPU nodes (the node bootstrap's NVMe array or
    # the temp disk); the cache-disk alert watches these.
    cache_mount_paths: list[Annotated[str, Field(pattern=r"^/[A-Za-z0-9_/-]*$")]] = Field(
        default_factory=lambda: ["/mnt", "/mnt/nvme"], min_length=1
    )
    # Estimate for the cost report only.
    estimated_log_ingestion_gb_per_day: float = Field(default=1.0, ge=0)

    @field_validator("alert_emails")
    @classmethod
    def _distinct_receivers(cls, emails: list[str]) -> list[str]:
        # The action group names each e-mail receiver after its address with every run of
        # non-alphanumerics turned into "-" (components/alerts.py); receiver names must be
        # unique in the group, so a.b@x.com and a-b@x.com cannot both be receivers.
        by_name: dict[str, list[str]] = {}
        for address in emails:
            name = "email-" + re.sub(r"[^A-Za-z0-9]+", "-", address).strip("-").lower()
            by_name.setdefault(name, []).append(address)
        problems = [
            f"{' and '.join(addresses)} give the same receiver name {name!r} (receiver names "
            "must be unique in an action group); list each address once"
            for name, addresses in by_name.items()
            if len(addresses) > 1
        ]
        _raise_all(problems)
        return emails


def _months_ahead(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, or the month's last day when it is shorter."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for last in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def _budget_facts() -> dict[str, Any]:
    budget: dict[str, Any] = facts.load("azure_monitor")["budget"]
    return budget


# A notification threshold in percent of the amount: Azure takes more than 0 up to 1000, decimals
# included (data/azure_monitor.yaml budget); whole numbers stay whole.
BudgetPercent = Annotated[
    int | float,
    Field(gt=_budget_facts()["threshold_min"], le=_budget_facts()["threshold_max"]),
]


class BudgetConfig(ConfigModel):
    """A monthly Consumption budget with actual and forecast alerts."""

    monthly_amount_usd: float = Field(gt=0)
    actual_alert_percents: list[BudgetPercent] = Field(
        default_factory=lambda: [50, 80, 100], min_length=1
    )
    # None turns the forecast alert off.
    forecast_alert_percent: BudgetPercent | None = 100
    start_date: str = Field(default="2026-12-01", pattern=r"^[0-9]{4}-[0-9]{2}-01$")

    @model_validator(mode="after")
    def _budget_rules(self) -> BudgetConfig:
        limits = _budget_facts()
        problems: list[str] = []
        percents = self.actual_alert_percents
        if len(set(percents)) != len(percents):
            problems.append(f"actualAlertPercents: has repeated values: {percents}")
        count = len(percents) + (self.forecast_alert_percent is not None)
        if count > limits["max_notifications"]:
            problems.append(
                f"actualAlertPercents: {count} notifications with the forecast alert; a budget "
                f"holds at most {limits['max_notifications']}"
            )
        earliest = dt.date.fromisoformat(limits["earliest_start"])
        try:
            start = dt.date.fromisoformat(self.start_date)
        except ValueError:
            problems.append(f"startDate: {self.start_date} is not a calendar date")
        else:
            if start < earliest:
                problems.append(
                    f"startDate: {self.start_date} is before {earliest}, the earliest a budget "
                    "accepts"
                )
            latest = _months_ahead(dt.date.today(), limits["max_future_start_months"])
            if start > latest:
                problems.append(
                    f"startDate: {self.start_date} is more than "
                    f"{limits['max_future_start_months']} months ahead (after {latest}); Azure "
                    "refuses a budget starting that far in the future"
                )
        _raise_all(problems)
        return self


# --- the environment ----------------------------------------------------------------------


def _check_name_prefix(value: str) -> str:
    """2 to 10 lowercase letters and digits, starting with a letter: it is part of resource names
    (rg-<prefix>-<env>-core, the AKS cluster and DNS prefix aks-<prefix>-<env>, the action
    group's short name)."""
    if not re.fullmatch(r"[a-z][a-z0-9]{1,9}", value):
        raise ValueError(
            f"{value!r} is not a name prefix: 2 to 10 lowercase letters and digits, starting "
            "with a letter; it is part of resource names such as rg-<prefix>-<env>-core and "
            "aks-<prefix>-<env>, whose length and characters Azure limits"
        )
    return value


NamePrefix = Annotated[str, AfterValidator(_check_name_prefix)]


class StackConfig(ConfigModel):
    """One environment: everything `stacks.build` needs, validated before any resource exists."""

    environment: Environment
    location: AzureRegion
    name_prefix: NamePrefix = "gpu"
    tags: dict[str, str] = Field(default_factory=dict)
    protect_stateful: bool | None = None
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    vault: VaultConfig = Field(default_factory=VaultConfig)
    aks: AksConfig | None = None
    vm_pools: list[VmPoolConfig] = Field(default_factory=list)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    budget: BudgetConfig
    # Serving and data preparation: registry, inference entry point, CPU scale sets, Lustre.
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    inference: InferenceConfig | None = None
    cpu_scale_sets: list[CpuScaleSetConfig] = Field(default_factory=list)
    training_storage: TrainingStorageConfig = Field(default_factory=TrainingStorageConfig)
    # On-demand Capacity Reservation Groups and the pools using them (stacks/config_reservations).
    capacity_reservations: list[CapacityReservationConfig] = Field(default_factory=list)

    @field_validator("tags")
    @classmethod
    def _tag_limits(cls, tags: dict[str, str]) -> dict[str, str]:
        # Azure's tag limits (data/azure_limits.yaml): every resource carries these tags plus
        # `environment` and `managedBy`, the storage account included.
        rules = _LIMITS["tags"]
        problems = []
        total = len({"environment", "managedBy", *tags})
        most = min(rules["max_count"], rules["max_count_private_dns_zone"])
        if total > most:
            problems.append(
                f"{len(tags)} tags plus environment and managedBy make {total}; the private DNS "
                f"zones every stack creates take at most {rules['max_count_private_dns_zone']} "
                f"tags (other resources {rules['max_count']})"
            )
        # Tag names are case-insensitive for operations: `Owner` and `owner` are one tag to
        # Azure, and `Environment` would fight the `environment` tag every resource carries.
        by_name: dict[str, list[str]] = {}
        for key in ["environment", "managedBy", *tags]:
            named = by_name.setdefault(key.casefold(), [])
            if key not in named:
                named.append(key)
        for names in by_name.values():
            if len(names) > 1:
                problems.append(
                    f"tag names {' and '.join(repr(n) for n in names)} differ only in case; "
                    "Azure treats tag names case-insensitively (environment and managedBy are "
                    "set on every resource), so keep one spelling"
                )
        forbidden = rules["forbidden_name_characters"]
        for key, value in tags.items():
            shown = key if len(key) <= 40 else key[:37] + "..."
            if any(char in forbidden for char in key):
                problems.append(
                    f"tag name {shown!r} contains one of {' '.join(forbidden)}, which Azure "
                    "refuses in tag names"
                )
            if len(key) > rules["max_name_length_storage"]:
                problems.append(
                    f"tag name {shown!r} is {len(key)} characters; storage accounts take at most "
                    f"{rules['max_name_length_storage']} (other resources "
                    f"{rules['max_name_length']})"
                )
            if not key.strip():
                problems.append("a tag name is empty")
            elif not re.fullmatch(rules["dns_zone_name_pattern"], key):
                problems.append(
                    f"tag name {shown!r}: the private DNS zones this stack creates drop tags "
                    "whose names have spaces, parentheses, ':' or other special or non-ASCII "
                    "characters or start with a digit; use letters, digits, '-', '_' and '.', "
                    "starting with a letter (e.g. costCenter)"
                )
            if len(value) > rules["max_value_length"]:
                problems.append(
                    f"tag {shown!r} value is {len(value)} characters; Azure allows at most "
                    f"{rules['max_value_length']}"
                )
        _raise_all(problems)
        return tags

    @model_validator(mode="after")
    def _cross_field_rules(self, info: ValidationInfo) -> StackConfig:
        """Every rule that spans sections, each run on its own so all problems come out at once.

        On a second pass over a file with broken sections (`parse_config`), the context names
        the sections that failed; rules reading one of them are skipped rather than judged on
        defaults that stand in for what the file says.
        """
        skipped: set[str] = set((info.context or {}).get("failed_sections") or ())
        rules: list[tuple[tuple[str, ...], Callable[[], None]]] = [
            (("vmPools", "cpuScaleSets"), self._unique_vm_pool_names),
            (("vmPools", "cpuScaleSets", "storage"), self._pool_mounts),
            (("aks", "network", "storage"), self._aks_rules),
            (("network", "environment"), self._operator_ips_dev_only),
            (("vault", "environment"), self._prod_vault_retention),
            (("aks", "storage"), self._aks_block_cache),
            (("aks", "network", "vmPools", "cpuScaleSets"), self._subnets_fit),
            (("aks",), self._unique_aks_pool_names),
            (("inference", "aks", "registry", "monitoring", "network", "environment"),
             self._inference_section),
            (("trainingStorage", "network", "inference"), self._lustre_section),
            (("registry", "location"), self._geo_replica_elsewhere),
            (("registry",), self._zonal_geo_replica),
            (("capacityReservations", "vmPools", "aks"), self._reservation_rules),
            (("location", "network", "aks", "storage", "registry", "capacityReservations"),
             self._zones_in_region),
        ]  # fmt: skip
        _run_checks(*(check for keys, check in rules if not skipped.intersection(keys)))
        return self

    def _unique_vm_pool_names(self) -> None:
        # CPU scale sets are VM pools too: one namespace of names, the same mounts.
        names = [pool.name for pool in [*self.vm_pools, *self.cpu_scale_sets]]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(
                f"vmPools, cpuScaleSets: names must be unique across both; repeated: "
                f"{', '.join(duplicates)}"
            )

    def _pool_mounts(self) -> None:
        problems = []
        pools = [("vmPools", self.vm_pools), ("cpuScaleSets", self.cpu_scale_sets)]
        for key, entries in pools:
            for index, pool in enumerate(entries):
                missing = sorted(set(pool.mount_containers) - set(self.storage.containers))
                if missing:
                    problems.append(
                        f"{key}[{index}].mountContainers: pool {pool.name} mounts "
                        f"{', '.join(missing)}, which storage.containers does not declare "
                        f"({', '.join(self.storage.containers)})"
                    )
        _raise_all(problems)

    def _operator_ips_dev_only(self) -> None:
        if self.network.allow_operator_ips and self.environment != "dev":
            raise ValueError(
                f"network.allowOperatorIps: opens the storage and vault firewalls to public "
                f"addresses and is for dev only; remove it from {self.environment}"
            )

    def _prod_vault_retention(self) -> None:
        if self.environment == "prod" and self.vault.soft_delete_retention_days < 90:
            raise ValueError(
                f"vault.softDeleteRetentionDays: is {self.vault.soft_delete_retention_days}; "
                "prod keeps deleted secrets and keys for 90 days"
            )

    def _enabled_aks(self) -> AksConfig | None:
        return self.aks if self.aks is not None and self.aks.enabled else None

    def _aks_block_cache(self) -> None:
        if self._enabled_aks() is not None and self.storage.cache == "file":
            raise ValueError(
                "storage.cache: `file` is for VM pools only; the Blob CSI mounts on AKS use the "
                "block cache, so set storage.cache: block"
            )

    def _subnets_fit(self) -> None:
        aks = self._enabled_aks()
        _run_checks(
            lambda: self._subnet_fits(
                "systemSubnet", self.network.system_subnet, self._system_nodes(aks)
            ),
            lambda: self._subnet_fits("gpuSubnet", self.network.gpu_subnet, self._gpu_nodes(aks)),
        )

    def _unique_aks_pool_names(self) -> None:
        aks = self._enabled_aks()
        if aks is None:
            return
        names = [p.name for p in aks.gpu_pools] + [p.name for p in aks.cpu_pools]
        repeated = sorted({n for n in names if names.count(n) > 1} | ({"system"} & set(names)))
        if repeated:
            raise ValueError(
                f"aks.gpuPools, aks.cpuPools: names must be unique and not 'system'; "
                f"repeated: {', '.join(repeated)}"
            )

    def _inference_section(self) -> None:
        inference = self.inference
        if inference is not None and inference.enabled:
            self._inference_rules(inference, self._enabled_aks(), dict(self.network.subnet_cidrs()))

    def _lustre_section(self) -> None:
        lustre = self.training_storage
        if not lustre.enabled:
            return
        if lustre.subnet is None:
            raise ValueError("trainingStorage.subnet: required; Managed Lustre needs its own")
        taken = dict(self.network.subnet_cidrs())
        inference = self.inference
        if inference is not None and inference.enabled and inference.apim_subnet:
            taken["inference.apimSubnet"] = inference.apim_subnet
        self._dedicated_subnet("trainingStorage.subnet", lustre.subnet, taken)
        prefix = ipaddress.ip_network(lustre.subnet).prefixlen
        if prefix > lustre.subnet_prefix():
            raise ValueError(
                f"trainingStorage.subnet: {lustre.subnet} is a /{prefix}; Microsoft "
                f"recommends /{lustre.subnet_prefix()} or larger for {lustre.capacity_tib} TiB"
            )

    def _zones_in_region(self) -> None:
        """Zonal settings (several on by default) fail in a region without availability zones."""
        if self.location in availability_zone_regions():
            return
        zonal: list[str] = []
        if self.network.nat_gateway and self.network.nat_public_ip_zones:
            zonal.append("network.natPublicIpZones (set [])")
        aks = self._enabled_aks()
        if aks is not None:
            if aks.system_pool.zones:
                zonal.append("aks.systemPool.zones (set [])")
            for key, pools in (("gpuPools", aks.gpu_pools), ("cpuPools", aks.cpu_pools)):
                zonal += [f"aks.{key}[{i}].zones (remove)" for i, p in enumerate(pools) if p.zones]
        if self.storage.replication in ("ZRS", "GZRS"):
            zonal.append(f"storage.replication {self.storage.replication} (use LRS or GRS)")
        if self.registry.enabled and self.registry.zone_redundant:
            zonal.append("registry.zoneRedundant (set false)")
        zonal += [
            f"capacityReservations[{i}].zones (set [])"
            for i, group in enumerate(self.capacity_reservations)
            if group.zones
        ]
        if zonal:
            raise ValueError(
                f"location: {self.location} has no availability zones (gpustack/data/"
                f"azure_regions.yaml), so Azure refuses these zonal settings: {'; '.join(zonal)}"
            )

    def _reservation_rules(self) -> None:
        check_capacity_reservations(self)

    def _geo_replica_elsewhere(self) -> None:
        replica = self.registry.geo_replica_location
        if self.registry.enabled and replica is not None and replica == self.location:
            raise ValueError(
                f"registry.geoReplicaLocation: {replica} is the stack's own location; a "
                "geo-replica must be in another region (or leave geoReplicaLocation unset)"
            )

    def _zonal_geo_replica(self) -> None:
        # components/registry.py gives the replica the registry's zone redundancy.
        registry = self.registry
        replica = registry.geo_replica_location
        if registry.enabled and registry.zone_redundant and replica is not None and (
            replica not in availability_zone_regions()
        ):
            raise ValueError(
                f"registry.geoReplicaLocation: {replica} has no availability zones (gpustack/data/"
                "azure_regions.yaml), and the replica is zone-redundant like the registry; choose "
                "a region with zones, or set registry.zoneRedundant: false"
            )

    def _inference_rules(
        self, inference: InferenceConfig, aks: AksConfig | None, taken: dict[str, str]
    ) -> None:
        if aks is None or not aks.gpu_pools:
            raise ValueError("inference: needs aks with at least one gpuPools entry (the sample)")
        if not self.registry.enabled:
            raise ValueError("registry.enabled: inference pulls its image from the registry")
        pools = [p.name for p in aks.gpu_pools]
        if inference.sample_gpu_pool is not None and inference.sample_gpu_pool not in pools:
            raise ValueError(
                f"inference.sampleGpuPool: {inference.sample_gpu_pool!r} is not an aks gpuPools "
                f"name ({', '.join(pools)})"
            )
        if inference.publisher_email is None and not self.monitoring.alert_emails:
            raise ValueError(
                "inference.publisherEmail: required when monitoring has no alertEmails"
            )
        if self.environment == "prod" and (
            inference.apim_virtual_network != "Internal" or inference.apim_sku != "Premium"
        ):
            raise ValueError(
                f"inference.apimSku: prod runs API Management Premium in Internal VNet mode; got "
                f"{inference.apim_sku} {inference.apim_virtual_network}"
            )
        if inference.apim_subnet is None:
            raise ValueError("inference.apimSubnet: required; API Management needs its own")
        self._dedicated_subnet("inference.apimSubnet", inference.apim_subnet, taken)
        subnet = ipaddress.ip_network(inference.apim_subnet)
        apim = _serving_facts("api_management")["subnet"]
        if subnet.prefixlen > apim["min_prefix_length"] or (
            subnet.num_addresses < inference.apim_subnet_needs()
        ):
            raise ValueError(
                f"inference.apimSubnet: {subnet} is too small: API Management needs /"
                f"{apim['min_prefix_length']} or larger and {inference.apim_subnet_needs()} "
                f"addresses for {inference.apim_units} {inference.apim_sku} unit(s)"
            )
        if inference.ingress_ip is not None:
            system = ipaddress.ip_network(self.network.system_subnet)
            address = ipaddress.ip_address(inference.ingress_ip)
            # Azure keeps the first four addresses and the last one of every subnet.
            if address not in system or address in (*list(system)[:4], system[-1]):
                raise ValueError(
                    f"inference.ingressIp: {address} must be a usable address of "
                    f"network.systemSubnet {system}"
                )

    def _dedicated_subnet(self, key: str, cidr: str, taken: dict[str, str]) -> None:
        space = ipaddress.ip_network(self.network.address_space)
        subnet = ipaddress.ip_network(cidr)
        if not subnet.subnet_of(space):  # type: ignore[arg-type]
            raise ValueError(f"{key}: {subnet} is outside network.addressSpace {space}")
        for other, other_cidr in taken.items():
            if other_cidr and subnet.overlaps(ipaddress.ip_network(other_cidr)):
                raise ValueError(f"{key}: {subnet} overlaps {other} {other_cidr}")

    @staticmethod
    def _surge(max_count: int) -> int:
        return -(-max_count * AKS_DEFAULT_MAX_SURGE_PERCENT // 100)

    def _system_nodes(self, aks: AksConfig | None) -> list[tuple[str, int, int]]:
        """(pool, max nodes, upgrade surge) for every pool in the system subnet."""
        if aks is None:
            return []
        pool = aks.system_pool
        return [("system", pool.max_count, self._surge(pool.max_count))]

    def _gpu_nodes(self, aks: AksConfig | None) -> list[tuple[str, int, int]]:
        """(pool, max nodes, upgrade surge) for every pool in the GPU subnet."""
        node_pools = [*aks.gpu_pools, *aks.cpu_pools] if aks else []
        pools = [(p.name, p.max_count, self._surge(p.max_count)) for p in node_pools]
        # VM pools: no upgrade surge; a scale set reimages in place.
        scale_sets = [*self.vm_pools, *self.cpu_scale_sets]
        return pools + [(p.name, p.max_count, 0) for p in scale_sets]

    @staticmethod
    def _subnet_fits(key: str, cidr: str, pools: list[tuple[str, int, int]]) -> None:
        usable = ipaddress.ip_network(cidr).num_addresses - AZURE_RESERVED_IPS_PER_SUBNET
        needed = sum((nodes + surge) * SUBNET_IPS_PER_NODE for _, nodes, surge in pools)
        if needed > usable:
            parts = ", ".join(
                f"{name} {nodes} + surge {surge}" if surge else f"{name} {nodes}"
                for name, nodes, surge in pools
            )
            raise ValueError(
                f"network.{key}: {cidr} has {usable} usable addresses (Azure reserves "
                f"{AZURE_RESERVED_IPS_PER_SUBNET}); pools need {needed} ({parts}); "
                "use a larger subnet or lower maxCount"
            )

    def _aks_rules(self) -> None:
        aks = self.aks
        if aks is None:
            return
        problems = []
        space = ipaddress.ip_network(self.network.address_space)
        for key, cidr in (("podCidr", aks.pod_cidr), ("serviceCidr", aks.service_cidr)):
            if ipaddress.ip_network(cidr).overlaps(space):
                problems.append(f"aks.{key}: {cidr} overlaps network.addressSpace {space}")
        if aks.enabled:
            problems += self._aks_address_rules(aks)
        for index, team in enumerate(aks.teams):
            wanted = {*team.read_containers, *team.write_containers}
            missing = sorted(wanted - set(self.storage.containers))
            if missing:
                problems.append(
                    f"aks.teams[{index}]: team {team.name} uses containers "
                    f"{', '.join(missing)}, which storage.containers does not declare "
                    f"({', '.join(self.storage.containers)})"
                )
        _raise_all(problems)

    def _aks_address_rules(self, aks: AksConfig) -> list[str]:
        """AKS's reserved ranges, and pod and service ranges large enough for the pools."""
        rules = _LIMITS["aks_network"]
        problems = []
        for key, cidr in (
            ("network.addressSpace", self.network.address_space),
            ("aks.podCidr", aks.pod_cidr),
            ("aks.serviceCidr", aks.service_cidr),
        ):
            reserved = _reserved_overlaps(cidr, rules["reserved_ranges"])
            if reserved:
                problems.append(
                    f"{key}: {cidr} overlaps {', '.join(reserved)}; AKS clusters may not use "
                    f"{', '.join(rules['reserved_ranges'])} for the VNet, pod or service range"
                )
        services = ipaddress.ip_network(aks.service_cidr)
        offset = rules["dns_service_ip_offset"]
        if services.prefixlen < rules["service_cidr_largest_prefix_length"]:
            problems.append(
                f"aks.serviceCidr: {services} is larger than Kubernetes allows; use "
                f"/{rules['service_cidr_largest_prefix_length']} or smaller (e.g. 10.0.0.0/16)"
            )
        elif services.num_addresses <= offset:
            problems.append(
                f"aks.serviceCidr: {services} has {services.num_addresses} addresses; the "
                f"cluster DNS service takes address {offset} of the range, so use a larger range "
                "(e.g. 10.0.0.0/16)"
            )
        # Azure CNI Overlay: every node, surge nodes included, takes a /24 of the pod range.
        node_prefix = rules["overlay_node_prefix_length"]
        pods = ipaddress.ip_network(aks.pod_cidr)
        blocks = 2 ** (node_prefix - pods.prefixlen) if pods.prefixlen <= node_prefix else 0
        nodes = sum(
            count + surge
            for _, count, surge in [*self._system_nodes(aks), *self._aks_pool_nodes(aks)]
        )
        if nodes > blocks:
            problems.append(
                f"aks.podCidr: {pods} holds {blocks} node ranges (/{node_prefix} each, Azure "
                f"CNI Overlay); the node pools reach {nodes} nodes with upgrade surge; use a "
                f"larger podCidr (a /16 holds 256) or lower maxCount"
            )
        return problems

    def _aks_pool_nodes(self, aks: AksConfig) -> list[tuple[str, int, int]]:
        """(pool, max nodes, upgrade surge) for every AKS GPU and CPU pool."""
        return [(p.name, p.max_count, self._surge(p.max_count))
                for p in [*aks.gpu_pools, *aks.cpu_pools]]  # fmt: skip

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


# AksConfig names CpuNodePoolConfig, declared after it: resolve that reference now, so the
# models' field annotations (read by stacks/config_reference.py) are complete.
AksConfig.model_rebuild(force=True)


def parse_config(
    raw: Mapping[str, Any], stack_file: str, problems: list[str] | None = None
) -> StackConfig:
    """Validate project-namespace config values (camelCase keys, no namespace prefix).

    Every problem is reported at once: field-level ones, each section's own rules and the
    rules across sections. `problems` found before (e.g. keys in a misspelt namespace) join them.
    """
    found = list(problems or [])
    try:
        config = StackConfig.model_validate(dict(raw))
    except ValidationError as error:
        items = error.errors(include_url=False)
        found += [text for item in items for text in _describe(item)]
        found += _cross_section_problems(raw, items, found)
        raise ConfigError(stack_file, found) from None
    if found:
        raise ConfigError(stack_file, found)
    return config


# Stand-ins for failed required sections on the second pass (no rule that runs reads them).
_STAND_INS: dict[str, Any] = {
    "environment": "dev",
    "location": "eastus",
    "budget": {"monthlyAmountUsd": 1},
}


def _cross_section_problems(
    raw: Mapping[str, Any], items: list[Any], known: list[str]
) -> list[str]:
    """Rules across sections that a failed first pass never reached: validate again without
    the failed sections, skipping the rules that read them."""
    failed = {str(item["loc"][0]) for item in items if item["loc"]}
    required = {
        field.alias or to_camel(name)
        for name, field in StackConfig.model_fields.items()
        if field.is_required()
    }
    if not failed or not isinstance(raw, Mapping):
        return []
    rest = {key: value for key, value in raw.items() if key not in failed}
    # A failed required section gets a stand-in; every rule reading it is skipped.
    rest.update({key: _STAND_INS[key] for key in required if key in failed or key not in raw})
    try:
        StackConfig.model_validate(rest, context={"failed_sections": failed})
    except ValidationError as error:
        again = [
            text
            for item in error.errors(include_url=False)
            if not item["loc"]
            for text in _describe(item)
        ]
        return [text for text in again if text not in known]
    return []


def validate_stack_values(
    values: Mapping[str, Any],
    stack_file: str,
    project: str = PROJECT,
    secret_keys: Collection[str] = (),
) -> StackConfig:
    """Validate a stack's whole config map (`namespace:key` -> value, as the Pulumi CLI hands it
    to the program): this project's keys, and keys in a namespace that looks like a typo of it.
    Strings under `secret_keys` become `SecretText`."""
    prefix = f"{project}:"
    raw = {
        key[len(prefix) :]: _mark_secret(_decode(value)) if key in secret_keys else _decode(value)
        for key, value in values.items()
        if key.startswith(prefix)
    }
    return parse_config(raw, stack_file, _namespace_problems(values, project))


def _namespace_problems(values: Mapping[str, Any], project: str) -> list[str]:
    """Keys Pulumi would hand to no one: a near-miss of the project namespace, or one of our
    keys in a namespace no provider owns. Pulumi itself ignores them silently."""
    ours = {field.alias or to_camel(name) for name, field in StackConfig.model_fields.items()}
    problems = []
    for full_key in values:
        namespace, _, key = full_key.partition(":")
        if namespace == project or not key or namespace in PROVIDER_NAMESPACES:
            continue
        near = difflib.SequenceMatcher(None, namespace.lower(), project).ratio() >= 0.8
        if near or key.split(".")[0] in ours:
            problems.append(
                f"{full_key}: namespace {namespace!r} is not this project's, so the program "
                f"never reads it; write {project}:{key} (provider namespaces allowed: "
                f"{', '.join(sorted(PROVIDER_NAMESPACES))})"
            )
    return problems


def load_stack_config() -> StackConfig:
    """Read and validate this stack's config from the running Pulumi program."""
    stack_file = f"Pulumi.{pulumi.get_stack()}.yaml"
    # The language host passes config in PULUMI_CONFIG; set_all_config (mocks) overrides it.
    values = {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    secret_keys = {
        *pulumi.runtime.config.get_config_secret_keys_env(),
        *(key for key in values if pulumi.runtime.is_config_secret(key)),
    }
    return validate_stack_values(values, stack_file, secret_keys=secret_keys)


def _decode(value: Any) -> Any:
    """Pulumi hands structured config over as JSON text and scalars as plain strings."""
    if not isinstance(value, str):
        return value
    try:
        decoded = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        return value
    return decoded if isinstance(decoded, dict | list) else value


def _describe(item: Mapping[str, Any]) -> list[str]:
    """One line per problem in a pydantic error item (a rule may report several)."""
    location = tuple(item["loc"])
    path = _key_path(location)
    kind = item["type"]
    given = item.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(location[:-1])
        close = difflib.get_close_matches(str(location[-1]), allowed, n=1, cutoff=0.7)
        hint = f" (did you mean {close[0]}?)" if close else ""
        hint += f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        return [f"{path}: unknown key{hint}"]
    if kind == "missing":
        return [f"{path}: required key is missing"]
    if given is None or (given == "null" and kind.endswith(("_type", "dict_type"))):
        # An empty `key:` in YAML is null; the CLI hands a top-level one over as "null".
        return [f"{path}: has no value (YAML reads an empty `key:` as null); give it one"]
    if kind == "finite_number":
        return [f"{path}: must be a finite number, not infinity or NaN (got {given})"]
    messages = item["msg"].removeprefix("Value error, ").split(_PROBLEM_SEPARATOR)
    if not location:
        # Rules across sections start their message with the key they judge.
        return [f"{PROJECT}:{message}" for message in messages]
    if kind == "value_error" and all(_LEADING_KEY.match(message) for message in messages):
        # A model's own rules start their message with "<key>: " when they judge one key.
        return [_keyed(path, location, message) for message in messages]
    shown = json.dumps(given, default=str)
    if kind == "string_type" and isinstance(given, bool | int | float):
        # `costCenter: 012345` arrives as the number 5349 (YAML octal), `owner: yes` as true.
        return [
            f"{path}: must be text, but YAML read the unquoted value as a "
            f"{'boolean' if isinstance(given, bool) else 'number'} ({shown}); put the value in "
            "quotes so YAML keeps it as written (e.g. \"012345\", \"yes\")"
        ]
    if isinstance(given, dict | list) or len(shown) > 60 or len(messages) > 1:
        return [f"{path}: {message}" for message in messages]
    return [f"{path}: {message} (got {shown})" for message in messages]


_LEADING_KEY = re.compile(r"^([a-z][A-Za-z0-9]*)((?:\.[A-Za-z0-9_-]+)*): (.*)$", re.DOTALL)


def _keyed(path: str, location: tuple[Any, ...], message: str) -> str:
    """`aks.gpuPools[0]` + "minCount: 3 exceeds ..." -> `aks.gpuPools[0].minCount: 3 ...`."""
    match = _LEADING_KEY.match(message)
    if match and match.group(1) in _allowed_keys(location):
        return f"{path}.{match.group(1)}{match.group(2)}: {match.group(3)}"
    return f"{path}: {message}"


def _key_path(location: tuple[Any, ...]) -> str:
    path = f"{PROJECT}:"
    for index, part in enumerate(location):
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith(("function-after", "function-")) or part in {"str", "int", "[key]"}:
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
