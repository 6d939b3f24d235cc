#!/usr/bin/env bash
# Captures the real sysfs/procfs snapshots under Tests/Fixtures/snapshots/<name>/ by booting a
# Debian arm64 Linux kernel under QEMU (TCG) on the QEMU `virt` machine, with a tiny busybox
# initramfs whose /init is Scripts/snapshot-init.sh. The guest writes a tar of the snapshot onto
# a raw virtio-mmio disk; this script extracts it. Also writes <name>.console.txt (serial log).
#
# Needs (Debian bookworm): qemu-system-arm, qemu-efi-aarch64 (ACPI boot), cpio, gzip, xz-utils,
# kmod (depmod), tar, and `dpkg --add-architecture arm64 && apt-get update` so that the arm64
# kernel and busybox-static packages can be fetched with `apt-get download` (root, or a cache
# already filled). Downloads go to ${SNAPSHOT_CACHE:-${XDG_CACHE_HOME:-/tmp}/doorbell-snapshots}.
# The tests never run this script: they only read the committed snapshot directories.
#
# Usage: Scripts/capture-snapshots.sh [dt-smmuv3|acpi-smmuv3|dt-passthrough|dt-vfio ...]
#        (no argument: all four, one boot at a time). Re-runnable: each run replaces the snapshot.
# Env:   KERNEL_PKG / KERNEL_VER / BUSYBOX_VER override the pinned packages below;
#        BOOT_TIMEOUT (seconds, default 900) bounds one boot.
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIXTURES=$ROOT/Tests/Fixtures/snapshots
CACHE=${SNAPSHOT_CACHE:-${XDG_CACHE_HOME:-/tmp}/doorbell-snapshots}
KREL=${KREL:-6.12.118+deb12-arm64}
KERNEL_PKG=${KERNEL_PKG:-linux-image-$KREL-unsigned}
KERNEL_VER=${KERNEL_VER:-6.12.118-1~deb12u1}
BUSYBOX_VER=${BUSYBOX_VER:-1:1.35.0-4+deb12u1+b1}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-900}
EFI_FD=/usr/share/qemu-efi-aarch64/QEMU_EFI.fd

# Modules loaded in every boot (their dependencies are added from modules.dep), and for the VFIO
# boot. Built in (config-$KREL): virtio_pci, pcieport, arm-smmu-v3, pci-host-generic, GICv3 ITS.
MODULES=(virtio_mmio virtio_blk virtio_net e1000e ahci)
VFIO_MODULES=(vfio vfio_iommu_type1 vfio-pci-core vfio-pci)
VFIO_ID=8086:10d3 # the e1000e endpoint behind root port rp1

say() { echo "== $*" >&2; }

for tool in qemu-system-aarch64 cpio gzip xz depmod tar; do
  command -v "$tool" >/dev/null || { echo "missing $tool (see the header of $0)" >&2; exit 1; }
done

mkdir -p "$CACHE"
fetch_deb() { # <package:arch> <version> -> path of the .deb in $CACHE
  local pkg=$1 ver=$2 f
  f=$(ls "$CACHE"/"${pkg%%:*}"_*"${ver#*:}"_arm64.deb 2>/dev/null | head -1 || true)
  if [ -z "$f" ]; then
    say "apt-get download $pkg=$ver"
    (cd "$CACHE" && apt-get download "$pkg=$ver" >&2)
    f=$(ls "$CACHE"/"${pkg%%:*}"_*"${ver#*:}"_arm64.deb | head -1)
  fi
  echo "$f"
}

kdeb=$(fetch_deb "$KERNEL_PKG:arm64" "$KERNEL_VER")
bdeb=$(fetch_deb "busybox-static:arm64" "$BUSYBOX_VER")
KDIR=$CACHE/kernel-$KERNEL_VER
BDIR=$CACHE/busybox-${BUSYBOX_VER#*:}
if [ ! -f "$KDIR/lib/modules/$KREL/modules.dep" ]; then
  say "extracting $kdeb"
  rm -rf "$KDIR" && mkdir -p "$KDIR" && dpkg-deb -x "$kdeb" "$KDIR"
  depmod -b "$KDIR" "$KREL"
fi
if [ ! -x "$BDIR/bin/busybox" ]; then
  say "extracting $bdeb"
  rm -rf "$BDIR" && mkdir -p "$BDIR" && dpkg-deb -x "$bdeb" "$BDIR"
fi
KERNEL=$KDIR/boot/vmlinuz-$KREL
MODDIR=$KDIR/lib/modules/$KREL

# Prints the module files (relative to $MODDIR) in load order, dependencies first (run it in a
# subshell: `seen` dedups within one call; add_modules skips what an order file already has).
declare -A seen=()
resolve() { # <module name>
  local name=$1 line path deps d
  line=$(grep -E "/(${name//[-_]/[-_]})\.ko(\.xz|\.zst|\.gz)?:" "$MODDIR/modules.dep" | head -1)
  [ -n "$line" ] || { echo "module $name not found in modules.dep (built in?)" >&2; exit 1; }
  path=${line%%:*}; deps=${line#*:}
  [ -n "${seen[$path]:-}" ] && return 0
  seen[$path]=1
  local rev=()
  for d in $deps; do rev=("$d" "${rev[@]}"); done
  for d in "${rev[@]}"; do resolve "$(basename "${d%%.ko*}")"; done
  echo "$path"
}

INITRD=$CACHE/initramfs.cpio.gz
build_initramfs() {
  local stage=$CACHE/initramfs
  say "building $INITRD"
  rm -rf "$stage" && mkdir -p "$stage/bin" "$stage/modules"
  cp "$BDIR/bin/busybox" "$stage/bin/busybox" && ln -s busybox "$stage/bin/sh"
  cp "$ROOT/Scripts/snapshot-init.sh" "$stage/init" && chmod 755 "$stage/init"
  add_modules() { # <order file> <module...>
    local order=$1 m p list; shift
    : > "$stage/modules/$order"
    for m in "$@"; do
      list=$(resolve "$m") # an assignment, so that a failing resolve stops the script
      for p in $list; do
        local base; base=$(basename "${p%%.ko*}").ko
        grep -qxF "$base" "$stage"/modules/order "$stage/modules/$order" 2>/dev/null && continue
        case "$p" in
          *.xz) xz -dc "$MODDIR/$p" > "$stage/modules/$base" ;;
          *.zst) zstd -dcq "$MODDIR/$p" > "$stage/modules/$base" ;;
          *.gz) gzip -dc "$MODDIR/$p" > "$stage/modules/$base" ;;
          *) cp "$MODDIR/$p" "$stage/modules/$base" ;;
        esac
        echo "$base" >> "$stage/modules/$order"
      done
    done
  }
  add_modules order "${MODULES[@]}"
  add_modules vfio-order "${VFIO_MODULES[@]}"
  say "modules: $(tr '\n' ' ' < "$stage/modules/order")| vfio: $(tr '\n' ' ' < "$stage/modules/vfio-order")"
  (cd "$stage" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) | gzip -9 > "$INITRD"
}
build_initramfs

# The machine: GICv3 (+ITS, the virt default), SMMUv3 on the PCIe root complex, no default NIC.
#   00:02.0 pcie-root-port rp0 -> 01:00.0 virtio-net-pci (MSI-X)
#   00:03.0 pcie-root-port rp1 -> 02:00.0 e1000e (MSI-X; the VFIO boot rebinds it to vfio-pci)
#   00:04.0 ich9-ahci on the root bus (plain MSI, 1 vector)
#   00:05.0 virtio-net-pci on the root bus (MSI-X)
# The output disk is virtio-blk-device on virtio-mmio, so it is not part of the PCI snapshot.
QEMU_COMMON=(
  -M virt,gic-version=3,iommu=smmuv3 -cpu max,pauth-impdef=on -smp 2 -m 1G -nographic -nic none -no-reboot
  -device pcie-root-port,id=rp0,bus=pcie.0,addr=0x2,chassis=1,slot=1
  -device pcie-root-port,id=rp1,bus=pcie.0,addr=0x3,chassis=2,slot=2
  -netdev hubport,id=n0,hubid=0 -device virtio-net-pci,netdev=n0,bus=rp0,mac=52:54:00:00:00:01
  -netdev hubport,id=n1,hubid=1 -device e1000e,netdev=n1,bus=rp1,mac=52:54:00:00:00:02
  -device ich9-ahci,id=ahci0,bus=pcie.0,addr=0x4
  -netdev hubport,id=n2,hubid=2 -device virtio-net-pci,netdev=n2,bus=pcie.0,addr=0x5,mac=52:54:00:00:00:03
  -kernel "$KERNEL" -initrd "$INITRD"
)

capture() { # <name>
  local name=$1 append="console=ttyAMA0 panic=-1" extra=()
  case "$name" in
    dt-smmuv3) ;;
    acpi-smmuv3) append+=" acpi=force"; extra=(-bios "$EFI_FD") ;;
    dt-passthrough) append+=" iommu.passthrough=1" ;;
    dt-vfio) append+=" doorbell_snapshot.vfio=$VFIO_ID" ;;
    *) echo "unknown snapshot $name" >&2; exit 1 ;;
  esac
  [ "$name" != acpi-smmuv3 ] || [ -f "$EFI_FD" ] || { echo "missing $EFI_FD (apt-get install qemu-efi-aarch64)" >&2; exit 1; }
  local disk=$CACHE/$name.disk.img log=$CACHE/$name.console.txt
  rm -f "$disk" && truncate -s 64M "$disk"
  local cmd=(qemu-system-aarch64 "${QEMU_COMMON[@]}" "${extra[@]}" -append "$append"
    -drive "file=$disk,if=none,format=raw,id=out" -device virtio-blk-device,drive=out)
  say "booting $name: ${cmd[*]}"
  local start=$SECONDS
  timeout "$BOOT_TIMEOUT" "${cmd[@]}" < /dev/null | tr -d '\r' > "$log" || {
    echo "boot $name failed or timed out after $((SECONDS - start))s; console in $log" >&2; exit 1; }
  say "$name booted and powered off in $((SECONDS - start))s"
  grep -q 'snapshot-init: snapshot written' "$log" || { echo "$name: no snapshot written; see $log" >&2; exit 1; }
  rm -rf "${FIXTURES:?}/$name" && mkdir -p "$FIXTURES/$name"
  tar -xf "$disk" -C "$FIXTURES/$name" --no-same-owner --no-same-permissions
  # Keep the console log, trimmed to 200 KB.
  head -c 200000 "$log" > "$FIXTURES/$name.console.txt"
  say "$name: $(find "$FIXTURES/$name" | wc -l) entries in $FIXTURES/$name"
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(dt-smmuv3 acpi-smmuv3 dt-passthrough dt-vfio)
for n in "${names[@]}"; do capture "$n"; done
