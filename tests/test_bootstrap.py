"""The node bootstrap: cloud-init rendered for every catalog GPU size, and the GPU health check."""

from __future__ import annotations

import base64
import functools
import os
import stat
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.bootstrap import (
    BlobMounts,
    NodeBootstrap,
    cache_disk,
    encode_custom_data,
    nccl_topology,
    render_cloud_init,
)
from gpustack import catalog, facts

GPU_SIZES = [size for size in catalog.all_sizes() if size.is_gpu]
POOL = facts.load("vm_pools")
NVME_MOUNT = POOL["node"]["nvme_mount"]
TEMP_MOUNT = POOL["node"]["temp_disk_mount"]
BLOB = BlobMounts("stmodels", "00000000-0000-4000-8000-00000000cafe", ("models", "datasets"))
# PCI class of a 3D controller (the GPUs) in the NCCL topology files.
GPU_PCI_CLASS = "0x030200"


@functools.cache
def cloud_config(spec: NodeBootstrap) -> dict[str, Any]:
    text = render_cloud_init(spec)
    assert text.startswith("#cloud-config\n"), "cloud-init ignores user data without the header"
    document = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert isinstance(document, dict)
    return document


def files(document: dict[str, Any]) -> dict[str, str]:
    return {entry["path"]: entry["content"] for entry in document["write_files"]}


def node_env(document: dict[str, Any]) -> dict[str, str]:
    lines = files(document)["/etc/gpustack/node.env"].splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {key: value.strip('"') for key, value in pairs}


@pytest.mark.parametrize("size", GPU_SIZES, ids=lambda size: size.name)
@pytest.mark.parametrize("cache", ["block", "file"])
def test_cloud_init_for_every_gpu_size_is_yaml_with_the_blobfuse2_keys_blobfuse2_requires(
    size: catalog.VmSize, cache: str
) -> None:
    blob = BlobMounts(BLOB.account_name, BLOB.client_id, BLOB.containers, cache)  # type: ignore[arg-type]
    written = files(cloud_config(NodeBootstrap(size, 0, blob)))
    required = facts.blobfuse2_required_keys()
    for container in BLOB.containers:
        config = yaml.safe_load(written[f"/etc/gpustack/blobfuse2/{container}.yaml"])
        for key in required["top_level"]:
            assert key in config, (size.name, key)
        pipeline = facts.load("blobfuse2")["components"][f"{cache}_cache_pipeline"]
        assert config["components"] == pipeline
        for section, keys in required.items():
            if section == "top_level" or section not in config["components"]:
                continue
            assert set(keys) <= set(config[section]), (size.name, section)
        azstorage = config["azstorage"]
        assert azstorage["container"] == container
        assert azstorage["mode"] == "msi" and azstorage["appid"] == BLOB.client_id
        assert "account-key" not in azstorage and "sas" not in azstorage
        cache_path = config[f"{cache}_cache"]["path"]
        expected_root = NVME_MOUNT if size.nvme_disks else TEMP_MOUNT
        assert cache_path == f"{expected_root}/blobfuse2/{container}", size.name


@pytest.mark.parametrize("size", GPU_SIZES, ids=lambda size: size.name)
def test_node_facts_come_from_the_catalog(size: catalog.VmSize) -> None:
    env = node_env(cloud_config(NodeBootstrap(size, 0, BLOB)))
    assert env["GPUSTACK_VM_SIZE"] == size.name
    assert int(env["GPUSTACK_GPU_COUNT"]) == size.gpu_count
    # One InfiniBand link per GPU on IB sizes; the health check expects them all ACTIVE.
    assert int(env["GPUSTACK_IB_PORTS"]) == (size.gpu_count if size.has_infiniband else 0)
    assert int(env["GPUSTACK_NVME_DISKS"]) == size.nvme_disks
    assert env["GPUSTACK_CACHE_ROOT"] == (NVME_MOUNT if size.nvme_disks else TEMP_MOUNT)
    assert env["GPUSTACK_BLOB_CONTAINERS"].split() == list(BLOB.containers)


@pytest.mark.parametrize("size", GPU_SIZES, ids=lambda size: size.name)
def test_nd_sizes_get_nccl_settings_and_a_topology_with_their_gpu_count(
    size: catalog.VmSize,
) -> None:
    written = files(cloud_config(NodeBootstrap(size, 0, BLOB)))
    # NCCL topologies exist for the x64 NVIDIA ND generations; MI300X uses RCCL and GB200
    # (Arm64, NVLink domains) has no topology file in the HPC image customizations read.
    nvidia_x64_nd = (
        size.name.startswith("Standard_ND")
        and size.gpu_vendor == "NVIDIA"
        and size.architecture == "x64"
    )
    if not nvidia_x64_nd:
        assert "/etc/gpustack/nccl.conf" not in written
        assert nccl_topology(size) is None
        return
    conf = dict(
        line.split("=", 1) for line in written["/etc/gpustack/nccl.conf"].splitlines() if line
    )
    assert conf["NCCL_TOPO_FILE"] in written
    assert conf["NCCL_IB_PCI_RELAXED_ORDERING"] == "1"
    topology = ElementTree.fromstring(written[conf["NCCL_TOPO_FILE"]])
    gpus = [pci for pci in topology.iter("pci") if pci.get("class") == GPU_PCI_CLASS]
    assert len(gpus) == size.gpu_count, size.name
    assert "gpustack-nccl.service" in " ".join(written)


def test_block_cache_is_sized_from_the_temp_disk_the_ephemeral_os_disk_leaves() -> None:
    size = catalog.lookup("Standard_NC4as_T4_v3")
    assert size.nvme_disks == 0
    written = files(cloud_config(NodeBootstrap(size, 128, BLOB)))
    config = yaml.safe_load(written["/etc/gpustack/blobfuse2/models.yaml"])
    share = POOL["blobfuse2"]["cache_disk_fraction"] / len(BLOB.containers)
    assert config["block_cache"]["disk-size-mb"] == int((size.temp_disk_gib - 128) * 1024 * share)
    assert cache_disk(size, 128).capacity_gib == size.temp_disk_gib - 128


def test_block_cache_on_nvme_is_sized_from_the_catalog_nvme_capacity() -> None:
    size = catalog.lookup("Standard_ND96isr_H100_v5")
    written = files(cloud_config(NodeBootstrap(size, 128, BLOB)))
    block = yaml.safe_load(written["/etc/gpustack/blobfuse2/datasets.yaml"])["block_cache"]
    share = POOL["blobfuse2"]["cache_disk_fraction"] / len(BLOB.containers)
    # The ephemeral OS disk sits on the temp disk, not on the NVMe array.
    assert block["disk-size-mb"] == int(size.nvme_total_gib * 1024 * share)
    memory_share = POOL["blobfuse2"]["block_cache_memory_fraction"] / len(BLOB.containers)
    assert block["mem-size-mb"] == int(size.memory_gib * 1024 * memory_share)


def test_unknown_nvme_size_leaves_the_disk_cache_size_to_blobfuse2() -> None:
    size = catalog.lookup("Standard_ND96asr_v4")
    assert size.nvme_disks > 0 and size.nvme_disk_gib == 0
    written = files(cloud_config(NodeBootstrap(size, 0, BLOB)))
    block = yaml.safe_load(written["/etc/gpustack/blobfuse2/models.yaml"])["block_cache"]
    assert "disk-size-mb" not in block
    assert block["path"].startswith(NVME_MOUNT)


def test_without_storage_nothing_is_mounted() -> None:
    size = catalog.lookup("Standard_NC4as_T4_v3")
    document = cloud_config(NodeBootstrap(size, 0, None))
    assert not [path for path in files(document) if "blobfuse2" in path]
    assert node_env(document)["GPUSTACK_BLOB_CONTAINERS"] == ""


def test_dcgm_exporter_is_pinned_to_a_4_8_release_on_the_facts_port() -> None:
    size = catalog.lookup("Standard_NC4as_T4_v3")
    written = files(cloud_config(NodeBootstrap(size, 0, BLOB)))
    unit = written["/etc/systemd/system/dcgm-exporter.service"]
    image = POOL["dcgm_exporter"]["image"]
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    tag = exec_start.split(f"{image}:", 1)[1].split()[0]
    # Tags are <DCGM version>-<exporter version>[-<base>]; 4.9 renames the metrics we alert on.
    assert tag.split("-")[1].startswith("4.8."), tag
    port = facts.dcgm_exporter_port()
    assert f"--publish {port}:{port}" in exec_start


def test_rendered_scripts_are_valid_bash(tmp_path: Path) -> None:
    size = catalog.lookup("Standard_ND96isr_H100_v5")
    for path, content in files(cloud_config(NodeBootstrap(size, 0, BLOB))).items():
        if not content.startswith("#!/bin/bash"):
            continue
        script = tmp_path / Path(path).name
        script.write_text(content)
        checked = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert checked.returncode == 0, f"{path}: {checked.stderr}"


def test_custom_data_round_trips_and_azures_size_limit_is_enforced() -> None:
    text = render_cloud_init(NodeBootstrap(catalog.lookup("Standard_ND96isr_H200_v5"), 0, BLOB))
    assert base64.b64decode(encode_custom_data(text)).decode() == text
    limit = POOL["custom_data_max_bytes"]
    with pytest.raises(ValueError, match=str(limit)):
        encode_custom_data("#cloud-config\n" + "x" * limit)


# --- the GPU health check, run for real against a fake nvidia-smi and a fake sysfs ----------


def _health_env(tmp_path: Path, gpus_visible: int, ib_active: int, gpus: int, ib_ports: int):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_smi = bin_dir / "nvidia-smi"
    listing = "".join(f"GPU {i}: NVIDIA A100 (UUID: GPU-{i})\\n" for i in range(gpus_visible))
    fake_smi.write_text(f'#!/bin/bash\nprintf "{listing}"\n')
    fake_smi.chmod(fake_smi.stat().st_mode | stat.S_IEXEC)
    for index in range(ib_ports):
        port = tmp_path / "sys" / "class" / "infiniband" / f"mlx5_ib{index}" / "ports" / "1"
        port.mkdir(parents=True)
        (port / "link_layer").write_text("InfiniBand\n")
        (port / "state").write_text("4: ACTIVE\n" if index < ib_active else "1: DOWN\n")
    # The accelerated-networking NIC shows up under the same driver as an Ethernet port.
    ethernet = tmp_path / "sys" / "class" / "infiniband" / "mlx5_an0" / "ports" / "1"
    ethernet.mkdir(parents=True)
    (ethernet / "link_layer").write_text("Ethernet\n")
    (ethernet / "state").write_text("4: ACTIVE\n")
    metrics = tmp_path / "metrics" / "gpu_health.prom"
    env_file = tmp_path / "node.env"
    env_file.write_text(
        "\n".join(
            [
                'GPUSTACK_VM_SIZE="Standard_ND96isr_H100_v5"',
                f'GPUSTACK_GPU_COUNT="{gpus}"',
                f'GPUSTACK_IB_PORTS="{ib_ports}"',
                f'GPUSTACK_HEALTH_METRICS_FILE="{metrics}"',
                'GPUSTACK_HEALTH_TAG="gpustack-gpu-health-test"',
                'GPUSTACK_DRIVER_WAIT_SECONDS="0"',
            ]
        )
    )
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "GPUSTACK_ENV_FILE": str(env_file),
        "GPUSTACK_SYSFS": str(tmp_path / "sys"),
    }
    return env, metrics


def _run_health_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = Path(__file__).resolve().parent.parent / "components/templates/gpustack-gpu-health.sh"
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)


def _metric(metrics: Path, name: str) -> float:
    for line in metrics.read_text().splitlines():
        if line.startswith(f"{name}{{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} missing from {metrics}")


def test_health_check_passes_when_gpus_and_infiniband_match_the_catalog(tmp_path: Path) -> None:
    env, metrics = _health_env(tmp_path, gpus_visible=8, ib_active=8, gpus=8, ib_ports=8)
    result = _run_health_check(env)
    assert result.returncode == 0, result.stderr
    assert _metric(metrics, "gpustack_gpu_health_ok") == 1
    assert _metric(metrics, "gpustack_infiniband_ports_active") == 8


def test_health_check_fails_visibly_when_a_gpu_is_missing(tmp_path: Path) -> None:
    env, metrics = _health_env(tmp_path, gpus_visible=7, ib_active=8, gpus=8, ib_ports=8)
    result = _run_health_check(env)
    assert result.returncode == 1
    assert "nvidia-smi sees 7 GPUs" in result.stderr
    assert _metric(metrics, "gpustack_gpu_health_ok") == 0
    assert _metric(metrics, "gpustack_gpus_visible") == 7


def test_health_check_fails_when_an_infiniband_port_is_down(tmp_path: Path) -> None:
    env, metrics = _health_env(tmp_path, gpus_visible=8, ib_active=7, gpus=8, ib_ports=8)
    result = _run_health_check(env)
    assert result.returncode == 1
    assert "7 InfiniBand ports are ACTIVE" in result.stderr
    assert _metric(metrics, "gpustack_gpu_health_ok") == 0


def test_health_check_ignores_ethernet_ports_on_sizes_without_infiniband(tmp_path: Path) -> None:
    env, metrics = _health_env(tmp_path, gpus_visible=1, ib_active=0, gpus=1, ib_ports=0)
    assert _run_health_check(env).returncode == 0
    assert _metric(metrics, "gpustack_infiniband_ports_active") == 0


def test_amd_nodes_get_no_nvidia_toolkit_dcgm_or_nvidia_health_check() -> None:
    mi300x = catalog.lookup("Standard_ND96isr_MI300X_v5")
    written = files(cloud_config(NodeBootstrap(mi300x, 0, BLOB)))
    assert "/etc/systemd/system/dcgm-exporter.service" not in written
    assert not any("gpu-health" in path for path in written)
    env = dict(
        line.split("=", 1)
        for line in written["/etc/gpustack/node.env"].splitlines()
        if line and not line.startswith("#")
    )
    assert env["GPUSTACK_GPU_VENDOR"].strip('"') == "AMD"
    t4 = files(cloud_config(NodeBootstrap(catalog.lookup("Standard_NC4as_T4_v3"), 0, BLOB)))
    assert "/etc/systemd/system/dcgm-exporter.service" in t4
