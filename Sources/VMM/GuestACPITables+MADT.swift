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
