import Bus

/// One entry of the ITS device table (8 bytes, at GITS_BASER0 + DeviceID × 8 or through a level-1
/// table when Indirect=1).
///
/// The in-memory format of ITS tables is IMPLEMENTATION DEFINED (GICv3 §5.2, HARDWARE.md §2.1).
/// This model uses QEMU's layout (gicv3_internal.h `DTE`) so a table dump reads the same in both:
/// Valid[0], Size[5:1] (EventID bits − 1, from MAPD), ITT_addr[49:6] (the ITT physical address
/// bits [51:8], i.e. address >> 8).
public struct DeviceTableEntry: Hashable, Sendable {
    public var rawValue: UInt64
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }

    public init(valid: Bool, size: UInt8, ittAddress: PhysicalAddress) {
        rawValue = UInt64(0)
            .settingBit(0, to: valid)
            .settingBits(5, 1, to: UInt64(size))
            .settingBits(49, 6, to: ittAddress.rawValue.bits(51, 8))
    }

    public static let byteCount = 8

    @inlinable public var valid: Bool { rawValue.bit(0) }
    /// MAPD Size: the ITT holds 2^(size + 1) events.
    @inlinable public var size: UInt8 { UInt8(truncatingIfNeeded: rawValue.bits(5, 1)) }
    @inlinable public var ittAddress: PhysicalAddress { PhysicalAddress(rawValue.bits(49, 6) &<< 8) }
    /// Number of EventIDs the ITT covers (2^(Size+1), at most 2^32).
    @inlinable public var eventCount: UInt64 { UInt64(1) &<< (UInt64(size) &+ 1) }
}

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

/// One entry of the collection table (8 bytes; GITS_BASER1, or an ITS-internal register when
/// ICID < GITS_TYPER.HCC).
///
/// Format (IMPLEMENTATION DEFINED): Valid[0], RDbase[36:1], the MAPC target field as given (a
/// processor number when PTA=0, RD_base PA[51:16] when PTA=1). QEMU's CTE is Valid[0] and a
/// 16-bit processor number at [16:1]; the field is widened here so PTA=1 addresses fit.
public struct CollectionTableEntry: Hashable, Sendable {
    public var rawValue: UInt64
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }

    public init(valid: Bool, target: ITSTarget) {
        rawValue = UInt64(0).settingBit(0, to: valid).settingBits(36, 1, to: target.rawValue)
    }

    public static let byteCount = 8

    @inlinable public var valid: Bool { rawValue.bit(0) }
    @inlinable public var target: ITSTarget { ITSTarget(rawValue: rawValue.bits(36, 1)) }
}
