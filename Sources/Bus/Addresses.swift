/// Typed addresses. An IOVA, an IPA and a physical address are all 64-bit numbers, and the bug
/// this project exists to explain is about confusing them; so each is its own type, and one
/// cannot be passed where another is expected. Conversions are explicit (`init(_:)` on the raw
/// value) and happen only where the architecture translates.
public protocol TypedAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The address as the hardware sees it on its wires.
    var rawValue: UInt64 { get }
    init(_ rawValue: UInt64)
}

extension TypedAddress {
    @inlinable
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { Hex.format(rawValue) }

    /// `self + offset`, or nil if it would pass 2^64.
    @inlinable
    public func adding(_ offset: UInt64) -> Self? {
        let (sum, overflow) = rawValue.addingReportingOverflow(offset)
        return overflow ? nil : Self(sum)
    }

    /// The start of the granule that holds this address.
    @inlinable
    public func alignedDown(to granule: Granule) -> Self {
        Self(rawValue & ~(granule.size &- 1))
    }

    /// The offset of this address within its granule.
    @inlinable
    public func offset(in granule: Granule) -> UInt64 {
        rawValue & (granule.size &- 1)
    }

    /// Whether the address is a multiple of `alignment` (a power of two).
    @inlinable
    public func isAligned(to alignment: UInt64) -> Bool {
        alignment == 0 || rawValue & (alignment &- 1) == 0
    }
}

/// A system physical address (what the bus decodes): SMMUv3 "PA", GIC "physical address".
public struct PhysicalAddress: TypedAddress {
    public let rawValue: UInt64
    @inlinable public init(_ rawValue: UInt64) { self.rawValue = rawValue }
}

/// An intermediate physical address: the output of stage 1 and the input of stage 2
/// (Arm ARM "IPA"). In a VM it is the guest-physical address (QEMU's GPA).
public struct IntermediatePhysicalAddress: TypedAddress {
    public let rawValue: UInt64
    @inlinable public init(_ rawValue: UInt64) { self.rawValue = rawValue }
}

/// The short, customary name for an intermediate physical address.
public typealias IPA = IntermediatePhysicalAddress

/// An I/O virtual address: the address a device puts on the bus, the SMMU's input
/// (SMMUv3 "InputAddr"; Linux `dma_addr_t`).
public struct IOVA: TypedAddress {
    public let rawValue: UInt64
    @inlinable public init(_ rawValue: UInt64) { self.rawValue = rawValue }
}
