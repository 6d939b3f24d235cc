import Testing
import Bus
import GIC
@testable import LinuxKernel

/// The software layers' journal entries: `eventfd_signal` appends its signal before the consumer
/// wakes, and KVM appends its vITS's translation and the injection's end, in that order, only
/// while a journal is attached to the kernel.
@Suite("Kernel journal: eventfd signal, vITS translation, irqfd injection")
struct KernelJournalTests {
    func mappedGuest() throws -> KVMFixture {
        let fixture = try KVMFixture.make()
        let guest = GuestGICBringUp(vm: fixture.vm)
        try guest.enableLPIs()
        try guest.enableITS()
        try guest.mapDevice(0x10, events: 4, firstINTID: 8192, collection: 1)
        return fixture
    }

    @Test("a signalled irqfd appends eventfd signal, vITS translation (EventID 2 → LPI 8194 on vCPU 1), delivered injection")
    func irqfdJournal() throws {
        let fixture = try mappedGuest()
        let vm = fixture.vm
        try vm.setGSIRouting([KVMMSIRoute(gsi: 5, addressLo: KVMFixture.translater, data: 2, devid: 0x10)])
        let (fd, eventfd) = fixture.process.eventfd()
        try vm.irqfd(eventfd: fd, gsi: 5)
        let journal = Journal()
        fixture.host.kernel.journal = journal

        eventfd.signal(irq: 40, cpu: 0, journal: fixture.host.kernel.journal)

        #expect(journal.entries == [
            .eventfdSignal(irq: 40, cpu: 0),
            .vitsTranslate(deviceID: DeviceID(0x10), eventID: 2, result: .delivered(intid: 8194, cpu: 1, accepted: true)),
            .irqfdInjection(.delivered),
        ])
    }

    @Test("an unmapped EventID: the vITS's drop and a blocked injection; no journal attached, nothing appended")
    func blockedAndDetached() throws {
        let fixture = try mappedGuest()
        let vm = fixture.vm
        let journal = Journal()
        fixture.host.kernel.journal = journal
        // EventID 9 is beyond the 4 events MAPD sized the ITT for.
        #expect(try vm.signalMSI(KVMMSI(addressLo: KVMFixture.translater, data: 9, devid: 0x10)) == 0)
        guard case .vitsTranslate(let deviceID, let eventID, .dropped)? = journal.entries.first else {
            Issue.record("expected a vITS drop first, got \(journal.entries)")
            return
        }
        #expect(deviceID == DeviceID(0x10) && eventID == 9)
        guard case .irqfdInjection(.blocked)? = journal.entries.last else {
            Issue.record("expected a blocked injection last, got \(journal.entries)")
            return
        }
        #expect(journal.entries.count == 2)

        fixture.host.kernel.journal = nil
        _ = try vm.signalMSI(KVMMSI(addressLo: KVMFixture.translater, data: 2, devid: 0x10))
        #expect(journal.entries.count == 2)
    }
}
