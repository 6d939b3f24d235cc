import Testing
import Bus
import PCI
import SMMUv3
@testable import LinuxKernel

/// iommufd nesting on qemu-virt: a VMM-like process gives a "guest" stage 1 on ep0 through a
/// vIOMMU, and the physical SMMU walks the guest's CD and tables through the nest parent.
/// Expected values come from arm-smmu-v3-iommufd.c (v6.15) and the SMMUv3 spec: the nested STE
/// is Config 0b111 with the guest's S1 fields and the parent's VMID/VTCR/S2TTB; invalidations
/// get the vIOMMU's VMID and the physical StreamID; stage-1 faults reach the vEVENTQ with the
/// virtual StreamID.
@Suite("iommufd nesting: vIOMMU, nested HWPTs, invalidation, vEVENTQ", .serialized)
struct NestedTests {
    typealias F = NestedFixture

    @Test("a translating vSTE becomes a nested STE: guest S1 words, MEV, parent VMID/VTCR/S2TTB; a DMA goes gIOVA → IPA → PA")
    func nestedDMALands() throws {
        let f = try F.make()
        try f.buildGuestStage1()
        let parentHWPT = try #require(f.iommufd.object(f.parent) as? IOMMUFDHWPTPaging)
        let s2 = try #require(parentHWPT.domain.driverData as? ArmSMMUv3Domain)
        guard case .stage2(let vmid) = s2.stage else { Issue.record("parent is not stage 2"); return }
        let hwpt = try f.attachNested(F.translatingVSTE)
        #expect(f.iommufd.object(hwpt)?.type == .hwptNested)
        let device = try #require(f.kernel.pci.device(RequesterID(bus: 0, device: 1, function: 0))).device
        #expect(f.kernel.iommu.domain(for: device)?.type == .nested)

        let ste = try f.physicalSTE()
        #expect(ste.valid && ste.config == .nested)
        #expect(ste.s1ContextPtr == F.cdIPA, "S1ContextPtr is the guest's IPA")
        #expect(ste.dw1 & 0xFF == F.translatingVSTE[1] & 0xFF, "S1CIR/S1COR/S1CSH from the guest")
        #expect(ste.mev, "MEV is forced on")
        #expect(ste.s2VMID == vmid, "VMID from the parent")
        #expect(ste.s2TTB == s2.pageTable.root.rawValue, "S2TTB from the parent")
        #expect(ste.s2T0SZ == s2.pageTable.tableSize && ste.s2PTW && ste.s2AA64)

        // The device writes through its gIOVA: stage 1 (guest) → IPA 0x4008_0040 → stage 2 →
        // the VMM's page behind guest RAM offset 0x8_0040.
        #expect(f.dmaWrite(F.gIOVA + 0x40, 0xFEED_F00D) == .completed)
        #expect(try f.guestRead64(F.bufferIPA + 0x40) == 0xFEED_F00D)
        let master = try #require(device.iommu?.driverData as? ArmSMMUv3Master)
        #expect(master.vmaster?.virtualStreamID == F.vSID, "attach_prepare_vmaster found the vDEVICE")
    }

    @Test("TLBI forwarding: the guest's TLBI_NH_VA gets the vIOMMU's VMID, NSNH_ALL becomes NH_ALL, CFGI_CD's vSID becomes the pSID")
    func invalidationForwarding() throws {
        let f = try F.make()
        try f.buildGuestStage1()
        try f.attachNested(F.translatingVSTE)
        let vmid = try #require(f.iommufd.object(f.viommu) as? IOMMUFDVIOMMU).vsmmu.vmid
        #expect(f.dmaWrite(F.gIOVA, 1) == .completed)
        #expect(try f.guestRead64(F.bufferIPA) == 1)

        // The guest remaps gIOVA to another buffer without invalidating: the SMMU's TLB still
        // holds the old translation (the architecture allows it to; the model caches it).
        try f.mapGuestPage(F.gIOVA, to: F.otherBufferIPA)
        #expect(f.dmaWrite(F.gIOVA, 2) == .completed)
        #expect(try f.guestRead64(F.bufferIPA) == 2, "stale TLB entry used")

        // The guest's TLBI_NH_VA carries a VMID it made up; the host forces its own.
        f.smmu.resetCommandLog()
        let guestTLBI = Command.tlbiNHVA(VMID(0x77), F.guestASID, address: F.gIOVA, leaf: true, range: .none).encode()
        #expect(try f.iommufd.hwptInvalidate(viommuID: f.viommu, commands: [guestTLBI]) == 1)
        #expect(f.smmu.commandLog.contains(.tlbiNHVA(vmid, F.guestASID, address: F.gIOVA, leaf: true, range: .none)))
        #expect(f.smmu.count(of: .sync) == 1, "one batch, one CMD_SYNC")
        #expect(f.dmaWrite(F.gIOVA, 3) == .completed)
        #expect(try f.guestRead64(F.otherBufferIPA) == 3, "after the forwarded TLBI the new mapping is used")

        f.smmu.resetCommandLog()
        let nsnh = Command.tlbiNSNHAll.encode()
        let cfgiCD = Command.cfgiCD(StreamID(UInt32(F.vSID)), SubstreamID(0), leaf: true).encode()
        #expect(try f.iommufd.hwptInvalidate(viommuID: f.viommu, commands: [nsnh, cfgiCD]) == 2)
        #expect(Array(f.smmu.commandLog.prefix(2)) == [.tlbiNHAll(vmid), .cfgiCD(F.pSID, SubstreamID(0), leaf: true)])
    }

    @Test("invalidation errors: unknown vSID and non-forwardable opcodes → EIO with entry_num at the failing index; nothing of that batch issued")
    func invalidationErrors() throws {
        let f = try F.make()
        try f.buildGuestStage1()
        try f.attachNested(F.translatingVSTE)
        let good = Command.tlbiNHASID(VMID(0), F.guestASID).encode()
        let cases: [((UInt64, UInt64), String)] = [
            (Command.cfgiCD(StreamID(0x99), SubstreamID(0), leaf: true).encode(), "CFGI_CD with an unknown vSID"),
            (Command.cfgiSTE(StreamID(UInt32(F.vSID)), leaf: true).encode(), "CFGI_STE: the STE is the host's"),
            (Command.tlbiS12VMAll(VMID(1)).encode(), "TLBI_S12_VMALL: stage 2 is the host's"),
            (Command.tlbiEL2All.encode(), "EL2 invalidation"),
            ((0xFF, 0), "reserved opcode"),
        ]
        for (bad, why) in cases {
            f.smmu.resetCommandLog()
            var entryNum: UInt32 = 3
            #expect(throws: Errno.EIO, "\(why)") {
                try f.iommufd.hwptInvalidate(hwptID: f.viommu, dataType: IOMMUFD.viommuInvalidateDataARMSMMUv3,
                                             commands: [good, good, bad], entryNum: &entryNum)
            }
            #expect(entryNum == 2, "\(why): entry_num is the failing index")
            #expect(f.smmu.commandLog.isEmpty, "\(why): the converted commands before it were in the unsent batch")
        }
        // uAPI checks: wrong data type → EINVAL, a nested HWPT id → EOPNOTSUPP, an IOAS → EINVAL.
        var n: UInt32 = 1
        #expect(throws: Errno.EINVAL) { try f.iommufd.hwptInvalidate(hwptID: f.viommu, dataType: 0, commands: [good], entryNum: &n) }
        let nested = try f.iommufd.hwptAlloc(deviceID: f.deviceID, ptID: f.viommu, dataType: .armSMMUv3, data: F.translatingVSTE)
        #expect(throws: Errno.EOPNOTSUPP) { try f.iommufd.hwptInvalidate(hwptID: nested, dataType: 1, commands: [good], entryNum: &n) }
        #expect(throws: Errno.EINVAL) { try f.iommufd.hwptInvalidate(hwptID: f.ioas, dataType: 1, commands: [good], entryNum: &n) }
        n = 2
        #expect(throws: Errno.EFAULT, "entry_num beyond the user array") {
            try f.iommufd.hwptInvalidate(hwptID: f.viommu, dataType: 1, commands: [good], entryNum: &n)
        }
    }

    @Test("a stage-1 fault becomes a vEVENTQ record with the virtual SID, S2=0, CLASS=IN; the host's queue holds the physical one")
    func stage1FaultReachesVEventQueue() throws {
        let f = try F.make()
        try f.buildGuestStage1()
        try f.attachNested(F.translatingVSTE)
        let (queue, fd) = try f.iommufd.veventqAlloc(viommuID: f.viommu, type: .armSMMUv3, depth: 8)
        #expect(fd >= 3)
        // gIOVA + 2 MiB is in no table of the guest: F_TRANSLATION at stage 1.
        let unmapped = F.gIOVA + 0x20_0000 + 0x40
        #expect(f.dmaWrite(unmapped, 7) == .aborted)
        let hostEvents = try f.smmu.serviceEventQueue()
        #expect(hostEvents.count == 1)
        let host = try #require(hostEvents.first)
        #expect(host.eventID == 0x10 && host.streamID == F.pSID && host.inputAddress == unmapped)
        #expect(f.smmu.forwardedEvents == 1)

        let records = try f.iommufd.veventqRead(queue)
        #expect(records.count == 1)
        let record = try #require(records.first)
        #expect(record.flags == 0 && record.sequence == 0 && record.data.count == 4)
        let words = record.data
        #expect(words[0] & 0xFF == 0x10, "F_TRANSLATION")
        #expect(words[0] >> 32 == F.vSID, "StreamID replaced by the virtual one")
        #expect(!words[1].bit(39), "S2 = 0: a stage-1 fault")
        #expect(words[1].bits(41, 40) == 0b10, "CLASS = IN")
        #expect(words[2] == unmapped, "InputAddr")
        #expect(try f.iommufd.veventqRead(queue).isEmpty, "read drains")
    }

    @Test("vEVENTQ overflow: beyond depth one LOST_EVENTS header; sequences keep counting")
    func veventQueueOverflow() throws {
        let f = try F.make()
        try f.buildGuestStage1()
        try f.attachNested(F.translatingVSTE)
        let (queue, _) = try f.iommufd.veventqAlloc(viommuID: f.viommu, depth: 2)
        for i in 0..<4 {
            _ = f.dmaWrite(F.gIOVA + 0x20_0000 + UInt64(i) * 0x1000, 0)
            try f.smmu.serviceEventQueue()
        }
        let records = try f.iommufd.veventqRead(queue)
        #expect(records.map(\.lostEvents) == [false, false, true])
        #expect(records.map(\.sequence) == [0, 1, 3], "the lost header was re-queued with each dropped event")
        #expect(throws: Errno.EEXIST) { try f.iommufd.veventqAlloc(viommuID: f.viommu, depth: 2) }
        #expect(throws: Errno.EINVAL) { try f.iommufd.veventqAlloc(viommuID: f.viommu, depth: 0) }
        #expect(throws: Errno.EOPNOTSUPP) { try f.iommufd.veventqAlloc(viommuID: f.viommu, type: .default) }
    }

    @Test("vSTE validation (arm_smmu_validate_vste): disallowed fields and configs → EIO; V=0 accepted")
    func vsteValidation() throws {
        let f = try F.make()
        let good = F.translatingVSTE
        let rejected: [([UInt64], String)] = [
            ([good[0] | (1 << 56), good[1]], "a reserved bit of word 0"),
            ([good[0], good[1] | (UInt64(0b01) << 30)], "STRW: the host's"),
            ([good[0], good[1] | (UInt64(1) << 25)], "S2FWB: a stage-2 field"),
            ([good[0], good[1] | (UInt64(0b10) << 28)], "EATS = 0b10 (split-stage ATS)"),
            ([(good[0] & ~0b1110) | (0b111 << 1), good[1]], "Config = nested"),
            ([(good[0] & ~0b1110) | (0b110 << 1), good[1]], "Config = S2 only"),
        ]
        for (vste, why) in rejected {
            #expect(throws: Errno.EIO, "\(why)") {
                try f.iommufd.hwptAlloc(deviceID: f.deviceID, ptID: f.viommu, dataType: .armSMMUv3, data: vste)
            }
        }
        // V = 0 with garbage: zeroed and accepted (a non-valid STE is legal input).
        let invalid = try f.iommufd.hwptAlloc(deviceID: f.deviceID, ptID: f.viommu, dataType: .armSMMUv3, data: [0xFFFF_FFFF_FFFF_FFFE, .max])
        let nested = try #require(f.iommufd.object(invalid) as? IOMMUFDHWPTNested)
        let domain = try #require(nested.domain.driverData as? ArmSMMUv3NestedDomain)
        #expect(domain.ste.0 == 0 && domain.ste.1 == 0)
        // uAPI shape errors.
        #expect(throws: Errno.EINVAL) { try f.iommufd.hwptAlloc(deviceID: f.deviceID, ptID: f.viommu, dataType: .armSMMUv3, data: [good[0]]) }
        #expect(throws: Errno.EINVAL) { try f.iommufd.hwptAlloc(deviceID: f.deviceID, ptID: f.viommu, dataType: .vtdS1, data: good) }
        #expect(throws: Errno.E2BIG) { try f.iommufd.hwptAlloc(deviceID: f.deviceID, ptID: f.viommu, dataType: .armSMMUv3, data: good + [1]) }
        #expect(throws: Errno.EOPNOTSUPP, "arm-smmu-v3 nests only through a vIOMMU") {
            try f.iommufd.hwptAlloc(deviceID: f.deviceID, ptID: f.parent, dataType: .armSMMUv3, data: good)
        }
    }

    @Test("abort and bypass vSTEs: abort STE (DMA aborted, no event); S2-only STE with the parent's VMID (DMA at the IPA lands)")
    func abortAndBypass() throws {
        let f = try F.make()
        try f.attachNested([1 | (0b000 << 1), 0])
        #expect(try f.physicalSTE().config == .abort)
        #expect(f.dmaWrite(F.bufferIPA, 9) == .aborted)
        #expect(try f.smmu.serviceEventQueue().isEmpty, "an abort STE records nothing (§5.2 Config)")

        try f.attachNested([1 | (0b100 << 1), 0])
        let ste = try f.physicalSTE()
        let vmid = try #require(f.iommufd.object(f.viommu) as? IOMMUFDVIOMMU).vsmmu.vmid
        #expect(ste.config == .stage2 && ste.s2VMID == vmid)
        #expect(f.dmaWrite(F.bufferIPA + 8, 0xB1) == .completed, "bypass: the device's address is an IPA")
        #expect(try f.guestRead64(F.bufferIPA + 8) == 0xB1)
    }

    @Test("uAPI errnos: vIOMMU on a non-parent EINVAL, type DEFAULT EOPNOTSUPP, vDEVICE twice EEXIST, a translating vSTE without vDEVICE ENOENT at attach (every release)")
    func uapiErrors() throws {
        let f = try F.make()
        let plain = try f.iommufd.hwptAlloc(deviceID: f.deviceID, ptID: f.ioas)
        #expect(throws: Errno.EINVAL) { try f.iommufd.viommuAlloc(deviceID: f.deviceID, hwptID: plain) }
        #expect(throws: Errno.EOPNOTSUPP) { try f.iommufd.viommuAlloc(deviceID: f.deviceID, hwptID: f.parent, type: .default) }
        #expect(throws: Errno.ENOENT) { try f.iommufd.viommuAlloc(deviceID: f.deviceID, hwptID: f.ioas) }
        #expect(throws: Errno.EEXIST) { try f.iommufd.vdeviceAlloc(viommuID: f.viommu, deviceID: f.deviceID, virtualID: 0x20) }
        #expect(throws: Errno.EBUSY, "the vIOMMU holds its parent") { try f.iommufd.destroy(f.parent) }

        // A second vIOMMU on the same parent, without a vDEVICE for ep0.
        let second = try f.iommufd.viommuAlloc(deviceID: f.deviceID, hwptID: f.parent)
        let hwpt = try f.iommufd.hwptAlloc(deviceID: f.deviceID, ptID: second, dataType: .armSMMUv3, data: F.translatingVSTE)
        #expect(throws: Errno.ENOENT) { try f.file.attachIOMMUFDPT(hwpt) }
        #expect(try f.physicalSTE().config == .stage2, "still on the parent")
        // The failed attach left the HWPT unattached: it can go.
        try f.iommufd.destroy(hwpt)
    }

    @Test("IOMMU_GET_HW_INFO: the physical SMMU's IDR0–5, IIDR, AIDR as the registers read")
    func hardwareInfo() throws {
        let f = try F.make()
        let info = try f.iommufd.getHWInfo(deviceID: f.deviceID)
        let base = f.smmu.node.region.base.rawValue
        let registers = try (0..<8).map { try f.kernel.bus.read(PhysicalAddress(base + UInt64($0) * 4), size: 4, requester: .cpu(0)) }
        #expect(info.idr.map(UInt64.init) == Array(registers.prefix(6)))
        #expect(UInt64(info.iidr) == registers[6] && UInt64(info.aidr) == registers[7])
        #expect(info.idr[0].bits(1, 0) == 0b11, "S1P and S2P: the SMMU can nest")
        #expect(throws: Errno.EOPNOTSUPP) { try f.iommufd.getHWInfo(deviceID: f.deviceID, flags: 1) }
        #expect(throws: Errno.ENOENT) { try f.iommufd.getHWInfo(deviceID: 999) }
    }
}
