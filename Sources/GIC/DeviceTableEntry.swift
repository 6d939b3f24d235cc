import Bus

/// One entry of the ITS device table (8 bytes, at GITS_BASER0 + DeviceID × 8 or through a level-1
/// table when Indirect=1).
///
/// The in-memory format of ITS tables is IMPLEMENTATION DEFINED (GICv3 §5.2, docs/hardware.md §ITS registers).
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
