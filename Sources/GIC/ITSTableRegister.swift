import Bus

/// GITS_BASER<n> (GICv3 §12.19; fields in docs/hardware.md §ITS registers, Linux arm-gic-v3.h GITS_BASER_*,
/// QEMU gicv3_internal.h): Size[7:0] (pages − 1), PageSize[9:8] (0 4K, 1 16K, 2 64K),
/// Shareability[11:10], PA[47:12] (with 64 KiB pages PA[47:16] plus PA[51:48] in bits[15:12]),
/// EntrySize[52:48] (bytes − 1, RO), OuterCache[55:53], Type[58:56] (RO), InnerCache[61:59],
/// Indirect[62], Valid[63].
public struct GITSBaser: Hashable, Sendable {
    public var rawValue: UInt64
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// GITS_BASER.Type values.
    public enum TableType {
        public static let none: UInt64 = 0
        public static let devices: UInt64 = 1
        public static let vPEs: UInt64 = 2
        public static let collections: UInt64 = 4
    }

    @inlinable public var valid: Bool { rawValue.bit(63) }
    @inlinable public var indirect: Bool { rawValue.bit(62) }
    @inlinable public var type: UInt64 { rawValue.bits(58, 56) }
    @inlinable public var entrySize: UInt64 { rawValue.bits(52, 48) &+ 1 }
    @inlinable public var pageCount: UInt64 { rawValue.bits(7, 0) &+ 1 }

    /// Page size. The reserved encoding 3 is treated as 64 KiB (the largest), a documented choice:
    /// the spec does not give it a meaning and QEMU would mis-size the table either way.
    @inlinable public var pageShift: UInt64 {
        switch rawValue.bits(9, 8) {
        case 0: 12
        case 1: 14
        default: 16
        }
    }

    @inlinable public var pageSize: UInt64 { UInt64(1) &<< pageShift }

    /// Table base address. For 64 KiB pages bits[15:12] hold PA[51:48].
    @inlinable public var physicalAddress: PhysicalAddress {
        if pageShift == 16 {
            return PhysicalAddress(rawValue.keepingBits(47, 16) | (rawValue.bits(15, 12) &<< 48))
        }
        return PhysicalAddress(rawValue.keepingBits(47, 12))
    }

    /// Bits software may write (Type and EntrySize are read-only).
    public static let writableMask: UInt64 = ~(UInt64.lowMask(5) &<< 48 | UInt64.lowMask(3) &<< 56)

    /// Where a table lookup led.
    public enum Lookup: Hashable, Sendable {
        case entry(PhysicalAddress)
        /// The index is beyond the table (flat: Size+1 pages; indirect: the level-1 table), or the
        /// register is not Valid.
        case outOfRange
        /// Indirect table whose level-1 entry for this index has Valid=0: no level-2 page.
        case notAllocated
        /// Reading the level-1 entry failed on the bus.
        case fault(PhysicalAddress)
    }

    /// The address of entry `index`, walking a 2-level table when Indirect=1.
    ///
    /// Flat: PA + index × EntrySize within (Size+1) pages. Indirect (GICv3 §5.2.1 "two-level
    /// tables", docs/hardware.md §ITS registers): the level-1 table is (Size+1) pages of 8-byte entries, Valid[63]
    /// and the level-2 page address in bits[51:pageShift] (QEMU takes the low 51 bits; a level-2
    /// page is page-aligned, so the two agree for any page Linux allocates); each level-2 page
    /// holds PageSize / EntrySize entries.
    @inlinable
    public func entryAddress(index: UInt64, readL1: (PhysicalAddress) throws(BusError) -> UInt64) -> Lookup {
        guard valid else { return .outOfRange }
        let esz = entrySize
        let tableBytes = pageCount &<< pageShift
        if !indirect {
            guard index < tableBytes / esz else { return .outOfRange }
            guard let address = physicalAddress.adding(index &* esz) else { return .outOfRange }
            return .entry(address)
        }
        let perPage = pageSize / esz
        guard perPage > 0 else { return .outOfRange }
        let l1Index = index / perPage
        guard l1Index < tableBytes / 8, let l1Address = physicalAddress.adding(l1Index &* 8) else { return .outOfRange }
        let l1: UInt64
        do { l1 = try readL1(l1Address) } catch { return .fault(l1Address) }
        guard l1.bit(63) else { return .notAllocated }
        let l2 = PhysicalAddress(l1.keepingBits(51, Int(pageShift)))
        guard let address = l2.adding((index % perPage) &* esz) else { return .outOfRange }
        return .entry(address)
    }
}
