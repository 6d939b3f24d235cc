import Bus

/// A forked world's `struct device`: its name, DMA mask, bound driver and MSI descriptors, its
/// PCI function and `dev->iommu` through the map. The device records its copy first: its PCI
/// function and its IOMMU state (the SMMU master's `master->dev`) point back at it.
extension Device: WorldCloneable {
    public func clone(into map: inout CloneMap) -> Device {
        let copy = Device(name: name)
        map.record(self, as: copy)
        copy.pci = map.clone(pci)
        copy.iommu = map.clone(iommu)
        copy.dmaMask = dmaMask
        copy.msiDescriptors = map.clone(msiDescriptors)
        copy.driverName = driverName
        copy.driverManagedDMA = driverManagedDMA
        return copy
    }
}
