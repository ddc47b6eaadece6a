#!/bin/bash
# GPU health check: nvidia-smi sees the GPU count the catalog promises for this size, and on
# InfiniBand sizes every expected InfiniBand port is ACTIVE. The result goes to a Prometheus text
# file the monitoring collects; a failure also goes to the journal at priority err and fails the
# unit (systemctl --failed).
set -uo pipefail
# Overridable so the check can be exercised off a VM (tests/test_bootstrap.py).
# shellcheck source=node.env
. "${GPUSTACK_ENV_FILE:-/etc/gpustack/node.env}"
sysfs="${GPUSTACK_SYSFS:-/sys}"

tag="$GPUSTACK_HEALTH_TAG"
metrics="$GPUSTACK_HEALTH_METRICS_FILE"
mkdir -p "$(dirname "$metrics")"

# On first boot the NVIDIA driver extension installs the driver after cloud-init: wait for it.
waited=0
until nvidia-smi -L >/dev/null 2>&1 || [ "$waited" -ge "$GPUSTACK_DRIVER_WAIT_SECONDS" ]; do
  sleep 30
  waited=$((waited + 30))
done

gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)

ib_active=0
for port in "$sysfs"/class/infiniband/*/ports/*; do
  [ -r "$port/link_layer" ] || continue
  # The accelerated-networking NIC is an Ethernet port of the same driver: count InfiniBand only.
  [ "$(cat "$port/link_layer")" = "InfiniBand" ] || continue
  case "$(cat "$port/state")" in *ACTIVE*) ib_active=$((ib_active + 1)) ;; esac
done

problems=()
if [ "$gpus" -ne "$GPUSTACK_GPU_COUNT" ]; then
  problems+=("nvidia-smi sees $gpus GPUs; $GPUSTACK_VM_SIZE has $GPUSTACK_GPU_COUNT")
fi
if [ "$ib_active" -lt "$GPUSTACK_IB_PORTS" ]; then
  problems+=("$ib_active InfiniBand ports are ACTIVE; $GPUSTACK_VM_SIZE has $GPUSTACK_IB_PORTS")
fi
healthy=1
[ "${#problems[@]}" -eq 0 ] || healthy=0

labels="vm_size=\"$GPUSTACK_VM_SIZE\""
tmp=$(mktemp "$metrics.XXXXXX")
cat >"$tmp" <<METRICS
# HELP gpustack_gpu_health_ok 1 when the node's GPUs and InfiniBand ports match the catalog.
# TYPE gpustack_gpu_health_ok gauge
gpustack_gpu_health_ok{$labels} $healthy
# HELP gpustack_gpus_visible GPUs nvidia-smi lists.
# TYPE gpustack_gpus_visible gauge
gpustack_gpus_visible{$labels} $gpus
# HELP gpustack_gpus_expected GPUs the VM size has (catalog).
# TYPE gpustack_gpus_expected gauge
gpustack_gpus_expected{$labels} $GPUSTACK_GPU_COUNT
# HELP gpustack_infiniband_ports_active InfiniBand ports in state ACTIVE.
# TYPE gpustack_infiniband_ports_active gauge
gpustack_infiniband_ports_active{$labels} $ib_active
# HELP gpustack_infiniband_ports_expected InfiniBand ports the VM size has (one per GPU).
# TYPE gpustack_infiniband_ports_expected gauge
gpustack_infiniband_ports_expected{$labels} $GPUSTACK_IB_PORTS
# HELP gpustack_gpu_health_last_run_seconds When the check last ran (Unix time).
# TYPE gpustack_gpu_health_last_run_seconds gauge
gpustack_gpu_health_last_run_seconds{$labels} $(date +%s)
METRICS
chmod 0644 "$tmp"
mv "$tmp" "$metrics"

if [ "$healthy" -eq 1 ]; then
  logger -t "$tag" -p user.info -- "healthy: $gpus GPUs, $ib_active InfiniBand ports active"
  exit 0
fi
for problem in "${problems[@]}"; do
  logger -t "$tag" -p user.err -- "UNHEALTHY: $problem"
  echo "UNHEALTHY: $problem" >&2
done
exit 1
