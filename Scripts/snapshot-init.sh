#!/bin/sh
# /init of the tiny initramfs that Scripts/capture-snapshots.sh boots under QEMU (arm64 guest,
# static busybox). It loads the modules listed in /modules/order, probes the PCI devices, brings
# the network interfaces up (so their drivers request their MSI/MSI-X vectors), optionally rebinds
# one endpoint to vfio-pci, copies a fixed set of sysfs/procfs files into /stage (paths kept
# relative to /) and writes `tar -C /stage .` onto the raw virtio-blk disk (virtio-mmio, so it is
# not a PCI device of the snapshot). Then it powers off.
#
# Kernel command line knobs read here (ignored by the kernel itself):
#   doorbell_snapshot.vfio=VVVV:DDDD   rebind the PCI device with that vendor:device to vfio-pci
#                                      (and load the vfio modules listed in /modules/vfio-order)
export PATH=/bin
/bin/busybox --install -s /bin

mkdir -p /proc /sys /dev /stage /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

log() { echo "snapshot-init: $*"; }

load_modules() { # <order file>
  [ -f "$1" ] || return 0
  while read -r ko; do
    [ -n "$ko" ] || continue
    insmod "/modules/$ko" && log "insmod $ko" || log "insmod $ko FAILED"
  done < "$1"
}

load_modules /modules/order

vfio_id=
for arg in $(cat /proc/cmdline); do
  case "$arg" in doorbell_snapshot.vfio=*) vfio_id=${arg#doorbell_snapshot.vfio=} ;; esac
done

# Let the drivers finish probing.
sleep 2

if [ -n "$vfio_id" ]; then
  load_modules /modules/vfio-order
  want_v=0x${vfio_id%%:*}; want_d=0x${vfio_id##*:}
  for dev in /sys/bus/pci/devices/*; do
    [ "$(cat "$dev/vendor")" = "$want_v" ] && [ "$(cat "$dev/device")" = "$want_d" ] || continue
    bdf=${dev##*/}
    log "rebinding $bdf ($vfio_id) to vfio-pci"
    echo vfio-pci > "$dev/driver_override"
    [ -L "$dev/driver" ] && echo "$bdf" > "$dev/driver/unbind"
    echo "$bdf" > /sys/bus/pci/drivers_probe
    log "$bdf driver is now $(readlink "$dev/driver")"
  done
fi

for nic in /sys/class/net/*; do
  name=${nic##*/}
  [ "$name" = lo ] && continue
  ip link set "$name" up && log "ip link set $name up"
done
sleep 2

# ---- the snapshot: exactly these files, whichever exist ----
S=/stage
copy() { # <absolute path>: regular file, read with cat (sysfs sizes lie)
  [ -f "$1" ] || return 0
  mkdir -p "$S$(dirname "$1")"
  cat "$1" > "$S$1" 2>/dev/null || { log "cannot read $1"; rm -f "$S$1"; }
}
link() { # <absolute path>: record a symlink with the same target text, not followed
  [ -L "$1" ] || return 0
  mkdir -p "$S$(dirname "$1")"
  ln -s "$(readlink "$1")" "$S$1"
}

copy /sys/firmware/fdt
for t in IORT APIC MCFG; do copy /sys/firmware/acpi/tables/$t; done

for g in /sys/kernel/iommu_groups/*; do
  [ -d "$g" ] || continue
  copy "$g/type"
  copy "$g/reserved_regions"
  mkdir -p "$S$g/devices"
  for d in "$g"/devices/*; do link "$d"; done
done

for dev in /sys/bus/pci/devices/*; do
  [ -e "$dev" ] || continue
  bdf=${dev##*/}
  mkdir -p "$S/sys/bus/pci/devices/$bdf" "$S/sys/bus/pci/devices.links"
  ln -s "$(readlink "$dev")" "$S/sys/bus/pci/devices.links/$bdf"
  for f in vendor device class config irq resource enable msi_bus; do copy "$dev/$f"; done
  link "$dev/driver"
  link "$dev/iommu_group"
  if [ -d "$dev/msi_irqs" ]; then
    mkdir -p "$S$dev/msi_irqs"
    for m in "$dev"/msi_irqs/*; do copy "$m"; done
  fi
done

copy /proc/interrupts
copy /proc/iomem
copy /proc/cmdline
copy /proc/sys/kernel/osrelease

# ---- write it out onto the virtio-mmio disk ----
out=
for b in /sys/block/vd*; do
  [ -e "$b" ] && out=/dev/${b##*/} && break
done
if [ -z "$out" ]; then
  log "no output disk found"
else
  tar -cf "$out" -C "$S" . && sync && log "snapshot written to $out ($(find "$S" | wc -l) entries)"
fi
log "done"
poweroff -f
