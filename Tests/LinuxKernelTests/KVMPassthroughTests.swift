import Testing
import Bus
import GIC
@testable import LinuxKernel

/// The whole posted-interrupt-free path of a passed-through MSI-X vector: device write → host
/// ITS → host LPI → vfio-pci's handler (`vfio_msihandler` → `eventfd_signal`) → KVM irqfd →
/// route → guest vITS → guest LPI → guest ICC_IAR1.
@Suite("KVM: VFIO eventfd → irqfd → guest LPI", .serialized)
struct KVMPassthroughTests {
    typealias T = VFIOScenarioTests

    @Test("host device 00:01.0 vector 0 fires: the host signals the eventfd, KVM injects the guest's (DeviceID 0x8, EventID 0) on vCPU 0")
    func hostInterruptBecomesGuestLPI() throws {
        let s = try T.setup()
        let iommufd = s.kernel.openIOMMUFD()
        iommufd.process = s.process
        let (file, _) = try T.openCdev(s, T.ep0, iommufd: iommufd)
        _ = try file.attachIOMMUFDPT(try iommufd.ioasAlloc())

        let fixture = try KVMFixture.make(host: s.harness, process: s.process)
        let guest = GuestGICBringUp(vm: fixture.vm)
        try guest.enableLPIs()
        try guest.enableITS()
        // The guest's driver for its view of 00:01.0: DeviceID 0x8 (identity msi-map), one
        // event, LPI 8200 on collection 0.
        try guest.mapDevice(0x8, events: 1, firstINTID: 8200, collection: 0)

        // What the VMM does when the guest unmasks MSI-X vector 0 with (TRANSLATER, data 0).
        let (fd, eventfd) = s.process.eventfd()
        try fixture.vm.setGSIRouting([KVMMSIRoute(gsi: 0, addressLo: KVMFixture.translater, data: 0, devid: 0x8)])
        try fixture.vm.irqfd(eventfd: fd, gsi: 0)
        try file.setIRQs(.trigger(start: 0, eventfds: [fd]))

        _ = s.harness.functions[0].raise(vector: 0)
        _ = s.kernel.irq.handleInterrupts(cpu: 0)

        #expect(eventfd.signals.count == 1, "the host's vfio handler signalled once")
        #expect(fixture.vm.counters.irqfdSignals == 1)
        #expect(fixture.vm.injections.last?.outcome == .delivered(intid: 8200, vcpu: 0))
        #expect(fixture.vm.cpuInterface.readIAR1(cpu: 0) == 8200)
        #expect(fixture.vm.cpuInterface.readIAR1(cpu: 1) == 1023)
    }
}
