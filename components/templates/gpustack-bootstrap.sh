#!/bin/bash
# First-boot setup, run once by cloud-init (runcmd): install what the image lacks (BlobFuse2,
# Docker, the NVIDIA container toolkit, node-exporter), then enable the gpustack units, which
# run at every boot. CPU nodes (GPUSTACK_GPU_COUNT=0) skip the GPU steps.
# Each step logs and carries on when it fails, so one broken download does not hide the others;
# the exit status reports whether every step worked.
# The steps' functions run through step(), which shellcheck does not follow.
# shellcheck disable=SC2329
set -uo pipefail
# shellcheck source=node.env
. /etc/gpustack/node.env
export DEBIAN_FRONTEND=noninteractive

failed=0
log() { logger -t gpustack-bootstrap -p "user.$1" -- "$2"; echo "$2"; }
retry() {
  local attempt
  for attempt in 1 2 3 4 5; do
    "$@" && return 0
    sleep $((attempt * 10))
  done
  return 1
}
step() {
  local name=$1
  shift
  if "$@"; then log info "$name: done"; else log err "$name: FAILED"; failed=1; fi
}

enable_local_disk() {
  systemctl daemon-reload && systemctl enable --now gpustack-local-disk.service
}

mount_blob_containers() {
  [ -n "$GPUSTACK_BLOB_CONTAINERS" ] || return 0
  if ! command -v blobfuse2 >/dev/null; then
    local packages
    read -ra packages <<<"$GPUSTACK_BLOBFUSE2_PACKAGES"
    retry curl -fsSL -o /tmp/packages-microsoft-prod.deb "$GPUSTACK_BLOBFUSE2_REPO_PACKAGE" &&
      dpkg -i /tmp/packages-microsoft-prod.deb &&
      retry apt-get update -q &&
      retry apt-get install -y -q "${packages[@]}" || return 1
  fi
  grep -q '^user_allow_other' /etc/fuse.conf 2>/dev/null || echo user_allow_other >>/etc/fuse.conf
  local container
  for container in $GPUSTACK_BLOB_CONTAINERS; do
    systemctl enable --now "gpustack-blobfuse2@$container.service" || return 1
  done
}

install_docker() {
  command -v docker >/dev/null || retry apt-get install -y -q docker.io
}

install_container_runtime() {
  install_docker || return 1
  if ! command -v nvidia-ctk >/dev/null; then
    retry curl -fsSL "$GPUSTACK_NVIDIA_CTK_GPG_KEY" -o /tmp/nvidia-ctk.key &&
      gpg --batch --yes --dearmor -o "$GPUSTACK_NVIDIA_CTK_KEYRING" /tmp/nvidia-ctk.key &&
      retry curl -fsSL "$GPUSTACK_NVIDIA_CTK_APT_LIST" -o /tmp/nvidia-ctk.list &&
      sed "s#deb https://#deb [signed-by=$GPUSTACK_NVIDIA_CTK_KEYRING] https://#g" /tmp/nvidia-ctk.list \
        >/etc/apt/sources.list.d/nvidia-container-toolkit.list &&
      retry apt-get update -q &&
      retry apt-get install -y -q nvidia-container-toolkit || return 1
  fi
  nvidia-ctk runtime configure --runtime=docker && systemctl restart docker
}

enable_gpu_metrics() {
  systemctl enable --now dcgm-exporter.service
}

install_node_exporter() {
  # node-exporter serves host metrics and, through its textfile collector, the health check's.
  command -v prometheus-node-exporter >/dev/null ||
    retry apt-get install -y -q "$GPUSTACK_NODE_EXPORTER_PACKAGE" || return 1
  systemctl enable --now prometheus-node-exporter.service
}

enable_nccl_settings() {
  [ -f /etc/gpustack/nccl.conf ] || return 0
  systemctl enable --now gpustack-nccl.service
}

enable_health_check() {
  systemctl enable --now gpustack-gpu-health.timer
}

step "local disk (RAID0 NVMe or temp disk)" enable_local_disk
step "BlobFuse2 mounts" mount_blob_containers
# NVIDIA nodes get the container toolkit, DCGM and the nvidia-smi health check; AMD (ROCm)
# containers reach the GPU through /dev/kfd and /dev/dri, so Docker alone serves them.
nvidia=0
if [ "${GPUSTACK_GPU_COUNT:-0}" -gt 0 ] && [ "${GPUSTACK_GPU_VENDOR:-}" = NVIDIA ]; then
  nvidia=1
fi
if [ "$nvidia" -eq 1 ]; then
  step "Docker and NVIDIA container toolkit" install_container_runtime
  step "DCGM exporter" enable_gpu_metrics
elif [ "${GPUSTACK_GPU_COUNT:-0}" -gt 0 ]; then
  step "Docker" install_docker
fi
step "node-exporter" install_node_exporter
if [ "$nvidia" -eq 1 ]; then
  step "NCCL settings" enable_nccl_settings
  step "GPU health timer" enable_health_check
fi
exit "$failed"
