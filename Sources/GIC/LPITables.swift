import Bus

/// The LPI configuration table in memory (GICR_PROPBASER; GICv3 §5.1.1, docs/hardware.md §LPIs and redistributor tables): one
/// byte per LPI at PA + (INTID − 8192), Priority[7:2], bit 1 RES1 (Linux writes it as
/// "Group1"), Enable[0]. Linux's default byte is 0xA0 | 0x2 | Enable (`LPI_PROP_DEFAULT_PRIO`,
/// `LPI_PROP_GROUP1`, `LPI_PROP_ENABLED`).
public enum LPIConfigurationTable {
    /// The byte's address for `intid`, or nil below 8192 or past the 52-bit space.
    @inlinable
    public static func entryAddress(base: PhysicalAddress, intid: INTID) -> PhysicalAddress? {
        guard intid.isLPI, let a = base.adding(UInt64(intid.rawValue &- 8192)),
              a.rawValue < SystemBus.physicalAddressLimit else { return nil }
        return a
    }

    /// Priority[7:2] in place: the byte with bits[1:0] cleared is the priority value the CPU
    /// interface compares (lower = higher priority).
    @inlinable public static func priority(_ byte: UInt8) -> UInt8 { byte & 0xFC }
    @inlinable public static func isEnabled(_ byte: UInt8) -> Bool { byte & 1 == 1 }
    /// The byte Linux writes for a priority and enable state.
    @inlinable public static func entry(priority: UInt8, enabled: Bool) -> UInt8 {
        (priority & 0xFC) | 0x2 | (enabled ? 1 : 0)
    }
}

/// The LPI pending table in memory (GICR_PENDBASER; GICv3 §5.1.2, docs/hardware.md §LPIs and redistributor tables): one bit per
/// INTID starting at INTID 0, bit (INTID mod 8) of byte INTID / 8; the first 1 KiB (INTIDs below
/// 8192) is IMPLEMENTATION DEFINED and unused here.
public enum LPIPendingTable {
    @inlinable
    public static func byteAddress(base: PhysicalAddress, intid: INTID) -> PhysicalAddress? {
        guard let a = base.adding(UInt64(intid.rawValue / 8)), a.rawValue < SystemBus.physicalAddressLimit else { return nil }
        return a
    }

    @inlinable public static func bitMask(_ intid: INTID) -> UInt64 { UInt64(1) &<< UInt64(intid.rawValue % 8) }
}

/// GICR_PROPBASER (0x0070): IDbits[4:0], InnerCache[9:7], Shareability[11:10], PA[51:12],
/// OuterCache[58:56] (Linux arm-gic-v3.h, QEMU gicv3_internal.h).
public struct GICRPropbaser: Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue & GICRPropbaser.writableMask }
    public static let writableMask: UInt64 = .lowMask(5) | UInt64.lowMask(5) &<< 7 | UInt64(0xFF_FFFF_FFFF) &<< 12 | UInt64(7) &<< 56
    public var idBits: Int { Int(rawValue.bits(4, 0)) + 1 }
    public var physicalAddress: PhysicalAddress { PhysicalAddress(rawValue.keepingBits(51, 12)) }
}

/// GICR_PENDBASER (0x0078): InnerCache[9:7], Shareability[11:10], PA[51:16], OuterCache[58:56],
/// PTZ[62] (the table is known to be zero, so the redistributor need not read it).
public struct GICRPendbaser: Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue & GICRPendbaser.writableMask }
    public static let writableMask: UInt64 = UInt64.lowMask(5) &<< 7 | UInt64(0xF_FFFF_FFFF) &<< 16 | UInt64(7) &<< 56 | UInt64(1) &<< 62
    public var physicalAddress: PhysicalAddress { PhysicalAddress(rawValue.keepingBits(51, 16)) }
    public var pendingTableZero: Bool { rawValue.bit(62) }
}
