import Bus

// Copying VFIO for a forked world: the bound devices (their IRQ contexts' eventfds are the
// copies KVM and the VMM share), the group files and containers with their type1 backends.
// A group file or container that claimed a group's DMA ownership hands the claim to its copy.

extension VFIOSubsystem: WorldCloneable {
    public func clone(into map: inout CloneMap) -> VFIOSubsystem {
        let kernelCopy = map.clone(kernel)
        if let done = map.copy(of: self) { return done }
        let copy = VFIOSubsystem(kernel: kernelCopy)
        map.record(self, as: copy)
        copy.devices = map.clone(devices)
        copy.groupFiles = groupFiles   // values replaced below, keeping the original's layout
        for id in groupFiles.keys.sorted() {
            guard let file = groupFiles[id] else { continue }
            let fileCopy: VFIOGroupFile = map.clone(file)
            copy.groupFiles[id] = fileCopy
        }
        return copy
    }
}

extension VFIOPCIDevice: WorldCloneable {
    public func clone(into map: inout CloneMap) -> VFIOPCIDevice {
        let kernelCopy = map.clone(kernel)
        let pdevCopy = map.clone(pdev)
        if let done = map.copy(of: self) { return done }
        let copy = VFIOPCIDevice(kernel: kernelCopy, pdev: pdevCopy, cdevName: cdevName)
        map.record(self, as: copy)
        copy.irqType = irqType
        copy.contexts = contexts   // triggers replaced below, keeping the original's layout
        for vector in contexts.keys.sorted() {
            guard var context = contexts[vector] else { continue }
            context.trigger = map.clone(context.trigger)
            copy.contexts[vector] = context
        }
        copy.errTrigger = map.clone(errTrigger)
        copy.reqTrigger = map.clone(reqTrigger)
        copy.openFile = map.clone(openFile)
        copy.msiIOVAs = msiIOVAs
        return copy
    }
}

/// A forked container: the copied process, group files and type1 backend.
extension VFIOContainer: WorldCloneable {
    public func clone(into map: inout CloneMap) -> VFIOContainer {
        let kernelCopy = map.clone(kernel)
        let processCopy = map.clone(process)
        if let done = map.copy(of: self) { return done }
        let copy = VFIOContainer(kernel: kernelCopy, process: processCopy)
        map.record(self, as: copy)
        copy.groups = map.clone(groups)
        copy.type1 = map.clone(type1)
        return copy
    }
}

/// A forked group file. `vfio_group_ioctl_set_container` claims the group's DMA ownership with
/// the group file as owner (`iommu_group_claim_dma_owner(group, group_file)`): the copy claims
/// the copied group.
extension VFIOGroupFile: WorldCloneable {
    public func clone(into map: inout CloneMap) -> VFIOGroupFile {
        let kernelCopy = map.clone(kernel)
        let groupCopy = map.clone(group)
        if let done = map.copy(of: self) { return done }
        let copy = VFIOGroupFile(kernel: kernelCopy, group: groupCopy)
        map.record(self, as: copy)
        copy.container = map.clone(container)
        copy.deviceFiles = map.clone(deviceFiles)
        group.transferOwnership(from: self, to: copy, in: &map)
        return copy
    }
}

/// A forked type1 backend: its DMA list, IOVA ranges, page sizes and domains (each the copied
/// IOMMU domain with the copied groups).
extension VFIOType1: WorldCloneable {
    public func clone(into map: inout CloneMap) -> VFIOType1 {
        let kernelCopy = map.clone(kernel)
        let processCopy = map.clone(process)
        if let done = map.copy(of: self) { return done }
        let copy = VFIOType1(kernel: kernelCopy, process: processCopy, v2: isV2)
        map.record(self, as: copy)
        copy.domains = map.clone(domains)
        copy.dmaList = dmaList
        copy.iovaList = iovaList
        copy.pageSizeBitmap = pageSizeBitmap
        copy.dmaAvailable = dmaAvailable
        return copy
    }
}

extension VFIOType1.Domain: WorldCloneable {
    public func clone(into map: inout CloneMap) -> VFIOType1.Domain {
        let domainCopy = map.clone(domain)
        let groupsCopy = map.clone(groups)
        if let done = map.copy(of: self) { return done }
        return VFIOType1.Domain(domain: domainCopy, groups: groupsCopy)
    }
}
