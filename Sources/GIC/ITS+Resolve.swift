import Bus

/// Where an ITS would send (DeviceID, EventID), without making anything pending.
public enum ITSResolution: Hashable, Sendable {
    /// A physical LPI and the redistributor its collection targets.
    case lpi(intid: INTID, cpu: Int)
    case dropped(ITSDropReason)
}

extension ITS {
    /// The translation steps of `translate` (DeviceID → DTE → ITE → collection → redistributor)
    /// without the last one: nothing becomes pending. What a hypervisor needs to learn which
    /// guest LPI and vCPU an event stands for (KVM `vgic_its_resolve_lpi` walks its lists the
    /// same way) before it asks the host to map that event as a vLPI.
    public func resolve(deviceID: DeviceID, eventID: EventID) -> ITSResolution {
        guard enabled else { return .dropped(.itsDisabled) }
        let dte: DeviceTableEntry
        switch lookupDevice(deviceID.rawValue) {
        case .found(let entry): dte = entry
        case .outOfRange: return .dropped(.deviceIDOutOfRange)
        case .unmapped: return .dropped(.unmappedDevice)
        case .fault: return .dropped(.tableReadFault)
        }
        let ite: InterruptTranslationEntry
        switch lookupEvent(deviceID.rawValue, dte, eventID.rawValue) {
        case .found(let entry): ite = entry
        case .outOfRange: return .dropped(.eventIDOutOfRange)
        case .unmapped: return .dropped(.unmappedEvent)
        case .fault: return .dropped(.tableReadFault)
        }
        guard ite.isPhysical else { return .dropped(.virtualNotModelled) }
        switch lookupCollection(ite.collection.rawValue) {
        case .found(let cpu): return .lpi(intid: ite.intid, cpu: cpu)
        case .outOfRange, .unmapped: return .dropped(.unmappedCollection)
        case .fault: return .dropped(.tableReadFault)
        }
    }
}
