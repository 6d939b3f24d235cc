import Testing
import Bus
import GIC
import SMMUv3
import Report
@testable import Scenario

/// `VectorOutcome(journal:expectation:)` on hand-written journals: no world is built.
@Suite("Verdicts folded from a journal")
struct JournalVerdictTests {
    static let lpi = VectorOutcome.GuestInterrupt(irq: 40, lpi: 8192, cpu: 1)
    static let sent = JournalEntry.messageSent(address: 0x0800_0040, data: 0, aborted: false)
    static let its = JournalEntry.itsTranslate(its: 0, deviceID: DeviceID(8), eventID: 0,
                                               result: .delivered(intid: 8200, cpu: 0, accepted: true))

    /// The SMMU's STE lookups: a nested STE (the guest's stage 1 over the host's stage 2), a
    /// stage-2-only STE (the guest's stage 1 bypassed) and a stage-1-only STE (the host's own
    /// domain, no guest stage 1).
    static let nestedSTE = JournalEntry.steFetch(streamID: StreamID(8), cached: false, stage1: true, stage2: true)
    static let stage2STE = JournalEntry.steFetch(streamID: StreamID(8), cached: true, stage1: false, stage2: true)
    static let stage1STE = JournalEntry.steFetch(streamID: StreamID(8), cached: false, stage1: true, stage2: false)

    static func fold(device: Int = 0, _ entries: [JournalEntry]) -> VectorOutcome {
        VectorOutcome(step: 0, device: device, vector: 0, journal: entries, expectation: .init(interrupt: lpi))
    }

    @Test("nested translation, ITS, host, irqfd and the expected guest handler: delivered, stages from the SMMU's entry")
    func delivered() {
        let o = Self.fold([Self.sent, Self.nestedSTE, .smmuTranslated(input: 0x0800_0040, intermediate: 0x0900_0040, output: 0x0809_0040, stage1: true, stage2: true),
                           Self.its, .hostInterrupt(cpu: 0, hwirq: 8192, irq: 30, handler: "vfio-msix[0]"), .irqfdInjection(.delivered),
                           .guestHandler(irq: 40, lpi: 8192, cpu: 1)])
        #expect(o.verdict == .delivered)
        #expect(o.stage1 == .translated(from: 0x0800_0040, to: 0x0900_0040))
        #expect(o.stage2 == .translated(from: 0x0900_0040, to: 0x0809_0040))
        #expect(o.physicalAddress == 0x0809_0040 && o.its?.deviceID == 8)
    }

    @Test("a stage-1 fault at an invalid L1 descriptor: failed at stage 1, and the cell says S1 L1 invalid from the entry's level")
    func stage1Fault() {
        let fault = SMMUFault(type: .fTranslation, streamID: StreamID(8), inputAddress: 0x0800_0040, isWrite: true,
                              level: 1, invalidDescriptor: true, reason: "some words")
        let o = Self.fold([Self.sent, Self.nestedSTE, .tlb(hit: false, address: 0x0800_0040, stage1: true, stage2: true),
                           .smmuFault(fault.journalFault)])
        #expect(o.verdict.failurePoint == .stage1)
        #expect(o.stage2 == .notReached)
        #expect(o.stage1.cell == "F_TRANSLATION (S1 L1 invalid)")
        // The same fault without a vIOMMU is the host's (stage 2 label), and names no level here.
        let host = Self.fold([Self.sent, Self.stage1STE, .smmuFault(SMMUFault(type: .fTranslation, streamID: StreamID(8)).journalFault)])
        #expect(host.stage1 == .absent)
        #expect(host.stage2.cell == "F_TRANSLATION (S2=0 CLASS=IN)")
    }

    @Test("the VMM's Pending bit makes the vector pending for whichever device it belongs to")
    func pendingOnSecondDevice() {
        let entries: [JournalEntry] = [Self.sent, Self.stage2STE, .smmuTranslated(input: 0x0800_0040, intermediate: nil, output: 0x0809_0040, stage1: false, stage2: true),
                                       Self.its, .hostInterrupt(cpu: 0, hwirq: 8192, irq: 30, handler: "vfio-msix[0]"), .pendingBitSet(device: 1, vector: 0)]
        #expect(Self.fold(device: 1, entries).verdict == .pending)
        #expect(Self.fold(device: 0, entries).verdict == .failed(.host, "the host took the interrupt but signalled nothing for the guest"))
    }

    @Test("an untranslated doorbell that no ITS took, a latched message, and an abort without an event")
    func otherEnds() {
        let untranslated = Self.fold([Self.sent, .untranslatedWindow(address: 0x0800_0040)])
        #expect(untranslated.stage2 == .untranslated && untranslated.verdict == .failed(.its, "the write reached no ITS"))
        #expect(Self.fold([.messageLatched]).verdict == .pending)
        let aborted = Self.fold([Self.sent, .smmuAborted(input: 0x0800_0040)])
        #expect(aborted.stage1 == .aborted && aborted.verdict.failurePoint == .smmuConfiguration)
    }

    @Test("the guest's stage-1 label is what the SMMU's entries show: STE Config, then the TLB regime; entries after the answer do not count")
    func guestStage1FromSMMUEntries() {
        let answer = JournalEntry.smmuTranslated(input: 0x0800_0040, intermediate: nil, output: 0x0809_0040, stage1: false, stage2: true)
        // Stage 2 only: the guest's stage 1 is bypassed.
        let bypassed = Self.fold([Self.sent, Self.stage2STE, .tlb(hit: true, address: 0x0800_0040, stage1: false, stage2: true), answer])
        #expect(bypassed.stage1 == .bypass && bypassed.stage2 == .translated(from: 0x0800_0040, to: 0x0809_0040))
        // A nested STE whose S1DSS bypasses stage 1 looks up stage-2 entries: bypass too.
        let s1dss = Self.fold([Self.sent, Self.nestedSTE, .tlb(hit: false, address: 0x0800_0040, stage1: false, stage2: true), answer])
        #expect(s1dss.stage1 == .bypass)
        // The host's own stage 1: the guest has none.
        let host = Self.fold([Self.sent, Self.stage1STE, .tlb(hit: false, address: 0x0800_0040, stage1: true, stage2: false),
                              .smmuTranslated(input: 0x0800_0040, intermediate: nil, output: 0x0809_0040, stage1: true, stage2: false)])
        #expect(host.stage1 == .absent && host.stage2 == .translated(from: 0x0800_0040, to: 0x0809_0040))
        // A stage-2 fault under a nested STE: the guest's stage 1 was not reached.
        let s2fault = SMMUFault(type: .fTranslation, streamID: StreamID(8), inputAddress: 0x0800_0040, isWrite: true, stage2: true)
        let nested = Self.fold([Self.sent, Self.nestedSTE, .walkRead(stage: 2, level: 1, address: 0x7c40_2008, descriptor: 0),
                                .smmuFault(s2fault.journalFault)])
        #expect(nested.stage1 == .notReached && nested.stage2.kind == "fault")
        // The same fault under a stage-2-only STE: the guest's stage 1 is bypassed.
        let flat = Self.fold([Self.sent, Self.stage2STE, .smmuFault(s2fault.journalFault)])
        #expect(flat.stage1 == .bypass && flat.stage2.kind == "fault")
        // No STE seen (C_BAD_STREAMID): no stage observed, the fault is shown as the host's.
        let noSTE = Self.fold([Self.sent, .smmuFault(SMMUFault(type: .cBadStreamID, streamID: StreamID(8)).journalFault)])
        #expect(noSTE.stage1 == .absent && noSTE.stage2.kind == "fault")
        // A later translation (another transaction) does not relabel this one.
        let later = Self.fold([Self.sent, Self.stage2STE, answer, Self.nestedSTE])
        #expect(later.stage1 == .bypass)
    }
}
