"""The node bootstrap of a GPU pool: cloud-init rendered from the files in components/templates/.

The cloud-config's shape, every script, unit and config file lives in a template file; this
module only picks the files a VM size needs, fills in the catalog's numbers with
`string.Template` and encodes the result for `customData`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, Literal

import yaml

from components.storage import BlobCache, blobfuse2_document
from gpustack import facts, yaml_loader
from gpustack.catalog import VmSize

TEMPLATES = Path(__file__).parent / "templates"
CLOUD_INIT_TEMPLATE = "cloud-init.yaml"
CLOUD_CONFIG_HEADER = "#cloud-config"
GENERATED_NOTE = "Rendered by components/bootstrap.py from components/templates/cloud-init.yaml."
# Keys of a write_files entry that the renderer resolves; cloud-init never sees them.
_DIRECTIVES = ("template", "file", "generator", "when", "for_each")
# A key a template renders as null is left out, so the tool's own default applies.
_NULL_KEY = re.compile(r"^[ \t]*[A-Za-z0-9_-]+:[ \t]*null[ \t]*\n", re.MULTILINE)

CacheMode = Literal["block", "file"]


@dataclass(frozen=True)
class BlobMounts:
    """The Blob containers a node mounts with BlobFuse2, and the identity it authenticates as."""

    account_name: str
    client_id: str
    containers: tuple[str, ...]
    cache: CacheMode = "block"
    # ADLS Gen2 accounts mount with BlobFuse2's `adls` storage type.
    hierarchical_namespace: bool = True


@dataclass(frozen=True)
class CacheDisk:
    """Where a node keeps its caches: the NVMe RAID0 array, else the temp disk, else the OS disk."""

    kind: Literal["nvme", "temp", "os"]
    root: str
    # GiB the caches may use; None when the catalog does not know the disks' size.
    capacity_gib: int | None


@dataclass(frozen=True)
class NodeBootstrap:
    """Everything a node's cloud-init is rendered from."""

    size: VmSize
    # GiB of the temp disk an ephemeral OS disk takes (temp disk placement), else 0.
    ephemeral_os_disk_gib: int = 0
    blob: BlobMounts | None = None


def _pool_facts() -> dict[str, Any]:
    return facts.load("vm_pools")


def cache_disk(size: VmSize, ephemeral_os_disk_gib: int = 0) -> CacheDisk:
    """Where `size` keeps caches: its local NVMe (RAID0) if any, else what the OS leaves of temp."""
    node = _pool_facts()["node"]
    if size.nvme_disks > 0:
        capacity = size.nvme_total_gib if size.nvme_disk_gib > 0 else None
        return CacheDisk("nvme", node["nvme_mount"], capacity)
    temp_left = size.temp_disk_gib - ephemeral_os_disk_gib
    if temp_left > 0:
        return CacheDisk("temp", node["temp_disk_mount"], temp_left)
    return CacheDisk("os", "/var/cache/gpustack", None)


def nccl_topology(size: VmSize) -> str | None:
    """The NCCL topology template for an ND size, or None for sizes without one."""
    topology: str | None = _pool_facts()["nccl"]["topology_by_series"].get(size.series)
    return topology


def infiniband_ports(size: VmSize) -> int:
    """InfiniBand ports the health check expects: one link per GPU on IB sizes (catalog)."""
    return size.gpu_count if size.has_infiniband else 0


def cache_sizes_mb(spec: NodeBootstrap) -> tuple[int | None, int]:
    """Disk and memory (MB) each BlobFuse2 mount's cache may use, split across the mounts."""
    blob = _pool_facts()["blobfuse2"]
    mounts = max(1, len(spec.blob.containers) if spec.blob else 1)
    disk = cache_disk(spec.size, spec.ephemeral_os_disk_gib)
    disk_mb = (
        None
        if disk.capacity_gib is None
        else int(disk.capacity_gib * 1024 * blob["cache_disk_fraction"] / mounts)
    )
    memory_mb = int(spec.size.memory_gib * 1024 * blob["block_cache_memory_fraction"] / mounts)
    return disk_mb, memory_mb


def template_values(spec: NodeBootstrap) -> dict[str, str]:
    """The values every template may use (`${name}`), as strings."""
    pool = _pool_facts()
    node, blob = pool["node"], pool["blobfuse2"]
    ctk, health = pool["nvidia_container_toolkit"], pool["health_check"]
    dcgm = pool["dcgm_exporter"]
    disk = cache_disk(spec.size, spec.ephemeral_os_disk_gib)
    disk_mb, memory_mb = cache_sizes_mb(spec)
    pipeline_key = f"{spec.blob.cache if spec.blob else 'block'}_cache_pipeline"
    pipeline = facts.load("blobfuse2")["components"][pipeline_key]
    topology = nccl_topology(spec.size)
    nccl_settings = pool["nccl"]["settings"]
    values: dict[str, Any] = {
        "vm_size": spec.size.name,
        "gpu_count": spec.size.gpu_count,
        "gpu_vendor": spec.size.gpu_vendor or "",
        "ib_ports": infiniband_ports(spec.size),
        "nvme_disks": spec.size.nvme_disks,
        "nvme_mount": node["nvme_mount"],
        "raid_device": node["raid_device"],
        "temp_disk_mount": node["temp_disk_mount"],
        "cache_root": disk.root,
        "blob_mount_root": node["blob_mount_root"],
        "containers": " ".join(spec.blob.containers) if spec.blob else "",
        "blob_cache": spec.blob.cache if spec.blob else "block",
        "storage_type": blob[
            "storage_type_hns"
            if spec.blob is None or spec.blob.hierarchical_namespace
            else "storage_type_flat"
        ],
        "blobfuse2_repo_package": blob["repo_package"],
        "blobfuse2_packages": " ".join(blob["packages"]),
        "components": "[" + ", ".join(pipeline) + "]",
        "cache_disk_mb": "null" if disk_mb is None else disk_mb,
        "cache_memory_mb": memory_mb,
        "account_name": spec.blob.account_name if spec.blob else "",
        "client_id": spec.blob.client_id if spec.blob else "",
        "endpoint": (blob["endpoint"].format(account=spec.blob.account_name) if spec.blob else ""),
        "ctk_gpg_key": ctk["gpg_key"],
        "ctk_apt_list": ctk["apt_list"],
        "ctk_keyring": ctk["keyring"],
        "health_metrics_file": health["metrics_file"],
        "health_tag": health["syslog_tag"],
        "node_exporter_package": health["node_exporter_package"],
        "driver_wait_seconds": health["driver_wait_seconds"],
        "interval_minutes": health["interval_minutes"],
        "port": facts.dcgm_exporter_port(),
        "image": f"{dcgm['image']}:{dcgm['tag']}",
        "nccl_topology": topology or "",
        "topology_path": "/etc/gpustack/nccl-topo.xml",
        "settings": "\n".join(f"{key}={value}" for key, value in nccl_settings.items()),
    }
    return {key: str(value) for key, value in values.items()}


def render_cloud_init(spec: NodeBootstrap) -> str:
    """The node's cloud-config (YAML text starting with `#cloud-config`)."""
    document = yaml_loader.safe_load(_read(CLOUD_INIT_TEMPLATE))
    values = template_values(spec)
    features = {
        "blob": spec.blob is not None and bool(spec.blob.containers),
        "nccl": nccl_topology(spec.size) is not None,
        # CPU pools (components/cpu_pool.py) get no GPU metrics or GPU health check; neither do
        # AMD pools: DCGM and the nvidia-smi health check are NVIDIA-only.
        "gpu": spec.size.is_gpu and spec.size.gpu_vendor == "NVIDIA",
    }
    containers = spec.blob.containers if spec.blob else ()
    files: list[dict[str, Any]] = []
    for entry in document["write_files"]:
        feature = entry.get("when")
        if feature is not None and not features[feature]:
            continue
        each = containers if entry.get("for_each") == "container" else (None,)
        for container in each:
            if entry.get("generator") == "blobfuse2" and spec.blob is not None and container:
                files.append(_blobfuse2_file(entry, spec, container))
                continue
            files.append(_write_file(entry, {**values, "container": container or ""}))
    document["write_files"] = files
    body = yaml.dump(document, Dumper=_CloudConfigDumper, sort_keys=False, width=100)
    return f"{CLOUD_CONFIG_HEADER}\n# {GENERATED_NOTE}\n{body}"


def encode_custom_data(cloud_config: str) -> str:
    """Base64 `customData`, refused when Azure's size limit would reject it."""
    raw = cloud_config.encode("utf-8")
    limit: int = _pool_facts()["custom_data_max_bytes"]
    if len(raw) > limit:
        raise ValueError(
            f"the node bootstrap is {len(raw)} bytes; Azure accepts at most {limit} bytes of "
            "customData. Move content out of components/templates/ into a package or image."
        )
    return base64.b64encode(raw).decode("ascii")


def blobfuse2_config_text(spec: NodeBootstrap, container: str) -> str:
    """One container's BlobFuse2 config, from the same builder ModelStorage documents."""
    assert spec.blob is not None
    disk = cache_disk(spec.size, spec.ephemeral_os_disk_gib)
    disk_mb, memory_mb = cache_sizes_mb(spec)
    cache = BlobCache(
        path=f"{disk.root}/blobfuse2",
        disk_size_mb=disk_mb,
        memory_size_mb=memory_mb if spec.blob.cache == "block" else None,
        mode=spec.blob.cache,
    )
    document = blobfuse2_document(
        spec.blob.account_name,
        container,
        spec.blob.client_id,
        cache,
        read_only=True,
        hierarchical_namespace=spec.blob.hierarchical_namespace,
        foreground=True,
    )
    header = (
        f"# BlobFuse2 mount of {container}: managed identity {spec.blob.client_id}, no keys "
        f"on the node; cache on {disk.root}.\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False)


def _blobfuse2_file(
    entry: Mapping[str, Any], spec: NodeBootstrap, container: str
) -> dict[str, Any]:
    rendered = {key: value for key, value in entry.items() if key not in _DIRECTIVES}
    rendered["path"] = Template(entry["path"]).substitute(container=container)
    rendered["content"] = blobfuse2_config_text(spec, container)
    return rendered


def _write_file(entry: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    rendered = {key: value for key, value in entry.items() if key not in _DIRECTIVES}
    rendered["path"] = Template(entry["path"]).substitute(values)
    if "template" in entry:
        text = Template(_read(Template(entry["template"]).substitute(values)))
        rendered["content"] = _NULL_KEY.sub("", text.substitute(values))
    else:
        rendered["content"] = _read(Template(entry["file"]).substitute(values))
    return rendered


def _read(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


# libyaml's emitter when PyYAML has it (much faster); the pure-Python one otherwise.
_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _CloudConfigDumper(_SafeDumper):
    """Safe YAML with multi-line file contents as literal blocks, so the result reads well."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_CloudConfigDumper.add_representer(str, _represent_str)
