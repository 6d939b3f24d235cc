import Bus

/// A forked world's interrupt core: the redistributors and tables it set up, the LPI allocator,
/// the per-CPU LPI counts (so `its_select_cpu` picks the CPU the original's would), the next
/// Linux number, and every descriptor, SPI MSI domain and GICv4 VM copied through the map (the
/// by-number and by-INTID indexes name the same copies). It belongs to a kernel, whose copy
/// it takes from the map.
extension IRQSubsystem: WorldCloneable {
    public func clone(into map: inout CloneMap) -> IRQSubsystem {
        let kernelCopy = map.clone(kernel)
        if let done = map.copy(of: self) { return done }
        let copy = IRQSubsystem(kernel: kernelCopy)
        map.record(self, as: copy)
        copy.redistributors = redistributors
        copy.propertyTable = propertyTable
        copy.lpiIDBits = lpiIDBits
        copy.lpiAllocator = lpiAllocator
        copy.spiMSIDomains = map.clone(spiMSIDomains)
        copy.descriptors = descriptors.mapValues { map.clone($0) }
        copy.descriptorByHWIRQ = descriptorByHWIRQ.mapValues { map.clone($0) }
        copy.nextIRQ = nextIRQ
        copy.spuriousINTIDs = spuriousINTIDs
        copy.lpiCountPerCPU = lpiCountPerCPU
        copy.managedLPICountPerCPU = managedLPICountPerCPU
        copy.gicv4 = gicv4
        copy.vpeIDsInUse = vpeIDsInUse
        copy.itsVMs = map.clone(itsVMs)
        return copy
    }
}
