import Bus

/// The vfio-pci device regions a VMM reads and writes through the device fd
/// (`VFIO_DEVICE_GET_REGION_INFO` and `pread`/`pwrite` at the region's offset;
/// drivers/vfio/pci/vfio_pci_core.c `vfio_pci_ioctl_get_region_info`, vfio_pci_rdwr.c
/// `vfio_pci_bar_rw`, vfio_pci_config.c `vfio_pci_config_rw`). Used by the VMM:
/// the minimum QEMU's vfio-pci needs to show a passthrough function to a guest.
extension VFIODeviceFile {
    /// `VFIO_PCI_BAR0_REGION_INDEX` … `BAR5`, `ROM`, `CONFIG`.
    public static let configRegionIndex = 7

    /// `VFIO_DEVICE_GET_REGION_INFO`: the region's size (0 for an absent BAR, as the kernel
    /// reports an unimplemented BAR), the PCIe configuration space size for CONFIG
    /// (`pdev->cfg_size`, 4 KiB). EINVAL for an index past VFIO_PCI_NUM_REGIONS.
    public func regionSize(_ index: Int) throws(Errno) -> UInt64 {
        try requireAccess()
        switch index {
        case 0...5: return vdev.pdev.resource(bar: index)?.size ?? 0
        case 6: return 0
        case Self.configRegionIndex: return 4096
        default: throw .EINVAL
        }
    }

    /// `pread` on the CONFIG region. Model simplification, documented: vfio-pci serves reads
    /// from its virtualized copy (`vconfig`) for the fields its permission tables virtualize
    /// (BARs, ROM, MSI/MSI-X enable bits…); the model returns the function's own configuration
    /// space, which a VMM virtualizes again anyway (QEMU emulates BARs and the MSI-X capability
    /// itself). 1, 2 or 4 bytes, naturally aligned, else EINVAL.
    public func readConfig(_ offset: Int, size: Int) throws(Errno) -> UInt32 {
        try requireAccess()
        guard [1, 2, 4].contains(size), offset >= 0, offset % size == 0, offset + size <= 4096 else { throw .EINVAL }
        return try vdev.pdev.readConfig(offset, size: size)
    }

    /// `pwrite` on the CONFIG region. Only the Command register's Memory Space, Bus Master and
    /// INTx Disable bits reach the function (`cmd_perms` in vfio_pci_config.c write-through
    /// PCI_COMMAND_MEMORY/MASTER/INTX_DISABLE); every other header write lands in vfio's
    /// virtual copy, which the model does not keep (the write is accepted and dropped).
    public func writeConfig(_ offset: Int, size: Int, _ value: UInt32) throws(Errno) {
        try requireAccess()
        guard [1, 2, 4].contains(size), offset >= 0, offset % size == 0, offset + size <= 4096 else { throw .EINVAL }
        guard offset <= 0x04, offset + size > 0x04 else { return }
        let shift = (0x04 - offset) * 8
        let command = UInt16(truncatingIfNeeded: value >> UInt32(shift))
        let passthrough: UInt16 = (1 << 1) | (1 << 2) | (1 << 10)
        let current = try vdev.pdev.readConfig16(0x04)
        try vdev.pdev.writeConfig16(0x04, (current & ~passthrough) | (command & passthrough))
    }

    /// `pread`/`pwrite` on a memory BAR region (`vfio_pci_bar_rw` → `vfio_pci_core_do_io_rw`):
    /// the access goes to the BAR through the host kernel's mapping. The MSI-X table of the BAR
    /// that holds it is excluded (`x_start`/`x_end` = msix_offset…+msix_size): reads return
    /// all-ones bytes, writes are dropped, since the table belongs to the host's MSI-X setup.
    /// EINVAL for an absent BAR or an access past its end or not 1/2/4/8 bytes.
    public func readBAR(_ bar: Int, offset: UInt64, size: Int) throws(Errno) -> UInt64 {
        let address = try barAccess(bar, offset: offset, size: size)
        if inMSIXTable(bar, offset: offset, size: size) { return size == 8 ? .max : (UInt64(1) << UInt64(size * 8)) - 1 }
        return try vdev.kernel.mmio.read(address, size: size)
    }

    public func writeBAR(_ bar: Int, offset: UInt64, size: Int, value: UInt64) throws(Errno) {
        let address = try barAccess(bar, offset: offset, size: size)
        if inMSIXTable(bar, offset: offset, size: size) { return }
        try vdev.kernel.mmio.write(address, size: size, value)
    }

    func barAccess(_ bar: Int, offset: UInt64, size: Int) throws(Errno) -> PhysicalAddress {
        try requireAccess()
        guard [1, 2, 4, 8].contains(size), let resource = vdev.pdev.resource(bar: bar), let base = resource.address,
              offset < resource.size, resource.size - offset >= UInt64(size), let address = base.adding(offset) else { throw .EINVAL }
        return address
    }

    /// Whether [offset, offset+size) of `bar` overlaps the MSI-X table (Table BIR/Offset from the
    /// capability, Table Size + 1 entries of 16 bytes; PCIe r6.0 §7.7.2).
    func inMSIXTable(_ bar: Int, offset: UInt64, size: Int) -> Bool {
        guard let cap = vdev.pdev.msixCapability,
              let control = try? vdev.pdev.readConfig16(cap + 2),
              let table = try? vdev.pdev.readConfig32(cap + 4) else { return false }
        guard Int(table & 0x7) == bar else { return false }
        let start = UInt64(table & ~0x7)
        let length = (UInt64(control & 0x07FF) + 1) * 16
        return offset < start &+ length && start < offset &+ UInt64(size)
    }
}
