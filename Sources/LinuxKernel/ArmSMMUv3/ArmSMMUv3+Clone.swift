import Bus

// Copying the arm-smmu-v3 driver for a forked world. The driver's tables and queues live in
// kernel pages, which the fork's copy of RAM already holds, so a copy keeps their addresses and
// the software state around them: the queue indices, the ASID/VMID allocators, the masters by
// StreamID, the command and event logs. The SMMU itself (registers, caches) is copied with the
// machine (SMMUv3+Clone.swift).

/// A forked driver instance on the kernel's copy. `entryWriteObserver` is not copied: it is an
/// observation point for tests and traces, and a fork starts with none attached (as a forked
/// machine starts with no journal or trace).
extension ArmSMMUv3Driver: WorldCloneable {
    public func clone(into map: inout CloneMap) -> ArmSMMUv3Driver {
        let kernelCopy = map.clone(kernel)
        if let done = map.copy(of: self) { return done }
        let copy = ArmSMMUv3Driver(kernel: kernelCopy, index: index, node: node)
        map.record(self, as: copy)
        copy.features = features
        copy.commandQueue = commandQueue
        copy.eventQueue = eventQueue
        copy.streamTable = map.clone(streamTable)
        copy.commandCounts = commandCounts
        copy.commandLog = commandLog
        copy.events = events
        copy.forwardedEvents = forwardedEvents
        copy.eventQueueOverflows = eventQueueOverflows
        copy.commandErrors = commandErrors
        copy.asidAllocator = asidAllocator
        copy.vmidAllocator = vmidAllocator
        // Start from the original's dictionary and replace each value, so the copy keeps its
        // layout (and iteration order) as well as its contents.
        copy.streams = streams
        for sid in streams.keys.sorted() {
            guard let master = streams[sid] else { continue }
            let masterCopy: ArmSMMUv3Master = map.clone(master)
            copy.streams[sid] = masterCopy
        }
        copy.staticDomains.identity = map.clone(staticDomains.identity)
        copy.staticDomains.blocked = map.clone(staticDomains.blocked)
        return copy
    }
}

extension ArmSMMUv3StreamTable: WorldCloneable {
    public func clone(into map: inout CloneMap) -> ArmSMMUv3StreamTable {
        let driverCopy = map.clone(driver)
        if let done = map.copy(of: self) { return done }
        return ArmSMMUv3StreamTable(copying: self, driver: driverCopy)
    }
}

/// A forked io-pgtable: same root and geometry on the kernel's copy. Its `flushWalk` is
/// installed by the owning domain's clone (`ArmSMMUv3Domain.init` or `ArmSMMUDomain.init`
/// with the copied table), never copied.
extension IOPageTableARM: WorldCloneable {
    public func clone(into map: inout CloneMap) -> IOPageTableARM {
        let kernelCopy = map.clone(kernel)
        if let done = map.copy(of: self) { return done }
        return IOPageTableARM(copying: self, kernel: kernelCopy)
    }
}

/// A forked `arm_smmu_domain`: made by `init`, which installs the copied table's `flushWalk`
/// (this domain's `arm_smmu_tlb_inv_walk`), then given the copied masters.
extension ArmSMMUv3Domain: WorldCloneable {
    public func clone(into map: inout CloneMap) -> ArmSMMUv3Domain {
        let driverCopy = map.clone(driver)
        let tableCopy = map.clone(pageTable)
        if let done = map.copy(of: self) { return done }
        let copy = ArmSMMUv3Domain(driver: driverCopy, stage: stage, pageTable: tableCopy, isNestParent: isNestParent)
        map.record(self, as: copy)
        copy.attachedMasters = map.clone(attachedMasters)
        return copy
    }
}

extension ArmSMMUv3Master: WorldCloneable {
    public func clone(into map: inout CloneMap) -> ArmSMMUv3Master {
        let deviceCopy = map.clone(device)
        if let done = map.copy(of: self) { return done }
        let copy = ArmSMMUv3Master(device: deviceCopy, streamIDs: streamIDs, substreamIDBits: substreamIDBits)
        map.record(self, as: copy)
        copy.cdTable = cdTable
        copy.domain = map.clone(domain)
        if let vmaster {
            copy.vmaster = ArmSMMUv3VMaster(vsmmu: map.clone(vmaster.vsmmu), virtualStreamID: vmaster.virtualStreamID)
        }
        return copy
    }
}

/// A forked vSMMU: the copied S2 parent and VMID; `core` (weak) is the copied iommufd vIOMMU.
extension ArmVSMMU: WorldCloneable {
    public func clone(into map: inout CloneMap) -> ArmVSMMU {
        let driverCopy = map.clone(driver)
        let parentCopy = map.clone(s2Parent)
        let domainCopy = map.clone(parentDomain)
        if let done = map.copy(of: self) { return done }
        let copy = ArmVSMMU(driver: driverCopy, s2Parent: parentCopy, parentDomain: domainCopy, vmid: vmid)
        map.record(self, as: copy)
        copy.core = map.clone(core)
        return copy
    }
}

extension ArmSMMUv3NestedDomain: WorldCloneable {
    public func clone(into map: inout CloneMap) -> ArmSMMUv3NestedDomain {
        let vsmmuCopy = map.clone(vsmmu)
        if let done = map.copy(of: self) { return done }
        return ArmSMMUv3NestedDomain(vsmmu: vsmmuCopy, ste: ste, enableATS: enableATS)
    }
}
