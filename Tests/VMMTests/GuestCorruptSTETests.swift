import Testing
import Bus
import Firmware
import LinuxKernel
import PCI
import SMMUv3
@testable import VMM

/// Event `guest-corrupt-ste`: the guest kernel writes garbage over its device's STE (or CD) in
/// its own stream table and issues CFGI_STE (CFGI_CD) + CMD_SYNC on its SMMU driver's command
/// queue (`ArmSMMUv3Driver.overwriteStreamTableEntries` / `overwriteContextDescriptor`). The
/// accelerated vSMMU hands the CFGI_STE to the VMM, which re-reads the vSTE and asks the host
/// for a nested HWPT (IOMMU_HWPT_ALLOC → `arm_vsmmu_alloc_domain_nested` →
/// `arm_smmu_validate_vste`); a CFGI_CD becomes IOMMU_HWPT_INVALIDATE and the host SMMU
/// re-fetches the guest CD through stage 2.
///
/// Setup for every case: v6.15 host, MSI plan `rmrIdentity` (so vector 0 is delivered before
/// the corruption and any change is visible), the guest driver bound, one 4 KiB guest buffer
/// mapped for DMA at `iova`. What each case does is pinned below with the rule that decides it;
/// the containment check is the same for all: the device's write either aborts or lands in a
/// host frame that backs guest RAM, and during the write no host frame changes but those and
/// the host SMMU's event queue.
@Suite("Guest corrupts its STE or CD", .serialized)
struct GuestCorruptSTETests {
    static let vsid = StreamID(0x8)
    static let psid = StreamID(UInt32(VMMHarness.hostRID.rawValue))

    struct Setup {
        let h: VMMHarness
        let guestSMMU: ArmSMMUv3Driver
        let hostSMMU: ArmSMMUv3Driver
        let device: Device
        let iova: IOVA
        let buffer: PhysicalAddress
        let counter: VMMScenarioTests.Counter
        let guestRAM: Set<UInt64>
        let eventQueue: Set<UInt64>
        /// Host frames of the physical ITS translation pages: a write the host's stage 2 sends
        /// there (the SW_MSI page) is an MSI with the device's own DeviceID, allowed.
        let itsPages: Set<UInt64>
    }

    static func setup(hostSMMU: SMMUConfiguration? = nil) throws -> Setup {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, msi: .rmrIdentity, hostSMMU: hostSMMU)
        let counter = VMMScenarioTests.Counter()
        _ = try GuestAdversary.bindDriver(h, counter: counter)
        let g = try #require(h.guestDevice)
        let guestSMMU = try #require(h.guest.smmuDrivers.first)
        let hostSMMU = try #require(h.host.smmuDrivers.first)
        let buffer = try h.guest.pages.allocate(bytes: 0x1000)
        let iova = try h.guest.dma.map(device: g.device, physical: buffer, size: 0x1000, direction: .fromDevice)
        #expect(h.fire(0, guestCPUs: 2) == (1, 1), "vector 0 is delivered before the corruption")
        let itsPages = Set(h.machine.topology.its.map { ($0.region.base.rawValue + 0x1_0000) >> 12 })
        return Setup(h: h, guestSMMU: guestSMMU, hostSMMU: hostSMMU, device: g.device, iova: iova, buffer: buffer,
                     counter: counter, guestRAM: GuestAdversary.guestRAMFrames(h),
                     eventQueue: try GuestAdversary.hostEventQueueFrames(h), itsPages: itsPages)
    }

    /// What one device write did, and the containment check.
    struct Write {
        var status: TransactionStatus?
        var events: [EventRecord]
        var forwarded: Int
        var guestEvents: [EventRecord]
    }

    /// The containment check for the transaction the device just made: if the host SMMU
    /// translated it, the output is in a frame backing guest RAM or in the ITS translation
    /// page (an MSI with the device's own DeviceID).
    static func expectContained(_ s: Setup, _ journal: Journal, _ what: String) {
        if let output = GuestAdversary.translatedOutput(journal) {
            let frame = output >> 12
            #expect(s.guestRAM.contains(frame) || s.itsPages.contains(frame), "\(what): translated to \(Hex.format(output)), outside what the host mapped")
        }
    }

    static func write(_ s: Setup, data: UInt64 = 0x77) throws -> Write {
        _ = try s.hostSMMU.serviceEventQueue()
        let forwarded = s.hostSMMU.forwardedEvents
        let watch = GuestAdversary.Watch(s.h, allowed: s.guestRAM.union(s.eventQueue))
        let journal = Journal()
        s.h.machine.journal = journal
        let result = s.h.function.dma(.write, address: s.iova, size: 8, data: data).result
        s.h.machine.journal = nil
        let changed = watch.changedFrames(s.h)
        var toITS = false
        if let output = GuestAdversary.translatedOutput(journal) { toITS = s.itsPages.contains(output >> 12) }
        // A write stage 2 sent to the ITS page is an MSI: the ITS may set a pending bit in the
        // host's LPI tables, which is the ITS's own state, not the device writing memory.
        #expect(changed.isEmpty || toITS, "host frames outside guest RAM and the event queue changed: \(changed.prefix(8))")
        expectContained(s, journal, "DMA write")
        let events = try s.hostSMMU.serviceEventQueue()
        _ = s.h.vmm.pollVirtualEvents()
        return Write(status: result?.status, events: events, forwarded: s.hostSMMU.forwardedEvents - forwarded,
                     guestEvents: try s.guestSMMU.serviceEventQueue())
    }

    @Test("vSTEs outside arm_smmu_validate_vste's allow-list — reserved Config 0b001, Config = S2 (0b110), STRW bits set in word 1 — are EIO from IOMMU_HWPT_ALLOC; the VMM keeps the device on its previous nested HWPT, so it goes on translating with the guest's OLD stage 1: DMA lands in the guest buffer and vector 0 is still delivered, while the guest's stream table says otherwise and no error reaches the guest",
          arguments: ["reserved Config 0b001", "Config S2", "STRW in word 1"])
    func rejectedByTheHost(_ name: String) throws {
        let s = try Self.setup()
        var words = try #require(try s.guestSMMU.streamTableEntry(for: Self.vsid)).words
        switch name {
        case "reserved Config 0b001": words = [1 | (0b001 << 1), 0, 0, 0, 0, 0, 0, 0]
        case "Config S2": words[0] = (words[0] & ~0b1110) | (0b110 << 1)
        default: words[1] |= UInt64(0b01) << 30
        }
        let hostSTE = try s.hostSMMU.streamTableEntry(for: Self.psid)
        let hwpt = s.h.vmm.nestedHWPTID
        let log = s.h.vmm.log.count
        try s.guestSMMU.overwriteStreamTableEntries(of: s.device, with: words)
        #expect(try s.guestSMMU.streamTableEntry(for: Self.vsid)?.words == words, "the guest's table holds the garbage")
        #expect(Array(s.h.vmm.log.dropFirst(log)) == ["vSTE 0x8 install: \(Errno.EIO)"])
        #expect(s.h.vmm.nestedHWPTID == hwpt)
        #expect(try s.hostSMMU.streamTableEntry(for: Self.psid) == hostSTE)
        let w = try Self.write(s)
        #expect(w.status == .completed && w.events.isEmpty && w.guestEvents.isEmpty)
        let hostPage = try #require(s.h.hostPhysical(ofGuest: s.buffer.rawValue))
        #expect(s.h.machine.bus.ram.read(hostPage.rawValue, size: 8) == 0x77)
        #expect(s.h.fire(0, guestCPUs: 2) == (1, 1))
    }

    @Test("V = 0: validate_vste zeroes it, the host installs an abort STE (arm_smmu_make_nested_domain_ste); the write aborts without any event (a valid Config = abort STE records none, SMMUv3 §5.2), and vector 0 is lost")
    func invalidSTE() throws {
        let s = try Self.setup()
        var words = try #require(try s.guestSMMU.streamTableEntry(for: Self.vsid)).words
        words[0] &= ~1
        try s.guestSMMU.overwriteStreamTableEntries(of: s.device, with: words)
        #expect(try s.hostSMMU.streamTableEntry(for: Self.psid)?.config == .abort)
        let w = try Self.write(s)
        #expect(w.status == .aborted && w.events.isEmpty && w.guestEvents.isEmpty)
        #expect(s.h.fire(0, guestCPUs: 2) == (0, 0))
    }

    @Test("S1ContextPtr outside guest RAM (IPA 0x5000_0000) passes the allow-list; the host's nested STE points there and the CD fetch walks stage 2: F_TRANSLATION, S2 = 1, CLASS = CD, IPA 0x5000_0000 — a stage-2 event, so the host keeps it and the guest is told nothing")
    func contextPointerOutsideRAM() throws {
        let s = try Self.setup()
        var ste = try #require(try s.guestSMMU.streamTableEntry(for: Self.vsid))
        ste.s1ContextPtr = 0x5000_0000
        try s.guestSMMU.overwriteStreamTableEntries(of: s.device, with: ste.words)
        let hostSTE = try #require(try s.hostSMMU.streamTableEntry(for: Self.psid))
        #expect(hostSTE.config == .nested && hostSTE.s1ContextPtr == 0x5000_0000)
        let w = try Self.write(s)
        #expect(w.status == .aborted)
        let event = try #require(w.events.first)
        #expect(event.eventID == 0x10 && event.stage2 && event.faultClass == 0b00 && event.ipa == IPA(0x5000_0000))
        #expect(w.forwarded == 0 && w.guestEvents.isEmpty)
    }

    @Test("S1ContextPtr at the SW_MSI page (IPA 0x0800_0000, which stage 2 maps to the physical ITS as Device memory): the CD fetch is a stage-2 F_PERMISSION with CLASS = CD (S2PTW = 1 forbids table walks to Device memory), host-only; the ITS registers are never read as a CD")
    func contextPointerAtDoorbell() throws {
        let s = try Self.setup()
        var ste = try #require(try s.guestSMMU.streamTableEntry(for: Self.vsid))
        ste.s1ContextPtr = 0x0800_0000
        try s.guestSMMU.overwriteStreamTableEntries(of: s.device, with: ste.words)
        let w = try Self.write(s)
        #expect(w.status == .aborted)
        let event = try #require(w.events.first)
        #expect(event.eventID == 0x13 && event.stage2 && event.faultClass == 0b00 && event.ipa == IPA(0x0800_0000))
        #expect(w.forwarded == 0 && w.guestEvents.isEmpty)
    }

    @Test("on QEMU's host SMMU (SSIDSIZE 0) S1CDMax = 31 is IGNORED (§5.2 S1CDMax): the nested STE stays legal and the write lands through CD 0")
    func cdMaxIgnoredWithoutSubstreams() throws {
        let s = try Self.setup()
        #expect(s.hostSMMU.features.substreamIDBits == 0)
        var ste = try #require(try s.guestSMMU.streamTableEntry(for: Self.vsid))
        ste.s1CDMax = 31
        try s.guestSMMU.overwriteStreamTableEntries(of: s.device, with: ste.words)
        let w = try Self.write(s)
        #expect(w.status == .completed)
        #expect(w.events.isEmpty && w.forwarded == 0 && w.guestEvents.isEmpty)
    }

    @Test("on a host SMMU with 20-bit SubstreamIDs (real hardware, not QEMU's), S1CDMax = 31 passes the allow-list (S1CDMAX is a guest field) but exceeds the host SMMU's SSIDSIZE: the nested STE is ILLEGAL, the write aborts with C_BAD_STE, and as a non-S2 event of a vmaster it reaches the guest through the vEVENTQ with the vSID")
    func cdMaxTooLarge() throws {
        var hostSMMU = SMMUConfiguration.qemuVirt
        hostSMMU.substreamIDBits = 20
        let s = try Self.setup(hostSMMU: hostSMMU)
        #expect(s.hostSMMU.features.substreamIDBits == 20)
        var ste = try #require(try s.guestSMMU.streamTableEntry(for: Self.vsid))
        ste.s1CDMax = 31
        try s.guestSMMU.overwriteStreamTableEntries(of: s.device, with: ste.words)
        let w = try Self.write(s)
        #expect(w.status == .aborted)
        #expect(w.events.map(\.eventID) == [0x04] && w.events.first?.streamID == Self.psid)
        #expect(w.forwarded == 1)
        #expect(w.guestEvents.map(\.eventID) == [0x04] && w.guestEvents.first?.streamID == Self.vsid)
        #expect(s.h.fire(0, guestCPUs: 2) == (0, 0))
    }

    @Test("a CD whose TTB0 is IPA 0x5000_0000: CFGI_CD reaches the host as IOMMU_HWPT_INVALIDATE, the host SMMU re-fetches the CD and walks stage 1 from outside guest RAM: stage-2 F_TRANSLATION, CLASS = TT, host-only")
    func cdTableOutsideRAM() throws {
        let s = try Self.setup()
        var cd = try #require(try s.guestSMMU.contextDescriptor(for: s.device))
        cd.ttb0 = 0x5000_0000
        try s.guestSMMU.overwriteContextDescriptor(of: s.device, with: cd.words)
        let w = try Self.write(s)
        #expect(w.status == .aborted)
        let event = try #require(w.events.first)
        #expect(event.eventID == 0x10 && event.stage2 && event.faultClass == 0b01 && event.ipa == IPA(0x5000_0000))
        #expect(w.forwarded == 0 && w.guestEvents.isEmpty)
    }

    @Test("an all-ones CD: C_BAD_CD on the host (the first ILLEGAL rule the model checks is CD.S = 1 on a terminate-only SMMU), forwarded to the guest as a stage-1 event of its vSID")
    func garbageCD() throws {
        let s = try Self.setup()
        try s.guestSMMU.overwriteContextDescriptor(of: s.device, with: [UInt64](repeating: .max, count: 8))
        let w = try Self.write(s)
        #expect(w.status == .aborted)
        #expect(w.events.map(\.eventID) == [0x0A] && w.forwarded == 1)
        #expect(w.guestEvents.map(\.eventID) == [0x0A] && w.guestEvents.first?.streamID == Self.vsid)
    }

    /// Each step costs a vSMMU command round trip, an IOMMU_HWPT_ALLOC and a host STE write
    /// (about 25 ms in a debug build), so 60 steps per seed keep a seed under 2 s.
    @Test("property: 3 × 60 seeded garbage STEs and CDs in a row (random words, bit flips of the good STE, random context pointers and CD maxima, random CDs, random TTB0s) — nothing traps, and every device write aborts or lands in guest RAM (or, via the SW_MSI page, the ITS), changing no other host frame but the SMMU event queue; every MSI the device makes reaches the ITS with its own DeviceID",
          arguments: [UInt64(0x6E57), 0xC0DE, 0x5EED])
    func containment(seed: UInt64) throws {
        let s = try Self.setup()
        var rng = SeededGenerator(seed: seed)
        let good = try #require(try s.guestSMMU.streamTableEntry(for: Self.vsid))
        let goodCD = try #require(try s.guestSMMU.contextDescriptor(for: s.device))
        var statuses: [TransactionStatus: Int] = [:]
        var eventIDs = Set<UInt8>()
        // Each step corrupts one of the two structures; the other is first put back to the
        // good value if an earlier step broke it, so both kinds of garbage meet a sane partner.
        var steBroken = false, cdBroken = false
        for step in 0..<60 {
            let kind = Int.random(in: 0..<5, using: &rng)
            if kind < 3, cdBroken {
                try s.guestSMMU.overwriteContextDescriptor(of: s.device, with: goodCD.words)
                cdBroken = false
            } else if kind >= 3, steBroken {
                try s.guestSMMU.overwriteStreamTableEntries(of: s.device, with: good.words)
                steBroken = false
            }
            switch kind {
            case 0:
                let words = (0..<8).map { _ in UInt64.random(in: 0...UInt64.max, using: &rng) }
                try s.guestSMMU.overwriteStreamTableEntries(of: s.device, with: words)
            case 1:
                var words = good.words
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    let word = Int.random(in: 0..<2, using: &rng)
                    words[word] ^= UInt64(1) << UInt64.random(in: 0..<64, using: &rng)
                }
                try s.guestSMMU.overwriteStreamTableEntries(of: s.device, with: words)
            case 2:
                var ste = good
                ste.s1ContextPtr = UInt64.random(in: 0..<(UInt64(1) << 48), using: &rng) & ~0x3F
                ste.s1CDMax = Int.random(in: 0..<32, using: &rng)
                ste.s1Fmt = UInt64.random(in: 0..<4, using: &rng)
                ste.s1DSS = UInt64.random(in: 0..<4, using: &rng)
                try s.guestSMMU.overwriteStreamTableEntries(of: s.device, with: ste.words)
            case 3:
                let words = (0..<8).map { _ in UInt64.random(in: 0...UInt64.max, using: &rng) }
                try s.guestSMMU.overwriteContextDescriptor(of: s.device, with: words)
            default:
                var cd = goodCD
                // A table anywhere in the guest's IPA space, often inside its RAM (whose
                // contents then act as page tables).
                cd.ttb0 = Bool.random(using: &rng) ? UInt64.random(in: 0x4000_0000..<0x4100_0000, using: &rng) & ~0xFFF
                                                   : UInt64.random(in: 0..<(UInt64(1) << 40), using: &rng) & ~0xFFF
                try s.guestSMMU.overwriteContextDescriptor(of: s.device, with: cd.words)
            }
            if kind < 3 { steBroken = true } else { cdBroken = true }
            let w = try Self.write(s, data: UInt64(step))
            #expect(w.status == .aborted || w.status == .completed || w.status == .readAsZeroWriteIgnored)
            if let status = w.status { statuses[status, default: 0] += 1 }
            eventIDs.formUnion(w.events.map(\.eventID))
            let journal = Journal()
            s.h.machine.journal = journal
            // The MSI's own write may set an LPI pending bit in the host's tables (that is the
            // ITS doing its job), so it is checked by where the SMMU sent it, not by RAM.
            _ = s.h.function.raise(vector: 0)
            s.h.machine.journal = nil
            Self.expectContained(s, journal, "step \(step) MSI")
            if let record = itsTranslations(journal).first {
                #expect(record.deviceID == DeviceID(UInt32(VMMHarness.hostRID.rawValue)))
            }
            _ = s.h.host.irq.handleInterrupts(cpu: 0)
            for cpu in 0..<2 { _ = s.h.guest.irq.handleInterrupts(cpu: cpu) }
        }
        // Not vacuous: the garbage reached the hardware in several shapes.
        #expect((statuses[.aborted] ?? 0) > 0 && (statuses[.completed] ?? 0) > 0, "\(statuses)")
        #expect(eventIDs.count >= 3, "several fault kinds (seen: \(eventIDs.sorted()))")
    }
}

/// The ITS translations a journal recorded: (DeviceID, EventID, result).
private func itsTranslations(_ journal: Journal) -> [(deviceID: DeviceID, eventID: UInt32, result: JournalITSResult)] {
    journal.entries.compactMap {
        if case .itsTranslate(_, let deviceID, let eventID, let result) = $0 { (deviceID, eventID, result) } else { nil }
    }
}
