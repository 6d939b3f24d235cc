import Bus

/// Binding and unbinding a PCI driver as the driver core does it (drivers/base/dd.c,
/// drivers/pci/pci-driver.c), for the parts that touch the IOMMU:
///
/// - bind: `driver_probe_device` → `really_probe`: `dev->bus->dma_configure` =
///   `pci_dma_configure` (firmware DMA setup, then `iommu_device_use_default_domain` unless
///   the driver sets `driver_managed_dma`), then `pci_device_probe` → the driver's `probe`;
///   a failing probe undoes it (`dma_cleanup`, `dev->driver = NULL`).
/// - unbind (`echo … > unbind`, `device_release_driver` → `__device_release_driver`):
///   `device_remove` → `pci_device_remove` → the driver's `remove`, then
///   `dev->bus->dma_cleanup` = `pci_dma_cleanup` → `iommu_device_unuse_default_domain`, then
///   `device_unbind_cleanup` (devres, `dev->driver = NULL`).
///
/// What unbinding does NOT do, checked in iommu.c and pci-driver.c: nothing detaches the
/// group or rewrites the STE. `iommu_device_unuse_default_domain` only drops `owner_cnt`;
/// the group stays on its default domain (a DMA domain keeps its page tables, with whatever
/// the driver did not unmap, and the MSI pages dma-iommu mapped, which are only freed with the
/// domain); the device is contained by the driver's own teardown (`free_irq`,
/// `pci_free_irq_vectors`, `pci_disable_device` clearing Bus Master Enable). The domain only
/// changes when someone writes the group's `type` (then `owner_cnt` must be 0) or takes DMA
/// ownership (VFIO: blocking domain).
extension PCISubsystem {
    /// `device_is_bound(dev)`: a driver is bound.
    public func isDriverBound(_ dev: PCIDevice) -> Bool { dev.device.driverName != nil }

    /// Binds driver `name` to `dev` (`really_probe`): -EBUSY if a driver is bound already
    /// (`__driver_probe_device`: `if (dev->driver) return -EBUSY`); `pci_dma_configure` takes
    /// the default domain (`iommu_device_use_default_domain`, which is -EBUSY while a DMA
    /// owner such as VFIO holds the group) unless `driverManagedDMA`; then `probe` runs — the
    /// driver's own probe body (enable, bus master, vectors, handlers). If `probe` throws, the
    /// claim is dropped again and the device is left without a driver.
    public func probeDriver(_ dev: PCIDevice, name: String, driverManagedDMA: Bool = false,
                            probe: () throws(Errno) -> Void) throws(Errno) {
        guard !isDriverBound(dev) else { throw .EBUSY }
        try dmaConfigure(dev.device)
        if !driverManagedDMA { try kernel.iommu.useDefaultDomain(dev.device) }
        dev.device.driverName = name
        dev.device.driverManagedDMA = driverManagedDMA
        // pci_device_probe: pci_assign_irq before the driver's probe.
        assignIRQ(dev)
        do {
            try probe()
        } catch {
            dmaCleanup(dev)
            dev.device.driverName = nil
            throw error
        }
    }

    /// `pci_dma_configure`'s firmware half before `iommuProbeAtDeviceAdd`: the device's IOMMU
    /// is parsed and probed (fwspec, group, default domain) when a driver first binds. From
    /// that release on it was probed at `device_add` and this finds it done.
    public func dmaConfigure(_ device: Device) throws(Errno) {
        guard !kernel.configuration.has(.iommuProbeAtDeviceAdd), device.iommu == nil else { return }
        try kernel.iommu.probeDevice(device)
    }

    /// The PCIe port service driver (`pcie_portdrv_probe`, drivers/pci/pcie/portdrv.c, built in
    /// as CONFIG_PCIEPORTBUS=y on arm64 distributions) binds every root port, switch port and
    /// event collector at boot; it sets `driver_managed_dma` (v5.19, "PCI: portdrv: Set
    /// driver_managed_dma"), so it takes no default-domain claim and never blocks VFIO. Its
    /// services' own interrupts (PME, AER, hotplug) are not modelled.
    func bindPortDriver() {
        for dev in devices where dev.isBridge {
            guard let type = dev.expressPortType, [0x4, 0x5, 0x6, 0xA].contains(type), !isDriverBound(dev) else { continue }
            try? probeDriver(dev, name: "pcieport", driverManagedDMA: true) { () throws(Errno) in }
        }
    }

    /// Unbinds the driver (`device_release_driver`): `remove` — the driver's remove body
    /// (for the scenario's driver `free_irq` of each vector, `pci_free_irq_vectors`,
    /// `pci_disable_device`) — then `pci_dma_cleanup`, then the driver pointer cleared. A
    /// driver's remove cannot fail in Linux; if `remove` throws, the unbind still completes and
    /// the error is rethrown afterwards so the caller sees what the teardown could not do.
    /// Nothing if no driver is bound.
    public func releaseDriver(_ dev: PCIDevice, remove: () throws(Errno) -> Void) throws(Errno) {
        guard isDriverBound(dev) else { return }
        var failure: Errno?
        do { try remove() } catch { failure = error }
        dmaCleanup(dev)
        dev.device.driverName = nil
        dev.device.driverManagedDMA = false
        if let failure { throw failure }
    }

    /// `pci_dma_cleanup`: `iommu_device_unuse_default_domain` unless the driver manages DMA.
    func dmaCleanup(_ dev: PCIDevice) {
        if !dev.device.driverManagedDMA { kernel.iommu.unuseDefaultDomain(dev.device) }
    }

    /// The teardown a plain MSI/MSI-X driver's `remove` does, in its order: `free_irq` of
    /// every vector that has a handler, `pci_free_irq_vectors`, `pci_disable_device` (Bus
    /// Master Enable cleared, so the function sends neither DMA nor MSIs).
    public func standardRemove(_ dev: PCIDevice) throws(Errno) {
        for desc in dev.device.msiDescriptors where desc.irq != 0 {
            let count = dev.msiEnabled ? max(dev.msiAttributes?.vectors ?? 1, 1) : 1
            for irq in desc.irq..<(desc.irq + count) where kernel.irq.descriptor(irq)?.action != nil {
                try kernel.irq.freeIRQ(irq)
            }
        }
        try freeIRQVectors(dev)
        try disableDevice(dev)
    }
}
