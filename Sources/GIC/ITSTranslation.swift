import Bus

/// The result of one MSI at GITS_TRANSLATER.
public enum ITSTranslationResult: Hashable, Sendable {
    /// Translated and handed to redistributor `cpu`; `accepted` is false if the redistributor
    /// refused it (GICR_CTLR.EnableLPIs=0 or INTID beyond GICR_PROPBASER.IDbits).
    case delivered(intid: INTID, cpu: Int, accepted: Bool)
    case dropped(ITSDropReason)
    /// GICv4.1: the ITE was a vLPI; vINTID was made pending in vPE `vpe`'s virtual pending table
    /// at redistributor `cpu`, with what that redistributor did about it.
    case virtual(vintid: UInt32, vpe: UInt16, cpu: Int, delivery: VirtualLPIDelivery)
}

extension ITSTranslationResult {
    /// The result as a `Journal` keeps it (the Bus module knows no GIC types).
    public var journalResult: JournalITSResult {
        switch self {
        case .delivered(let intid, let cpu, let accepted): .delivered(intid: intid.rawValue, cpu: cpu, accepted: accepted)
        case .dropped(let reason): .dropped(reason: reason.rawValue, description: reason.description)
        case .virtual(let vintid, let vpe, let cpu, let delivery):
            .virtualLPI(vintid: vintid, vpe: vpe, cpu: cpu, resident: delivery == .resident,
                        doorbell: { if case .doorbell(let i) = delivery { i } else { nil } }(), faulted: delivery == .tableFault)
        }
    }

    /// The result a journal entry holds; nil for a drop reason this model does not have (a
    /// journal built by hand).
    public init?(_ entry: JournalITSResult) {
        switch entry {
        case .delivered(let intid, let cpu, let accepted): self = .delivered(intid: INTID(intid), cpu: cpu, accepted: accepted)
        case .dropped(let raw, _):
            guard let reason = ITSDropReason(rawValue: raw) else { return nil }
            self = .dropped(reason)
        case .virtualLPI(let vintid, let vpe, let cpu, let resident, let doorbell, let faulted):
            let delivery: VirtualLPIDelivery = faulted ? .tableFault : resident ? .resident
                : doorbell.map { .doorbell(intid: $0) } ?? .pendingNotResident
            self = .virtual(vintid: vintid, vpe: vpe, cpu: cpu, delivery: delivery)
        }
    }
}

extension ITS {
    /// Translates an MSI (GICv3 §5.2; docs/hardware.md §ITS translation): DeviceID → DTE → ITT[EventID] →
    /// (pINTID, ICID) → CTE → redistributor, then sets the LPI pending there. Allocation-free
    /// unless tracing. Unmapped or out-of-range writes are dropped and counted by reason; the
    /// architecture has no response to return to the device (the write is posted).
    public func translate(deviceID: DeviceID, eventID: EventID) -> ITSTranslationResult {
        guard enabled else { return drop(.itsDisabled, deviceID, eventID) }
        let device = deviceID.rawValue
        let event = eventID.rawValue
        let dte: DeviceTableEntry
        switch lookupDevice(device) {
        case .found(let entry): dte = entry
        case .outOfRange: return drop(.deviceIDOutOfRange, deviceID, eventID)
        case .unmapped: return drop(.unmappedDevice, deviceID, eventID)
        case .fault: return drop(.tableReadFault, deviceID, eventID)
        }
        if let trace {
            trace.append(.its, "DTE lookup", value: dte.rawValue,
                         "DeviceID \(deviceID) → ITT \(dte.ittAddress) size \(dte.size) (\(dte.eventCount) events)")
        }
        let ite: InterruptTranslationEntry
        switch lookupEvent(device, dte, event) {
        case .found(let entry): ite = entry
        case .outOfRange: return drop(.eventIDOutOfRange, deviceID, eventID)
        case .unmapped: return drop(.unmappedEvent, deviceID, eventID)
        case .fault: return drop(.tableReadFault, deviceID, eventID)
        }
        guard ite.isPhysical else { return translateVirtual(deviceID: deviceID, eventID: eventID, dte: dte, ite: ite) }
        if let trace {
            trace.append(.its, "ITE lookup", value: ite.rawValue,
                         "EventID \(event) → pINTID \(ite.intid.rawValue), ICID \(ite.collection.rawValue)")
        }
        let cpu: Int
        switch lookupCollection(ite.collection.rawValue) {
        case .found(let index): cpu = index
        case .outOfRange, .unmapped: return drop(.unmappedCollection, deviceID, eventID)
        case .fault: return drop(.tableReadFault, deviceID, eventID)
        }
        if let trace {
            trace.append(.its, "CTE lookup", value: UInt64(cpu), "ICID \(ite.collection.rawValue) → redistributor \(cpu)")
        }
        counters.translations &+= 1
        let accepted = gic.redistributors[cpu].setPending(ite.intid)
        if !accepted { counters.lpisRefusedByRedistributor &+= 1 }
        return .delivered(intid: ite.intid, cpu: cpu, accepted: accepted)
    }

    @inline(__always)
    private func drop(_ reason: ITSDropReason, _ device: DeviceID, _ event: EventID) -> ITSTranslationResult {
        counters.countDrop(reason)
        if let trace {
            trace.append(.its, "MSI dropped", address: translaterAddress.rawValue, value: UInt64(event.rawValue),
                         "DeviceID \(device) EventID \(event.rawValue): \(reason)")
        }
        return .dropped(reason)
    }
}
