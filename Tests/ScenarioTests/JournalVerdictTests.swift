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

    static func fold(device: Int = 0, _ entries: [JournalEntry], stage1: VectorOutcome.Expectation.GuestStage1 = .translating) -> VectorOutcome {
        VectorOutcome(step: 0, device: device, vector: 0, journal: entries,
                      expectation: .init(interrupt: lpi, guestStage1: stage1))
    }

    @Test("nested translation, ITS, host, irqfd and the expected guest handler: delivered, stages from the SMMU's entry")
    func delivered() {
        let o = Self.fold([Self.sent, .smmuTranslated(input: 0x0800_0040, intermediate: 0x0900_0040, output: 0x0809_0040, stage1: true, stage2: true),
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
        let o = Self.fold([Self.sent, .smmuFault(fault.journalFault)])
        #expect(o.verdict.failurePoint == .stage1)
        #expect(o.stage2 == .notReached)
        #expect(o.stage1.cell == "F_TRANSLATION (S1 L1 invalid)")
        // The same fault without a vIOMMU is the host's (stage 2 label), and names no level here.
        let host = Self.fold([Self.sent, .smmuFault(SMMUFault(type: .fTranslation, streamID: StreamID(8)).journalFault)], stage1: .absent)
        #expect(host.stage1 == .absent)
        #expect(host.stage2.cell == "F_TRANSLATION (S2=0 CLASS=IN)")
    }

    @Test("the VMM's Pending bit makes the vector pending for whichever device it belongs to")
    func pendingOnSecondDevice() {
        let entries: [JournalEntry] = [Self.sent, .smmuTranslated(input: 0x0800_0040, intermediate: nil, output: 0x0809_0040, stage1: false, stage2: true),
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
}
