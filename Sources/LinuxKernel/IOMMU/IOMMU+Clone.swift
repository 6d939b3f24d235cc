import Bus

// Copying the IOMMU core for a forked world. Back-references to the kernel are the kernel's
// copy (the kernel records its copy before it clones its subsystems). Objects that hold each
// other (a domain and its driver's masters, a group and its devices) record their copy before
// cloning what can lead back to them; where a `let` must be cloned first, the clone looks in
// the map again afterwards, in case that object was copied on the way.

/// A forked domain keeps its id, type, geometry and cookie, so the fork allocates the IOVAs
/// and doorbell pages the original would. Its operations and `driverData` are the driver's
/// copied domain; a DMA-FQ cookie's flush queue gets the copied operations' `flush_iotlb_all`
/// (the closure dma-iommu's `iommu_dma_init_fq` installed on the original).
extension IOMMUDomain: WorldCloneable {
    public func clone(into map: inout CloneMap) -> IOMMUDomain {
        guard let driverCopy = map.cloneKernelObject(any: driver) as? any IOMMUDriver else {
            preconditionFailure("IOMMUDomain: the copy of its \(Swift.type(of: driver)) is not an IOMMU driver")
        }
        if let done = map.copy(of: self) { return done }
        let copy = IOMMUDomain(type: type, driver: driverCopy, operations: nil, pageSizeBitmap: pageSizeBitmap,
                               apertureStart: apertureStart, apertureEnd: apertureEnd, id: id)
        map.record(self, as: copy)
        copy.isNestParent = isNestParent
        if let operations {
            guard let opsCopy = map.cloneKernelObject(any: operations) as? any IOMMUDomainOperations else {
                preconditionFailure("IOMMUDomain: the copy of its \(Swift.type(of: operations)) has no domain operations")
            }
            copy.operations = opsCopy
        }
        copy.driverData = driverData.map { map.cloneKernelObject(any: $0) }
        switch cookie {
        case .none: copy.cookie = .none
        case .dmaIOVA(let c): copy.cookie = .dmaIOVA(map.clone(c))
        case .dmaMSI(let c): copy.cookie = .dmaMSI(map.clone(c))
        case .iommufd(let hwpt): copy.cookie = .iommufd(map.cloneKernelObject(any: hwpt))
        }
        if case .dmaIOVA(let c) = copy.cookie, let queue = c.flushQueue {
            guard let ops = copy.operations else {
                preconditionFailure("IOMMUDomain: a DMA-FQ cookie's flush queue on a domain without operations")
            }
            queue.flushIOTLBAll = { ops.flushIOTLBAll() }
        }
        return copy
    }
}

/// A forked group: its devices and domains are the copies. `owner` is an identity, not a
/// reference: the owner's own clone (an iommufd context, a VFIO group file) rewrites it to its
/// copy's identity; an owner nothing copies keeps the original's identity, which no object of
/// the fork has, so the group stays claimed as it was.
extension IOMMUGroup: WorldCloneable {
    public func clone(into map: inout CloneMap) -> IOMMUGroup {
        let copy = IOMMUGroup(id: id)
        map.record(self, as: copy)
        copy.devices = map.clone(devices)
        copy.defaultDomain = map.clone(defaultDomain)
        copy.domain = map.clone(domain)
        copy.blockingDomain = map.clone(blockingDomain)
        copy.owner = owner
        copy.ownerCount = ownerCount
        return copy
    }

    /// Called by an owner's clone: the copy of a group this owner claimed is claimed by the
    /// owner's copy.
    func transferOwnership(from original: AnyObject, to copy: AnyObject, in map: inout CloneMap) {
        guard owner == ObjectIdentifier(original) else { return }
        let groupCopy = map.clone(self)
        groupCopy.owner = ObjectIdentifier(copy)
    }
}

extension IOMMUDeviceState: WorldCloneable {
    func clone(into map: inout CloneMap) -> IOMMUDeviceState {
        let copy = IOMMUDeviceState()
        copy.pci32BitWorkaround = pci32BitWorkaround
        copy.requireDirect = requireDirect
        copy.usesDMAIOMMU = usesDMAIOMMU
        copy.device = device.flatMap { map.copy(of: $0) }
        return copy
    }
}

/// A forked `dev->iommu`: the same fwspec, the copied driver state (`arm_smmu_master`) and group.
extension DeviceIOMMU: WorldCloneable {
    public func clone(into map: inout CloneMap) -> DeviceIOMMU {
        let copy = DeviceIOMMU(iommuIndex: iommuIndex, streamIDs: streamIDs, flags: flags, smmuV2: smmuV2)
        map.record(self, as: copy)
        copy.driverData = driverData.map { map.cloneKernelObject(any: $0) }
        copy.group = map.clone(group)
        return copy
    }
}

/// A forked IOMMU core: the copied groups, and each device's `IOMMUDeviceState` under its
/// copied device. iommufd's SW_MSI hook is a function of the kernel only, so the fork gets the
/// same hook on its own kernel (`IOMMUFD.swMSIHook`), as iommufd installed it on the original.
extension IOMMUSubsystem: WorldCloneable {
    public func clone(into map: inout CloneMap) -> IOMMUSubsystem {
        let kernelCopy = map.clone(kernel)
        if let done = map.copy(of: self) { return done }
        let copy = IOMMUSubsystem(kernel: kernelCopy)
        map.record(self, as: copy)
        copy.groups = map.clone(groups)
        copy.forceDAC = forceDAC
        copy.loggedSubsystemInit = loggedSubsystemInit
        if iommufdSWMSI != nil { copy.iommufdSWMSI = IOMMUFD.swMSIHook(kernel: kernelCopy) }
        // `deviceStates` is keyed by device identity: find each key's device among the kernel's
        // devices and the groups' members (in that order, so the walk is deterministic) and file
        // the state's copy under the device's copy.
        var remaining = deviceStates
        for device in kernel.devices + groups.flatMap(\.devices) {
            guard let state = remaining.removeValue(forKey: ObjectIdentifier(device)) else { continue }
            let deviceCopy: Device = map.clone(device)
            let stateCopy: IOMMUDeviceState = map.clone(state)
            copy.deviceStates[ObjectIdentifier(deviceCopy)] = stateCopy
        }
        // Any other state belongs to a device the kernel no longer lists: it is kept only if
        // something else copied that device (found once everything is copied); a device nothing
        // copied is not in the fork, so nothing there can look its state up.
        let others = remaining.values.compactMap { state in state.device.map { (device: $0, state: state) } }
            .sorted { $0.device.name < $1.device.name }
        if !others.isEmpty {
            map.afterCloning { map in
                for (device, state) in others {
                    guard let deviceCopy = map.copy(of: device) else { continue }
                    let stateCopy: IOMMUDeviceState = map.clone(state)
                    copy.deviceStates[ObjectIdentifier(deviceCopy)] = stateCopy
                }
            }
        }
        return copy
    }
}

/// The DMA API holds nothing but its kernel.
extension DMAMapping: WorldCloneable {
    public func clone(into map: inout CloneMap) -> DMAMapping {
        let kernelCopy = map.clone(kernel)
        if let done = map.copy(of: self) { return done }
        return DMAMapping(kernel: kernelCopy)
    }
}
