import Bus

/// A forked world's `struct device`: its name, DMA mask, bound driver and MSI descriptors, its
/// PCI function and `dev->iommu` through the map. The device records its copy first: its PCI
/// function and its IOMMU state (the SMMU master's `master->dev`) point back at it.
extension Device: WorldCloneable {
    public func clone(into map: inout CloneMap) -> Device {
        let copy = Device(name: name)
        map.record(self, as: copy)
        copy.pci = map.clone(pci)
        copy.iommu = iommu.map { state in
            guard let cloned = map.cloneDynamic(state) as? DeviceIOMMU else {
                preconditionFailure("Device \(name): its IOMMU state (DeviceIOMMU) cannot be copied into a forked world yet")
            }
            return cloned
        }
        copy.dmaMask = dmaMask
        copy.msiDescriptors = map.clone(msiDescriptors)
        copy.driverName = driverName
        copy.driverManagedDMA = driverManagedDMA
        return copy
    }
}

/// The CPU interface of a GICv2 host kernel: its GICC base and CPU count, on the copied bus.
extension GICv2CPUInterfaceRegisters: WorldCloneable {
    public func clone(into map: inout CloneMap) -> GICv2CPUInterfaceRegisters {
        GICv2CPUInterfaceRegisters(bus: map.clone(bus), base: base, cpuCount: cpuCount)
    }
}
