import Testing
import Bus
import SMMUv3
@testable import LinuxKernel

/// A guest that gets its stage 1 wrong: the SMMU answers with the architected event, the host
/// forwards only what belongs to stage 1 (`arm_smmu_handle_event`: the listed event IDs with
/// S2 = 0), and nothing outside what stage 2 maps is touched.
@Suite("iommufd nesting: bad guest stage-1 input", .serialized)
struct NestedBadGuestTests {
    typealias F = NestedFixture

    @Test("a vSTE whose S1ContextPtr lies outside guest RAM: the CD fetch faults at stage 2 (S2=1, CLASS=CD) — host only")
    func contextPointerOutsideGuestRAM() throws {
        let f = try F.make()
        let (queue, _) = try f.iommufd.veventqAlloc(viommuID: f.viommu)
        let outside: UInt64 = 0x8000_0000
        try f.attachNested([1 | (0b101 << 1) | outside, 0])
        #expect(f.dmaWrite(F.gIOVA, 1) == .aborted)
        let event = try #require(try f.smmu.serviceEventQueue().first)
        #expect(event.stage2 && event.faultClass == 0b00, "stage 2, CLASS = CD")
        #expect(event.ipa == IPA(outside))
        #expect(try f.iommufd.veventqRead(queue).isEmpty, "stage-2 faults stay with the host")
    }

    @Test("a CD with T0SZ 63: C_BAD_CD, forwarded to the vEVENTQ with the vSID")
    func illegalCDGivesBadCD() throws {
        let f = try F.make()
        try f.buildGuestStage1()
        var cd = ContextDescriptor(words: try (0..<8).map { try f.guestRead64(F.cdIPA + UInt64($0) * 8) })
        cd.t0sz = 63
        try f.guestWrite64(F.cdIPA, cd.dw0)
        let (queue, _) = try f.iommufd.veventqAlloc(viommuID: f.viommu)
        try f.attachNested(F.translatingVSTE)
        #expect(f.dmaWrite(F.gIOVA, 1) == .aborted)
        let host = try #require(try f.smmu.serviceEventQueue().first)
        #expect(host.eventID == 0x0A && host.streamID == F.pSID)
        let guest = try f.iommufd.veventqRead(queue)
        #expect(guest.count == 1)
        #expect(guest.first.map { $0.data[0] & 0xFF } == 0x0A)
        #expect(guest.first.map { $0.data[0] >> 32 } == F.vSID)
    }

    @Test("stage-1 tables pointing at IPAs outside guest RAM (and table pointers outside it): stage-2 faults, host memory untouched")
    func stage1OutsideGuestRAM() throws {
        let f = try F.make()
        try f.buildGuestStage1()
        try f.attachNested(F.translatingVSTE)
        let (queue, _) = try f.iommufd.veventqAlloc(viommuID: f.viommu)
        // The leaf aims at an IPA where the host has its own page tables and queues (the host's
        // physical addresses are not IPAs of this VM: stage 2 maps only guest RAM).
        let aimed = F.guestBase + F.guestSize + 0x1000
        let before = f.kernel.bus.ram.read(aimed, size: 8)
        try f.mapGuestPage(F.gIOVA, to: aimed)
        try f.iommufd.hwptInvalidate(viommuID: f.viommu, commands: [Command.tlbiNHASID(VMID(0), F.guestASID).encode()])
        #expect(f.dmaWrite(F.gIOVA, 0xDEAD) == .aborted)
        // A level-1 table pointer outside guest RAM: the walk's own fetch faults at stage 2.
        try f.guestWrite64(F.tableIPAs[0], 0x1_0000_0000 | 0b11)
        try f.iommufd.hwptInvalidate(viommuID: f.viommu, commands: [Command.tlbiNHASID(VMID(0), F.guestASID).encode()])
        #expect(f.dmaWrite(F.gIOVA, 0xBEEF) == .aborted)
        let events = try f.smmu.serviceEventQueue()
        #expect(events.count == 2)
        #expect(events.allSatisfy { $0.stage2 }, "both at stage 2")
        #expect(events.first?.faultClass == 0b10, "the leaf's output: CLASS = IN")
        #expect(events.last?.faultClass == 0b01, "the table fetch: CLASS = TT")
        #expect(try f.iommufd.veventqRead(queue).isEmpty)
        #expect(f.kernel.bus.ram.read(aimed, size: 8) == before, "the host page at the same number as the IPA is untouched")
    }
}
