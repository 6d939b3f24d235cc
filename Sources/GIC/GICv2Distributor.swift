import Bus

/// The GICv2 register layout of the distributor (`GICConfiguration.version` = 2), over the same
/// SPI state as the GICv3 one (`DistributorSPI.swift`): GICv2 architecture specification (IHI
/// 0048B), §4.3 "Distributor register descriptions".
///
/// The model keeps one distributor class and switches the layout, rather than a second class,
/// because the SPI life cycle (pending, active, edge/level, priority) is the same in both
/// architectures; what differs is here:
/// - GICD_CTLR bit 0 (Enable) forwards interrupts to the CPU interfaces (§4.3.1).
/// - GICD_TYPER (§4.3.2): ITLinesNumber[4:0], CPUNumber[7:5] = CPU interfaces − 1, no LPIs.
/// - GICD_ITARGETSR<n> (0x800, §4.3.12): one byte per INTID, bit k = CPU interface k; byte and
///   word accessible. An SPI is forwarded to every interface its byte names (the first to
///   acknowledge takes it). Bytes for INTIDs 0–31 read as the reading CPU's own bit (banked).
/// - GICD_ICPIDR2 at 0xFE8 (ArchRev[7:4] = 2: 0x2B, as QEMU's GICv2 and Arm's GIC-400 report).
/// - One Security state (the model's choice, as QEMU `virt` without `secure=on`): GICD_IGROUPR is
///   not consulted and every interrupt is signalled as IRQ through GICC_IAR.
/// - No GICD_IROUTER, GICD_SETSPI_NSR or redistributors.
extension Distributor {
    public enum GICv2Offset {
        public static let itargetsr: UInt64 = 0x0800
        public static let sgir: UInt64 = 0x0F00
        public static let icpidr2: UInt64 = 0x0FE8
    }

    /// GICD_ICPIDR2 of a GICv2 (ArchRev 2).
    public static let gicv2PIDR2: UInt32 = 0x2B

    var gicv2Typer: UInt32 {
        UInt32(0)
            .settingBits(4, 0, to: UInt32((configuration.spiCount + 32) / 32 - 1))
            .settingBits(7, 5, to: UInt32(min(max(configuration.cpuCount, 1) - 1, 7)))
    }

    /// GICD_ITARGETSR<n>'s byte for SPI `intid`.
    public func targetByte(intid: UInt32) -> UInt8 {
        guard isImplementedSPI(intid) else { return 0 }
        let word = Int(GICv2Offset.itargetsr / 4) + Int(intid / 4)
        return UInt8(truncatingIfNeeded: storage[word] >> ((intid % 4) * 8))
    }

    /// Whether GICD_ITARGETSR names CPU interface `cpu` for SPI `intid`.
    func targets(intid: UInt32, cpu: Int) -> Bool {
        cpu >= 0 && cpu < 8 && targetByte(intid: intid) & (1 << UInt8(cpu)) != 0
    }

    /// A GICv2-only register read, or nil for the layout both versions share.
    func gicv2Read(offset: UInt64, size: Int) -> UInt64? {
        let targets = GICv2Offset.itargetsr..<(GICv2Offset.itargetsr + 0x400)
        if targets.contains(offset) {
            guard size == 1 || (size == 4 && offset & 3 == 0) else { return 0 }
            var value: UInt64 = 0
            for byte in 0..<UInt64(size) {
                let intid = UInt32(offset - GICv2Offset.itargetsr + byte)
                value |= UInt64(targetByte(intid: intid)) << (byte * 8)
            }
            return value
        }
        switch offset {
        case Offset.typer: return size == 4 ? UInt64(gicv2Typer) : 0
        case GICv2Offset.icpidr2: return size == 4 ? UInt64(Distributor.gicv2PIDR2) : 0
        case Offset.pidr2, MBIOffset.setspiNSR, MBIOffset.clrspiNSR, MBIOffset.setspiSR, MBIOffset.clrspiSR: return 0
        default: return offset >= Offset.irouter && offset < Offset.irouter + 0x2000 ? 0 : nil
        }
    }

    /// A GICv2-only register write; false for the layout both versions share.
    func gicv2Write(offset: UInt64, size: Int, value: UInt64) -> Bool {
        let targets = GICv2Offset.itargetsr..<(GICv2Offset.itargetsr + 0x400)
        if targets.contains(offset) {
            guard size == 1 || (size == 4 && offset & 3 == 0) else { return true }
            for byte in 0..<UInt64(size) {
                let intid = UInt32(offset - GICv2Offset.itargetsr + byte)
                // SGI/PPI target bytes are read-only (§4.3.12); unimplemented SPIs RAZ/WI.
                guard isImplementedSPI(intid) else { continue }
                let word = Int(GICv2Offset.itargetsr / 4) + Int(intid / 4)
                let shift = (intid % 4) * 8
                let newByte = UInt32(truncatingIfNeeded: (value >> (byte * 8)) & 0xFF)
                storage[word] = storage[word] & ~(0xFF << shift) | newByte << shift
            }
            return true
        }
        switch offset {
        case Offset.ctlr:
            // Bit 0 (Enable) only, with one Security state.
            if size == 4 { ctlr = UInt32(truncatingIfNeeded: value) & 1 }
            return true
        case Offset.typer, GICv2Offset.icpidr2, Offset.pidr2, MBIOffset.setspiNSR, MBIOffset.clrspiNSR,
             MBIOffset.setspiSR, MBIOffset.clrspiSR:
            return true
        default:
            return offset >= Offset.irouter && offset < Offset.irouter + 0x2000
        }
    }
}
