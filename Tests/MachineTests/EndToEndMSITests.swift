import Testing
import Bus
import Firmware
import GIC
import PCI
import SMMUv3
@testable import Machine
@testable import Testbed

/// One MSI from a PCIe function to a CPU on the `qemu-virt` preset, through architected
/// structures only: the function's MSI-X entry, the root complex's RID maps, the SMMU's STE/CD/
/// page tables, the ITS's device table/ITT/collection table, the redistributor's LPI tables.
@Suite("End to end: MSI-X vector to LPI on qemu-virt")
struct EndToEndMSITests {
    /// RID 00:01.0 = bus 0, device 1, function 0 → 0x0008. qemu-virt's iommu-map and msi-map
    /// are identity over 0…0xFFFF (<0 &smmu 0 0x10000>, <0 &its 0 0x10000>), so StreamID and
    /// DeviceID are 0x8 too.
    static let rid = RequesterID(bus: 0, device: 1, function: 0)
    /// QEMU virt's ITS is at 0x0808_0000; GITS_TRANSLATER is at +0x10040.
    static let doorbell: UInt64 = 0x0809_0040

    struct Rig {
        let machine: Machine
        let bareMetal: BareMetal
        let function: PCIFunction
    }

    /// Brings up LPIs, the ITS, the SMMU and a 4-vector MSI-X endpoint; maps DeviceID 8's events
    /// 0…3 to LPIs 8192…8195 on collection 0 (CPU 0, the only CPU of the dumped machine).
    static func rig(_ preset: MachinePreset = .qemuVirt) throws -> Rig {
        let machine = try preset.makeMachine()
        let bm = try BareMetal(machine: machine)
        try bm.enableLPIs()
        try bm.enableITS()
        try bm.resetSMMU()
        let function = try bm.addMSIXEndpoint(requesterID: rid, vectors: 4, barAddress: 0x1000_0000)
        try bm.mapDevice(DeviceID(0x8), events: 4, firstINTID: 8192)
        return Rig(machine: machine, bareMetal: bm, function: function)
    }

    @Test("with the STE in bypass, vector 2 written with the physical doorbell reaches CPU 0 as LPI 8194")
    func bypassDelivers() throws {
        let rig = try Self.rig()
        try rig.bareMetal.installSTE(.bypass, streamID: StreamID(0x8))
        try rig.bareMetal.writeMSIXEntry(rig.function, vector: 2, address: Self.doorbell, data: 2)
        let outcome = rig.function.raise(vector: 2)
        #expect(outcome.result?.status == .completed)
        // EventID 2 of DeviceID 8 was mapped to 8192 + 2.
        #expect(rig.machine.gic?.acknowledge(cpu: 0) == 8194)
        #expect(rig.machine.gic?.acknowledge(cpu: 0) == 1023, "nothing else pending: 1023 is the spurious INTID")
    }

    @Test("with a stage-1 mapping of IOVA 0xFFFF_F000 → the ITS page, the IOVA doorbell delivers")
    func stage1Delivers() throws {
        let rig = try Self.rig()
        let tables = try rig.bareMetal.enableStage1(streamID: StreamID(0x8))
        try tables.map(input: 0xFFFF_F000, output: 0x0809_0000, size: 0x1000)
        try rig.bareMetal.writeMSIXEntry(rig.function, vector: 1, address: 0xFFFF_F040, data: 1)
        let outcome = rig.function.raise(vector: 1)
        #expect(outcome.result?.status == .completed)
        #expect(rig.machine.gic?.acknowledge(cpu: 0) == 8193)
        // The translation went through the stage-1 tables: one TLB miss, a 4-level 4K walk.
        let counters = rig.machine.smmus[0].translator.counters
        #expect(counters.tlbMisses == 1)
        #expect(counters.stage1DescriptorReads == 4)
    }

    @Test("an unmapped IOVA doorbell faults at stage 1 and nothing becomes pending")
    func unmappedFaults() throws {
        let rig = try Self.rig()
        _ = try rig.bareMetal.enableStage1(streamID: StreamID(0x8))
        try rig.bareMetal.writeMSIXEntry(rig.function, vector: 0, address: 0xFFFF_F040, data: 0)
        let journal = Journal()
        rig.machine.journal = journal
        let outcome = rig.function.raise(vector: 0)
        rig.machine.journal = nil
        #expect(outcome.result?.status == .aborted)
        #expect(rig.machine.gic?.acknowledge(cpu: 0) == 1023)
        let faults = journal.entries.compactMap { if case .smmuFault(let f) = $0 { SMMUFault(f) } else { nil } }
        guard faults.count == 1, let fault = faults.first else {
            Issue.record("expected one fault in \(journal.entries)"); return
        }
        #expect(fault.type == .fTranslation)
        #expect(fault.stage2 == false)
        #expect(fault.faultClass == .input)
        #expect(fault.inputAddress == 0xFFFF_F040)
        #expect(fault.streamID == StreamID(0x8))
    }

    @Test("on the untranslated-ITS preset the physical doorbell delivers even though stage 1 maps nothing")
    func untranslatedITS() throws {
        let rig = try Self.rig(.qemuVirtUntranslatedITS)
        _ = try rig.bareMetal.enableStage1(streamID: StreamID(0x8))
        try rig.bareMetal.writeMSIXEntry(rig.function, vector: 3, address: Self.doorbell, data: 3)
        #expect(rig.function.raise(vector: 3).result?.status == .completed)
        #expect(rig.machine.gic?.acknowledge(cpu: 0) == 8195)
        // DMA elsewhere is still translated, and faults with no mapping.
        #expect(rig.function.dma(.write, address: IOVA(0x1000), size: 4, data: 1).result?.status == .aborted)
    }
}
