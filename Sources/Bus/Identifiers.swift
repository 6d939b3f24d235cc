/// Typed identifiers carried on the bus and in tables. Each wraps one integer of the width the
/// architecture gives it, and is its own type so that, for example, a DeviceID (the ITS's view of
/// a requester, from `msi-map`) can never be used where a StreamID (the SMMU's view, from
/// `iommu-map`) is expected, even when a platform makes their values equal.
public protocol TypedIdentifier: Hashable, Comparable, Sendable, CustomStringConvertible {
    associatedtype RawValue: FixedWidthInteger & UnsignedInteger & Sendable
    var rawValue: RawValue { get }
    init(_ rawValue: RawValue)
}

extension TypedIdentifier {
    @inlinable
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { Hex.format(UInt64(rawValue), minDigits: 1) }
}

/// SMMUv3 StreamID (spec §3.3): up to 32 bits, IDR1.SIDSIZE of them implemented.
public struct StreamID: TypedIdentifier {
    public let rawValue: UInt32
    @inlinable public init(_ rawValue: UInt32) { self.rawValue = rawValue }
}

/// SMMUv3 SubstreamID (spec §3.3.2): 20 bits (PASID), IDR1.SSIDSIZE implemented.
public struct SubstreamID: TypedIdentifier {
    public let rawValue: UInt32
    @inlinable public init(_ rawValue: UInt32) { self.rawValue = rawValue }
}

/// GICv3 ITS DeviceID: the requester's identity as the ITS sees it, sent as bus sideband with the
/// write to GITS_TRANSLATER (GICv3 §5.2; `msi-map` in DT, ITS group mapping in IORT).
public struct DeviceID: TypedIdentifier {
    public let rawValue: UInt32
    @inlinable public init(_ rawValue: UInt32) { self.rawValue = rawValue }
}

/// Stage-1 address space identifier (CD.ASID, 8 or 16 bits per IDR0.ASID16).
public struct ASID: TypedIdentifier {
    public let rawValue: UInt16
    @inlinable public init(_ rawValue: UInt16) { self.rawValue = rawValue }
}

/// Virtual machine identifier (STE.S2VMID, 8 or 16 bits per IDR0.VMID16).
public struct VMID: TypedIdentifier {
    public let rawValue: UInt16
    @inlinable public init(_ rawValue: UInt16) { self.rawValue = rawValue }
}
