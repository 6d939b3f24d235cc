import Bus

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
