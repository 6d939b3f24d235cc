import Bus

/// A forked world's kernel (host or guest: one model, two instances). `init(copying:map:)`
/// copies what the kernel itself holds (its bus and CPU interface through the map, log,
/// refusals, page allocator, irqbypass registry, object-id counter); the kernel then records
/// its copy, so every part that names its kernel (subsystems, driver instances, PCI functions,
/// iommufd contexts) finds it, and clones its devices, driver instances and subsystems.
///
/// Not copied: the journal (a fork starts with none attached: whoever follows a message
/// attaches its own), and the closures owners installed on the kernel's objects (a driver's
/// interrupt handlers, an eventfd's consumer, KVM's irqbypass consumers): their owners install
/// them again on the copy in `CloneMap.afterCloning` (`IRQSubsystem.reinstallHandler`,
/// `reinstallVPEDoorbellHandlers`, `EventFD.onSignal`, `IRQBypassManager.reinstallConsumer`).
extension LinuxKernel: WorldCloneable {
    public func clone(into map: inout CloneMap) -> LinuxKernel {
        let copy = LinuxKernel(copying: self, map: &map)
        if let done = map.copy(of: self) { return done }
        map.record(self, as: copy)
        copy.devices = map.clone(devices)
        copy.itsDrivers = map.clone(itsDrivers)
        copy.smmuDrivers = map.clone(smmuDrivers)
        copy.armSMMUDrivers = map.clone(armSMMUDrivers)
        copy.irq = map.clone(irq)
        copy.pci = map.clone(pci)
        copy.iommu = map.clone(iommu)
        copy.dma = map.clone(dma)
        copy.vfio = map.clone(vfio)
        copy.iommufdContexts = map.clone(iommufdContexts)
        return copy
    }
}
