#!/bin/bash
# Assemble every local NVMe disk into one RAID0 array (mdadm), format it and mount it; on sizes
# without local NVMe the caches use the temp disk instead. Runs at every boot: local NVMe and the
# temp disk are wiped when the VM is deallocated, evicted or redeployed.
set -euo pipefail
# shellcheck source=node.env
. /etc/gpustack/node.env

log() { logger -t gpustack-local-disk -p "user.$1" -- "$2"; echo "$2"; }

if [ "$GPUSTACK_NVME_DISKS" -eq 0 ]; then
  mkdir -p "$GPUSTACK_CACHE_ROOT/blobfuse2"
  log info "$GPUSTACK_VM_SIZE has no local NVMe; caches use the temp disk under $GPUSTACK_CACHE_ROOT"
  exit 0
fi

if mountpoint -q "$GPUSTACK_NVME_MOUNT"; then
  log info "$GPUSTACK_NVME_MOUNT is already mounted"
  exit 0
fi

# After a plain reboot the array's superblocks survive: assemble it again rather than rebuild.
mdadm --assemble --scan >/dev/null 2>&1 || true

if [ ! -b "$GPUSTACK_RAID_DEVICE" ]; then
  # Local NVMe namespaces that are free: no partitions, no holders (not the OS disk, not in use).
  disks=()
  for dev in /dev/nvme*n1; do
    [ -b "$dev" ] || continue
    name=$(basename "$dev")
    if ls /sys/block/"$name"/"$name"p* >/dev/null 2>&1; then continue; fi
    if [ -n "$(ls -A /sys/block/"$name"/holders 2>/dev/null)" ]; then continue; fi
    if [ -n "$(lsblk --noheadings --output MOUNTPOINT "$dev" | tr -d '[:space:]')" ]; then continue; fi
    disks+=("$dev")
  done
  if [ "${#disks[@]}" -eq 0 ]; then
    log err "no free local NVMe disk found; $GPUSTACK_VM_SIZE should have $GPUSTACK_NVME_DISKS"
    exit 1
  fi
  if [ "${#disks[@]}" -ne "$GPUSTACK_NVME_DISKS" ]; then
    log warning "found ${#disks[@]} local NVMe disks; the catalog lists $GPUSTACK_NVME_DISKS for $GPUSTACK_VM_SIZE"
  fi
  # --force: mdadm refuses a one-device RAID0 without it (NC24ads_A100_v4 has one NVMe disk).
  mdadm --create "$GPUSTACK_RAID_DEVICE" --level=0 --raid-devices="${#disks[@]}" --force --run "${disks[@]}"
fi

if [ -z "$(blkid -o value -s TYPE "$GPUSTACK_RAID_DEVICE" || true)" ]; then
  mkfs.xfs -f "$GPUSTACK_RAID_DEVICE"
fi
mkdir -p "$GPUSTACK_NVME_MOUNT"
mount -o noatime "$GPUSTACK_RAID_DEVICE" "$GPUSTACK_NVME_MOUNT"
chmod 1777 "$GPUSTACK_NVME_MOUNT"
mkdir -p "$GPUSTACK_CACHE_ROOT/blobfuse2"
log info "RAID0 of local NVMe mounted at $GPUSTACK_NVME_MOUNT ($(df -h --output=size "$GPUSTACK_NVME_MOUNT" | tail -1 | tr -d ' '))"
