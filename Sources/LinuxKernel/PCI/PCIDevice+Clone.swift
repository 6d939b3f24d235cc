import Bus

/// A forked world's `struct pci_dev`: everything enumeration, resource assignment, enable and
/// MSI setup read or decided, as values (the function's config space and MSI-X table are the
/// copied machine's); its `struct device`, upstream bridge and kernel through the map. A device
/// reached first clones this function and records it, so the function returns that copy.
extension PCIDevice: WorldCloneable {
    public func clone(into map: inout CloneMap) -> PCIDevice {
        let deviceCopy = map.clone(device)
        if let done = map.copy(of: self) { return done }
        let copy = PCIDevice(device: deviceCopy, requesterID: requesterID, hostBridge: hostBridge)
        map.record(self, as: copy)
        copy.configAccess = configAccess
        copy.kernel = map.clone(kernel)
        copy.vendorID = vendorID
        copy.pciDeviceID = pciDeviceID
        copy.classCode = classCode
        copy.headerType = headerType
        copy.isMultifunction = isMultifunction
        copy.upstreamBridge = map.clone(upstreamBridge)
        copy.secondaryBus = secondaryBus
        copy.subordinateBus = subordinateBus
        copy.msiCapability = msiCapability
        copy.msixCapability = msixCapability
        copy.expressCapability = expressCapability
        copy.expressPortType = expressPortType
        copy.acsCapability = acsCapability
        copy.resources = resources
        copy.dmaAliases = dmaAliases
        copy.isEnabled = isEnabled
        copy.isBusMaster = isBusMaster
        copy.irq = irq
        copy.intxEnabled = intxEnabled
        copy.intxRoute = intxRoute
        copy.msiEnabled = msiEnabled
        copy.msixEnabled = msixEnabled
        copy.msixTableAddress = msixTableAddress
        copy.msixTableSize = msixTableSize
        copy.msiDomain = msiDomain
        copy.msiAttributes = msiAttributes
        copy.savedConfig = savedConfig
        copy.savedDeviceControl = savedDeviceControl
        return copy
    }
}

/// A forked world's PCI core: its functions in enumeration order (each copied once, shared with
/// the kernel's device list and the IRQ descriptors) and whether ACS was requested. It belongs
/// to a kernel, whose copy it takes from the map.
extension PCISubsystem: WorldCloneable {
    public func clone(into map: inout CloneMap) -> PCISubsystem {
        let kernelCopy = map.clone(kernel)
        if let done = map.copy(of: self) { return done }
        let copy = PCISubsystem(kernel: kernelCopy)
        map.record(self, as: copy)
        copy.devices = map.clone(devices)
        copy.acsRequested = acsRequested
        return copy
    }
}
