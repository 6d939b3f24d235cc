import Bus

/// One entry of an ITT (the per-device InterruptTranslationTable at the MAPD ITT_addr), indexed by
/// EventID × GITS_TYPER.ITT_entry_size.
///
/// Format (IMPLEMENTATION DEFINED; QEMU's `ITE_L`/`ITE_H`): the first 8 bytes hold Valid[0],
/// IntType[1] (1 = physical), INTID[25:2], ICID[47:32], vPEID[63:48]; when the entry is 12 bytes
/// or more, bytes 8–11 hold the GICv4 doorbell INTID[24:0] (1023 for physical entries).
public struct InterruptTranslationEntry: Hashable, Sendable {
    public var rawValue: UInt64
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }

    public init(physicalINTID intid: INTID, collection: CollectionID) {
        rawValue = UInt64(0)
            .settingBit(0, to: true)
            .settingBit(1, to: true)
            .settingBits(25, 2, to: UInt64(intid.rawValue))
            .settingBits(47, 32, to: UInt64(collection.rawValue))
    }

    @inlinable public var valid: Bool { rawValue.bit(0) }
    @inlinable public var isPhysical: Bool { rawValue.bit(1) }
    @inlinable public var intid: INTID { INTID(UInt32(truncatingIfNeeded: rawValue.bits(25, 2))) }
    @inlinable public var collection: CollectionID { CollectionID(UInt16(truncatingIfNeeded: rawValue.bits(47, 32))) }

    /// The entry with a different ICID (MOVI).
    public func moved(to collection: CollectionID) -> InterruptTranslationEntry {
        InterruptTranslationEntry(rawValue: rawValue.settingBits(47, 32, to: UInt64(collection.rawValue)))
    }

    /// The doorbell word written after the first 8 bytes of a physical entry.
    public static let physicalDoorbell: UInt64 = 1023
}

/// Addressing of one device's ITT.
public enum InterruptTranslationTable {
    /// The address of EventID's entry, or nil if the sum leaves the 52-bit space.
    @inlinable
    public static func entryAddress(itt: PhysicalAddress, event: EventID, entrySize: Int) -> PhysicalAddress? {
        let (offset, o1) = UInt64(event.rawValue).multipliedReportingOverflow(by: UInt64(entrySize))
        guard !o1, let address = itt.adding(offset),
              address.rawValue < SystemBus.physicalAddressLimit else { return nil }
        return address
    }
}
