import Bus

// Copying the arm-smmu (SMMUv1/v2) driver for a forked world: the driver's shadow of the
// stream-mapping registers (SMRs, S2CRs with their reference counts), the context-bank map and
// the interrupt index counter, so the fork allocates the stream map entries and context banks
// the original would. The SMMU itself is copied with the machine (Sources/SMMUv2).

extension ArmSMMUDriver: WorldCloneable {
    public func clone(into map: inout CloneMap) -> ArmSMMUDriver {
        let kernelCopy = map.clone(kernel)
        if let done = map.copy(of: self) { return done }
        let copy = ArmSMMUDriver(kernel: kernelCopy, index: index, node: node, nodeIndex: nodeIndex)
        map.record(self, as: copy)
        copy.features = features
        copy.irptndxCounter = irptndxCounter
        copy.smrs = smrs
        copy.s2crs = s2crs
        copy.contextMap = contextMap
        copy.staticDomains.identity = map.clone(staticDomains.identity)
        copy.staticDomains.blocked = map.clone(staticDomains.blocked)
        return copy
    }
}

/// A forked `arm_smmu_domain`: made by `init`, which installs the copied table's `flushWalk`
/// (this domain's `arm_smmu_tlb_inv_walk_s1`/`_s2`, or the v1 stage-2 full flush).
extension ArmSMMUDomain: WorldCloneable {
    public func clone(into map: inout CloneMap) -> ArmSMMUDomain {
        let driverCopy = map.clone(driver)
        let tableCopy = map.clone(pageTable)
        if let done = map.copy(of: self) { return done }
        return ArmSMMUDomain(driver: driverCopy, stage: stage, contextBank: contextBank, format: format,
                             interruptIndex: interruptIndex, pageTable: tableCopy)
    }
}

extension ArmSMMUMaster: WorldCloneable {
    public func clone(into map: inout CloneMap) -> ArmSMMUMaster {
        let deviceCopy = map.clone(device)
        if let done = map.copy(of: self) { return done }
        let copy = ArmSMMUMaster(device: deviceCopy, ids: ids)
        copy.streamMapEntries = streamMapEntries
        return copy
    }
}
