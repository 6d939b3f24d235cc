import Bus

/// A forked world's `struct irq_desc`: its state flags, counts and affinity as values; its
/// device, MSI descriptor, ITS device, SPI range and domain, action and vLPI map through the
/// map, so the copy points at the copied device's descriptors and the copied ITS driver's
/// device (one copy each, however many interrupts share them).
extension IRQDescriptor: WorldCloneable {
    public func clone(into map: inout CloneMap) -> IRQDescriptor {
        let copy = IRQDescriptor(irq: irq, hwirq: hwirq, chipName: chipName, device: nil, msiDescriptor: nil,
                                 itsIndex: itsIndex, eventID: eventID, cpuCount: perCPUCount.count)
        map.record(self, as: copy)
        copy.device = map.clone(device)
        copy.msiDescriptor = map.clone(msiDescriptor)
        copy.itsDevice = map.clone(itsDevice)
        copy.spiRange = map.clone(spiRange)
        copy.spiDomain = map.clone(spiDomain)
        copy.action = map.clone(action)
        copy.perCPUCount = perCPUCount
        copy.effectiveCPU = effectiveCPU
        copy.affinity = affinity
        copy.isManaged = isManaged
        copy.isActivated = isActivated
        copy.isMasked = isMasked
        copy.isStarted = isStarted
        copy.unhandledCount = unhandledCount
        copy.replayPending = replayPending
        copy.vlpiMap = vlpiMap?.cloned(into: &map)
        return copy
    }
}
