/// A translation granule (Arm ARM VMSAv8-64 "translation granule"): the page size a set of
/// tables is built on. It fixes the bits resolved per level (`stride` = shift − 3, since every
/// descriptor is 8 bytes and a table fills one granule) and the shift of each level.
public enum Granule: Int, CaseIterable, Sendable, CustomStringConvertible {
    case size4K = 12
    case size16K = 14
    case size64K = 16

    /// log2 of the granule size in bytes.
    @inlinable public var shift: Int { rawValue }
    /// The granule size in bytes.
    @inlinable public var size: UInt64 { 1 &<< UInt64(rawValue) }
    /// Input-address bits resolved by one full table level.
    @inlinable public var stride: Int { rawValue - 3 }
    /// Descriptors in one full table.
    @inlinable public var entriesPerTable: Int { 1 << stride }

    /// The lowest address bit resolved at `level` (0…3): shift + (3 − level) × stride
    /// (Arm ARM D8.2; docs/hardware.md §Translation table walks: 4K → 39/30/21/12, 16K → 47/36/25/14, 64K → 55/42/29/16).
    @inlinable
    public func levelShift(_ level: Int) -> Int { shift + (3 - level) * stride }

    /// The granule for a page size in bytes, if it is one.
    public init?(pageSize: UInt64) {
        switch pageSize {
        case 4096: self = .size4K
        case 16384: self = .size16K
        case 65536: self = .size64K
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .size4K: "4K"
        case .size16K: "16K"
        case .size64K: "64K"
        }
    }
}
