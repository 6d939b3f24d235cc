/// The Multiple APIC Description Table, signature "APIC" (ACPI 6.5 §5.2.12, Table 5.19;
/// ACPICA `ACPI_TABLE_MADT`), with the Arm GIC structures decoded (§5.2.12.14–.18) and every
/// other structure kept as bytes.
public struct MADT: Hashable, Sendable, ACPIFieldDump {
    public var header: ACPITableHeader
    /// "Local Interrupt Controller Address" (iasl: "Local Apic Address"); 0 on Arm.
    public var localInterruptControllerAddress: UInt32
    /// Bit 0 PCAT_COMPAT.
    public var flags: UInt32
    public var structures: [MADTStructure]

    public init(header: ACPITableHeader = ACPITableHeader(signature: "APIC", revision: 4), localInterruptControllerAddress: UInt32 = 0,
                flags: UInt32 = 0, structures: [MADTStructure]) {
        self.header = header
        self.localInterruptControllerAddress = localInterruptControllerAddress
        self.flags = flags
        self.structures = structures
    }

    public var giccs: [MADTGICC] { structures.compactMap { if case .gicc(let s) = $0.kind { return s } else { return nil } } }
    public var gicds: [MADTGICD] { structures.compactMap { if case .gicd(let s) = $0.kind { return s } else { return nil } } }
    public var msiFrames: [MADTGICMSIFrame] { structures.compactMap { if case .msiFrame(let s) = $0.kind { return s } else { return nil } } }
    public var gicrs: [MADTGICR] { structures.compactMap { if case .gicr(let s) = $0.kind { return s } else { return nil } } }
    public var its: [MADTGICITS] { structures.compactMap { if case .its(let s) = $0.kind { return s } else { return nil } } }
}

/// One interrupt controller structure: type, length (1 byte each), body.
public struct MADTStructure: Hashable, Sendable {
    /// Byte offset in the table, as read (the writer ignores it).
    public var offset: Int
    public var kind: Kind
    /// Bytes past the fields this reader decodes (a newer, longer structure), kept for the writer.
    public var extra: [UInt8]

    public init(offset: Int = 0, kind: Kind, extra: [UInt8] = []) {
        self.offset = offset
        self.kind = kind
        self.extra = extra
    }

    public enum Kind: Hashable, Sendable {
        case gicc(MADTGICC)
        case gicd(MADTGICD)
        case msiFrame(MADTGICMSIFrame)
        case gicr(MADTGICR)
        case its(MADTGICITS)
        /// Any other structure: its type and the bytes after type and length.
        case other(type: UInt8, body: [UInt8])
    }

    public var type: UInt8 {
        switch kind {
        case .gicc: return 0x0B
        case .gicd: return 0x0C
        case .msiFrame: return 0x0D
        case .gicr: return 0x0E
        case .its: return 0x0F
        case .other(let type, _): return type
        }
    }
}

/// GIC CPU interface (GICC), type 0x0B (ACPI 6.5 §5.2.12.14, Table 5.37): 76 bytes in ACPI
/// 5.1, 80 from 6.0 (efficiency class), SPE overflow interrupt in 6.3, TRBE interrupt in 6.5 (82).
public struct MADTGICC: Hashable, Sendable {
    public var reserved: UInt16
    public var cpuInterfaceNumber: UInt32
    public var uid: UInt32
    /// Bit 0 enabled, bit 1 performance interrupt mode, bit 2 VGIC maintenance interrupt mode,
    /// bit 3 online capable (6.5).
    public var flags: UInt32
    public var parkingProtocolVersion: UInt32
    public var performanceInterrupt: UInt32
    public var parkedAddress: UInt64
    /// GICC physical base (GICv2 CPU interface, or GICv3's legacy interface).
    public var physicalBaseAddress: UInt64
    public var gicvBaseAddress: UInt64
    public var gichBaseAddress: UInt64
    public var vgicMaintenanceInterrupt: UInt32
    /// This CPU's redistributor (GICv3; 0 when GICR structures describe them).
    public var gicrBaseAddress: UInt64
    public var mpidr: UInt64
    /// ACPI 6.0 (length ≥ 78: the class and one reserved byte).
    public var efficiencyClass: UInt8?
    public var reserved2: UInt8?
    /// ACPI 6.3 (length ≥ 80).
    public var speOverflowInterrupt: UInt16?
    /// ACPI 6.5 (length ≥ 82).
    public var trbeInterrupt: UInt16?

    public init(reserved: UInt16 = 0, cpuInterfaceNumber: UInt32, uid: UInt32, flags: UInt32 = 1, parkingProtocolVersion: UInt32 = 0,
                performanceInterrupt: UInt32 = 0, parkedAddress: UInt64 = 0, physicalBaseAddress: UInt64 = 0,
                gicvBaseAddress: UInt64 = 0, gichBaseAddress: UInt64 = 0, vgicMaintenanceInterrupt: UInt32 = 0,
                gicrBaseAddress: UInt64 = 0, mpidr: UInt64, efficiencyClass: UInt8? = 0, reserved2: UInt8? = 0,
                speOverflowInterrupt: UInt16? = 0, trbeInterrupt: UInt16? = nil) {
        self.reserved = reserved
        self.cpuInterfaceNumber = cpuInterfaceNumber
        self.uid = uid
        self.flags = flags
        self.parkingProtocolVersion = parkingProtocolVersion
        self.performanceInterrupt = performanceInterrupt
        self.parkedAddress = parkedAddress
        self.physicalBaseAddress = physicalBaseAddress
        self.gicvBaseAddress = gicvBaseAddress
        self.gichBaseAddress = gichBaseAddress
        self.vgicMaintenanceInterrupt = vgicMaintenanceInterrupt
        self.gicrBaseAddress = gicrBaseAddress
        self.mpidr = mpidr
        self.efficiencyClass = efficiencyClass
        self.reserved2 = reserved2
        self.speOverflowInterrupt = speOverflowInterrupt
        self.trbeInterrupt = trbeInterrupt
    }

    public var isEnabled: Bool { flags & 1 != 0 }
    public var isOnlineCapable: Bool { flags & 8 != 0 }
}

/// GIC distributor (GICD), type 0x0C (ACPI 6.5 §5.2.12.15, Table 5.39): 24 bytes.
public struct MADTGICD: Hashable, Sendable {
    public var reserved: UInt16
    public var gicID: UInt32
    public var baseAddress: UInt64
    /// "System Vector Base": must be 0.
    public var systemVectorBase: UInt32
    /// GIC version (Table 5.40): 0 = not given (probe the hardware), 1 = GICv1, 2 = GICv2,
    /// 3 = GICv3, 4 = GICv4.
    public var version: UInt8
    public var reserved2: [UInt8]

    public init(reserved: UInt16 = 0, gicID: UInt32 = 0, baseAddress: UInt64, systemVectorBase: UInt32 = 0, version: UInt8,
                reserved2: [UInt8] = [0, 0, 0]) {
        self.reserved = reserved
        self.gicID = gicID
        self.baseAddress = baseAddress
        self.systemVectorBase = systemVectorBase
        self.version = version
        self.reserved2 = reserved2
    }
}

/// GIC MSI frame (GICv2m), type 0x0D (ACPI 6.5 §5.2.12.16, Table 5.41): 24 bytes.
public struct MADTGICMSIFrame: Hashable, Sendable {
    public var reserved: UInt16
    public var frameID: UInt32
    public var baseAddress: UInt64
    /// Bit 0 SPI count/base select: use `spiCount`/`spiBase` instead of MSI_TYPER.
    public var flags: UInt32
    public var spiCount: UInt16
    public var spiBase: UInt16

    public init(reserved: UInt16 = 0, frameID: UInt32, baseAddress: UInt64, flags: UInt32 = 0, spiCount: UInt16 = 0, spiBase: UInt16 = 0) {
        self.reserved = reserved
        self.frameID = frameID
        self.baseAddress = baseAddress
        self.flags = flags
        self.spiCount = spiCount
        self.spiBase = spiBase
    }

    public var overridesTyper: Bool { flags & 1 != 0 }
}

/// GIC redistributor discovery range (GICR), type 0x0E (ACPI 6.5 §5.2.12.17, Table 5.43): 16 bytes.
public struct MADTGICR: Hashable, Sendable {
    /// Byte 2 flags (ACPI 6.5: bit 0 GICR non-coherent) and byte 3 reserved, as one field.
    public var reserved: UInt16
    public var baseAddress: UInt64
    public var length: UInt32

    public init(reserved: UInt16 = 0, baseAddress: UInt64, length: UInt32) {
        self.reserved = reserved
        self.baseAddress = baseAddress
        self.length = length
    }
}

/// GIC ITS, type 0x0F (ACPI 6.5 §5.2.12.18, Table 5.45): 20 bytes. IORT ITS groups name ITSs
/// by `translationID`.
public struct MADTGICITS: Hashable, Sendable {
    public var reserved: UInt16
    public var translationID: UInt32
    public var baseAddress: UInt64
    public var reserved2: UInt32

    public init(reserved: UInt16 = 0, translationID: UInt32, baseAddress: UInt64, reserved2: UInt32 = 0) {
        self.reserved = reserved
        self.translationID = translationID
        self.baseAddress = baseAddress
        self.reserved2 = reserved2
    }
}
