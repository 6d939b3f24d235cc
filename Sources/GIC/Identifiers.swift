import Bus

/// GICv3 EventID: the per-device interrupt number a device writes as the data of its MSI to
/// GITS_TRANSLATER (GICv3 §5.2; Linux `its_irq_compose_msi_msg` puts it in MSI data). Up to
/// GITS_TYPER.IDbits + 1 bits are implemented, and a device's ITT covers 2^(DTE.Size + 1) of them.
public struct EventID: TypedIdentifier {
    public let rawValue: UInt32
    @inlinable public init(_ rawValue: UInt32) { self.rawValue = rawValue }
}

/// GIC interrupt identifier. LPIs start at 8192 (GICv3 §1.2.3 INTID ranges); 1020–1023 are the
/// special INTIDs, 1023 being "no pending interrupt" as returned by ICC_IAR1_EL1.
public struct INTID: TypedIdentifier {
    public let rawValue: UInt32
    @inlinable public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    /// The first LPI INTID.
    public static let firstLPI = INTID(8192)
    /// ICC_IAR1_EL1's "spurious": nothing pending above the priority mask.
    public static let spurious = INTID(1023)

    /// Whether the INTID is in the LPI range (≥ 8192).
    @inlinable public var isLPI: Bool { rawValue >= 8192 }
}

/// ITS Interrupt Collection ID (ICID): names a collection, which MAPC maps to a redistributor
/// (GICv3 §5.2.2). 16 bits unless GITS_TYPER.CIL=1 narrows it to CIDbits + 1.
public struct CollectionID: TypedIdentifier {
    public let rawValue: UInt16
    @inlinable public init(_ rawValue: UInt16) { self.rawValue = rawValue }
}

/// The RDbase / target field of MAPC, MOVALL and SYNC (DW2[51:16], MOVALL's second in DW3[51:16]).
///
/// GITS_TYPER.PTA decides its meaning (docs/hardware.md §ITS commands, Linux `its_encode_target`, QEMU
/// `process_mapc`): with PTA=0 it is GICR_TYPER.Processor_Number; with PTA=1 it is the physical
/// address of the redistributor's RD_base frame, bits [51:16]. The raw field is kept as given so
/// a command round-trips bit-exactly whichever way the ITS interprets it.
public struct ITSTarget: Hashable, Sendable, CustomStringConvertible {
    /// The 36-bit field value (bits [51:16] of the command word, shifted down).
    public let rawValue: UInt64
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue & .lowMask(36) }

    /// A PTA=0 target: the redistributor's processor number.
    public static func processor(_ number: Int) -> ITSTarget {
        ITSTarget(rawValue: UInt64(truncatingIfNeeded: max(number, 0)))
    }

    /// A PTA=1 target: the redistributor's RD_base physical address (64 KiB aligned).
    public static func address(_ pa: PhysicalAddress) -> ITSTarget {
        ITSTarget(rawValue: pa.rawValue &>> 16)
    }

    /// The field read as a physical address (PTA=1).
    public var physicalAddress: PhysicalAddress { PhysicalAddress(rawValue &<< 16) }

    public var description: String { Hex.format(rawValue, minDigits: 1) }
}
