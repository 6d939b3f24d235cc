import Firmware

extension GuestACPITables {
    /// QEMU's `VIRTUAL_PMU_IRQ`: PPI 7, GSIV 23.
    static let pmuGSIV: UInt32 = 23

    /// The MADT as QEMU's `build_madt` writes it for `virt` with GICv3 and an ITS (table
    /// revision 4; ACPI 6.5 §5.2.12): the GIC distributor (GIC ID 0, version 3), then one GICC
    /// per vCPU (80 bytes: CPU interface number = ACPI processor UID = the index, flags
    /// enabled, performance interrupt `VIRTUAL_PMU_IRQ` with a PMU, no GICv2 frames, no
    /// maintenance interrupt (`virtualization=off`), GICR base 0, MPIDR = `arm_cpu_mp_affinity`:
    /// Aff0 = the index below 16 vCPUs, Aff1 above), the one redistributor discovery range of
    /// the layout, and GIC ITS 0 at the layout's ITS base.
    public var madt: MADT {
        if gic == .gicv2m { return madtGICv2 }
        var structures: [MADTStructure] = [
            MADTStructure(kind: .gicd(MADTGICD(gicID: 0, baseAddress: layout.distributor.base, version: 3))),
        ]
        for index in 0..<cpuCount {
            let cpu = UInt32(index)
            structures.append(MADTStructure(kind: .gicc(MADTGICC(
                cpuInterfaceNumber: cpu, uid: cpu, flags: 1, performanceInterrupt: pmu ? Self.pmuGSIV : 0,
                mpidr: Self.mpidr(index), efficiencyClass: 0, reserved2: 0, speOverflowInterrupt: 0))))
        }
        structures.append(MADTStructure(kind: .gicr(MADTGICR(baseAddress: layout.redistributors.base,
                                                             length: UInt32(clamping: layout.redistributors.size)))))
        structures.append(MADTStructure(kind: .its(MADTGICITS(translationID: 0, baseAddress: layout.its.base))))
        return MADT(header: Self.header("APIC", revision: 4), structures: structures)
    }

    /// The MADT of `gic-version=2` (`build_madt`, same revision): the distributor with GIC
    /// version 2; per vCPU a GICC whose physical base address is `VIRT_GIC_CPU` and whose GICV /
    /// GICH are `VIRT_GIC_VCPU` 0x0804_0000 / `VIRT_GIC_HYP` 0x0803_0000 (QEMU writes them for
    /// every GICv2 machine); no GICR and no ITS; then the GIC MSI Frame (ACPI 6.5 §5.2.12.16,
    /// type 0xD, 24 bytes): frame ID 0, the v2m frame's base, flags 1 (SPI Count/Base Select: use
    /// the fields below instead of MSI_TYPER), SPI count `NUM_GICV2M_SPIS` 64, SPI base
    /// `a15irqmap[VIRT_GIC_V2M]` + `ARM_SPI_BASE` = 80.
    var madtGICv2: MADT {
        var structures: [MADTStructure] = [
            MADTStructure(kind: .gicd(MADTGICD(gicID: 0, baseAddress: layout.distributor.base, version: 2))),
        ]
        // GICV and GICH at QEMU virt's addresses, kept relative to GICC on another layout.
        let gicv = layout.cpuInterface.base &+ 0x3_0000
        let gich = layout.cpuInterface.base &+ 0x2_0000
        for index in 0..<cpuCount {
            let cpu = UInt32(index)
            structures.append(MADTStructure(kind: .gicc(MADTGICC(
                cpuInterfaceNumber: cpu, uid: cpu, flags: 1, performanceInterrupt: pmu ? Self.pmuGSIV : 0,
                physicalBaseAddress: layout.cpuInterface.base, gicvBaseAddress: gicv, gichBaseAddress: gich,
                mpidr: Self.mpidr(index), efficiencyClass: 0, reserved2: 0, speOverflowInterrupt: 0))))
        }
        structures.append(MADTStructure(kind: .msiFrame(MADTGICMSIFrame(
            frameID: 0, baseAddress: layout.v2mFrame.base, flags: 1,
            spiCount: UInt16(GuestInterruptController.v2mSPICount), spiBase: UInt16(GuestInterruptController.v2mFirstSPI)))))
        return MADT(header: Self.header("APIC", revision: 4), structures: structures)
    }

    /// `arm_cpu_mp_affinity` with virt's GICv3 cluster size of 16 (`virt_cpu_mp_affinity`):
    /// Aff0 = index mod 16, Aff1 = index / 16 — the `reg` of `GuestDeviceTree`'s cpu nodes.
    static func mpidr(_ index: Int) -> UInt64 {
        UInt64(index % 16) | UInt64(index / 16) << 8
    }

    /// The MCFG as QEMU's `build_mcfg` (hw/acpi/pci.c, table revision 1) writes it: one
    /// allocation, the layout's ECAM, segment 0, buses 0 up to ECAM size / 1 MiB − 1.
    public var mcfg: MCFG {
        let buses = max(layout.ecam.size >> 20, 1)
        return MCFG(header: Self.header("MCFG", revision: 1), entries: [
            MCFGEntry(baseAddress: layout.ecam.base, segment: 0, startBus: 0, endBus: UInt8(clamping: buses - 1)),
        ])
    }
}
