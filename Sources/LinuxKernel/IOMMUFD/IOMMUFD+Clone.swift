import Bus

// Copying iommufd for a forked world: each context with its object table (same ids, same
// holder counts, so the fork's next IOMMU_*_ALLOC returns the id the original's would), its
// groups and SW_MSI table. Objects that point at each other (an IOAS and its HWPTs, a vIOMMU and
// its vDEVICEs) record their copy before cloning what leads back; where a `let` must be cloned
// first, the clone looks in the map again afterwards.

/// `IOMMUFDObject` and its subclasses: one `clone(into:)` that hands each kind to its own copy
/// function (declarations in extensions cannot be overridden).
extension IOMMUFDObject: WorldCloneable {
    public func clone(into map: inout CloneMap) -> Self {
        let made: IOMMUFDObject
        switch self {
        case let ioas as IOMMUFDIOAS: made = ioas.cloneIOAS(into: &map)
        case let paging as IOMMUFDHWPTPaging: made = paging.clonePaging(into: &map)
        case let nested as IOMMUFDHWPTNested: made = nested.cloneNested(into: &map)
        case let idev as IOMMUFDDevice: made = idev.cloneDevice(into: &map)
        case let viommu as IOMMUFDVIOMMU: made = viommu.cloneVIOMMU(into: &map)
        case let vdevice as IOMMUFDVDevice: made = vdevice.cloneVDevice(into: &map)
        case let queue as IOMMUFDVEventQueue: made = queue.cloneQueue(into: &map)
        default: preconditionFailure("IOMMUFDObject: no clone for a \(Swift.type(of: self))")
        }
        guard let typed = made as? Self else {
            preconditionFailure("IOMMUFDObject: the copy of a \(Swift.type(of: self)) is a \(Swift.type(of: made))")
        }
        return typed
    }

    /// The fields every object has: its id in the table and its holder count.
    func copyObjectFields(to copy: IOMMUFDObject) {
        copy.id = id
        copy.holders = holders
    }
}

extension IOMMUFDIOAS {
    func cloneIOAS(into map: inout CloneMap) -> IOMMUFDIOAS {
        let table = map.clone(iopt)
        if let done = map.copy(of: self) { return done }
        let copy = IOMMUFDIOAS(iopt: table)
        map.record(self, as: copy)
        copyObjectFields(to: copy)
        copy.hwpts = map.clone(hwpts)
        return copy
    }
}

extension IOMMUFDHWPTPaging {
    func clonePaging(into map: inout CloneMap) -> IOMMUFDHWPTPaging {
        let domainCopy = map.clone(domain)
        let ioasCopy = map.clone(ioas)
        if let done = map.copy(of: self) { return done }
        let copy = IOMMUFDHWPTPaging(domain: domainCopy, ioas: ioasCopy, isAutoDomain: isAutoDomain, isNestParent: isNestParent)
        map.record(self, as: copy)
        copyObjectFields(to: copy)
        copy.presentSWMSI = presentSWMSI
        copy.hasMSICookie = hasMSICookie
        return copy
    }
}

extension IOMMUFDHWPTNested {
    func cloneNested(into map: inout CloneMap) -> IOMMUFDHWPTNested {
        let domainCopy = map.clone(domain)
        let parentCopy = map.clone(parent)
        let viommuCopy = map.clone(viommu)
        if let done = map.copy(of: self) { return done }
        let copy = IOMMUFDHWPTNested(domain: domainCopy, parent: parentCopy, viommu: viommuCopy)
        map.record(self, as: copy)
        copyObjectFields(to: copy)
        return copy
    }
}

extension IOMMUFDDevice {
    func cloneDevice(into map: inout CloneMap) -> IOMMUFDDevice {
        let deviceCopy = map.clone(device)
        let groupCopy = map.clone(igroup)
        if let done = map.copy(of: self) { return done }
        let copy = IOMMUFDDevice(device: deviceCopy, igroup: groupCopy)
        map.record(self, as: copy)
        copyObjectFields(to: copy)
        copy.vdevice = map.clone(vdevice)
        copy.swMSIOptionStart = swMSIOptionStart
        copy.swMSIOptionSize = swMSIOptionSize
        copy.msiIOVAs = msiIOVAs
        copy.numberOfMSIIOVAs = numberOfMSIIOVAs
        return copy
    }
}

extension IOMMUFDVIOMMU {
    func cloneVIOMMU(into map: inout CloneMap) -> IOMMUFDVIOMMU {
        let parentCopy = map.clone(parent)
        let vsmmuCopy = map.clone(vsmmu)
        if let done = map.copy(of: self) { return done }
        let copy = IOMMUFDVIOMMU(viommuType: viommuType, parent: parentCopy, vsmmu: vsmmuCopy)
        map.record(self, as: copy)
        copyObjectFields(to: copy)
        copy.vdevices = vdevices   // values replaced below, keeping the original's layout
        for virtualID in vdevices.keys.sorted() {
            guard let vdevice = vdevices[virtualID] else { continue }
            let vdeviceCopy: IOMMUFDVDevice = map.clone(vdevice)
            copy.vdevices[virtualID] = vdeviceCopy
        }
        copy.veventQueues = map.clone(veventQueues)
        return copy
    }
}

extension IOMMUFDVDevice {
    func cloneVDevice(into map: inout CloneMap) -> IOMMUFDVDevice {
        let viommuCopy = map.clone(viommu)
        let idevCopy = map.clone(idev)
        if let done = map.copy(of: self) { return done }
        let copy = IOMMUFDVDevice(viommu: viommuCopy, idev: idevCopy, virtualID: virtualID)
        map.record(self, as: copy)
        copyObjectFields(to: copy)
        return copy
    }
}

extension IOMMUFDVEventQueue {
    func cloneQueue(into map: inout CloneMap) -> IOMMUFDVEventQueue {
        let viommuCopy = map.clone(viommu)
        if let done = map.copy(of: self) { return done }
        let copy = IOMMUFDVEventQueue(viommu: viommuCopy, type: queueType, depth: depth, fd: fd)
        map.record(self, as: copy)
        copyObjectFields(to: copy)
        copy.copyEvents(of: self)
        return copy
    }
}

extension IOMMUFDGroup: WorldCloneable {
    public func clone(into map: inout CloneMap) -> IOMMUFDGroup {
        let groupCopy = map.clone(group)
        if let done = map.copy(of: self) { return done }
        let copy = IOMMUFDGroup(group: groupCopy)
        map.record(self, as: copy)
        copy.hwpt = map.clone(hwpt)
        copy.attachedDevices = map.clone(attachedDevices)
        copy.swMSIStart = swMSIStart
        copy.requiredSWMSI = requiredSWMSI
        return copy
    }
}

extension IOPageTable: WorldCloneable {
    public func clone(into map: inout CloneMap) -> IOPageTable {
        let processCopy = map.clone(process)
        let refusalsCopy = map.clone(refusals)
        if let done = map.copy(of: self) { return done }
        return IOPageTable(copying: self, process: processCopy, refusals: refusalsCopy, map: &map)
    }
}

/// A forked iommufd context: the same object ids and groups on the kernel's copy. The groups it
/// claimed DMA ownership of (`iommufd_device_bind` → `iommu_device_claim_dma_owner` with the
/// context as owner) are claimed by the copy.
extension IOMMUFD: WorldCloneable {
    public func clone(into map: inout CloneMap) -> IOMMUFD {
        let kernelCopy = map.clone(kernel)
        let processCopy = map.clone(process)
        if let done = map.copy(of: self) { return done }
        let copy = IOMMUFD(kernel: kernelCopy, process: processCopy, swMSITable: swMSITable)
        map.record(self, as: copy)
        // Each dictionary starts as the original's and has its values replaced, so the copy keeps
        // the original's layout (and iteration order) as well as its contents.
        copy.objects = objects
        for id in objects.ids {
            guard let object = objects.objects[id] else { continue }
            let objectCopy: IOMMUFDObject = map.clone(object)
            copy.objects.objects[id] = objectCopy
        }
        copy.groups = groups
        for key in groups.keys.sorted() {
            guard let igroup = groups[key] else { continue }
            let igroupCopy: IOMMUFDGroup = map.clone(igroup)
            copy.groups[key] = igroupCopy
            igroup.group.transferOwnership(from: self, to: copy, in: &map)
        }
        for id in objects.ids {
            guard let idev = objects.objects[id] as? IOMMUFDDevice else { continue }
            idev.igroup.group.transferOwnership(from: self, to: copy, in: &map)
        }
        copy.accountPerProcess = accountPerProcess
        return copy
    }
}
