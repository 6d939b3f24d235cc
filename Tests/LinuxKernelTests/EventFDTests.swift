import Testing
import Bus
@testable import LinuxKernel
import PCI

@Suite("eventfd and interrupts that signal one")
struct EventFDTests {
    @Test("eventfd_signal adds one per call; a read returns the count and resets it; an empty read is nil (EAGAIN)")
    func counter() {
        let fd = EventFD()
        #expect(fd.read() == nil)
        fd.signal()
        fd.signal()
        #expect(fd.count == 2)
        #expect(fd.read() == 2)
        #expect(fd.read() == nil)
        #expect(fd.signals.count == 2)
    }

    @Test("an MSI-X vector whose action is an eventfd (vfio_msihandler) signals it once per interrupt, naming the IRQ and CPU")
    func signalledByInterrupt() throws {
        let h = try PCIKernelHost.identity()
        let dev = try h.bind(0)
        try h.kernel.pci.allocateIRQVectors(dev, min: 4, max: 4, flags: [.msix])
        let irq = try h.kernel.pci.irqVector(dev, 3)
        let fd = EventFD(name: "vfio-msix[3]")
        var woken = 0
        fd.onSignal = { _ in woken += 1 }
        try h.kernel.irq.requestIRQ(irq, name: "vfio-msix[3](0000:00:01.0)", eventfd: fd)
        #expect(throws: Errno.EBUSY) { try h.kernel.irq.requestIRQ(irq, name: "again", eventfd: fd) }
        for _ in 0..<3 {
            #expect(h.functions[0].raise(vector: 3).result?.status == .completed)
            #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 1)
        }
        #expect(fd.count == 3 && woken == 3)
        #expect(fd.signals.retained == Array(repeating: EventFD.Signal(irq: irq, cpu: 0), count: 3))
        // After free_irq the vector is masked again: nothing more reaches the eventfd.
        try h.kernel.irq.freeIRQ(irq)
        #expect(h.functions[0].raise(vector: 3) == .pending)
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 0)
        #expect(fd.count == 3)
        // free_irq deactivated it (zero message, DISCARD); VFIO's re-request path
        // (vfio_msi_set_vector_signal: get_cached_msi_msg + pci_write_msi_msg, then request_irq)
        // activates it again: MAPTI and the real message; the latched vector is then sent.
        let desc = try #require(dev.device.msiDescriptors.first { $0.index == 3 })
        #expect(h.kernel.pci.cachedMSIMessage(desc) == MSIMessage())
        try h.kernel.pci.writeMSIMessage(dev, desc, h.kernel.pci.cachedMSIMessage(desc))
        let fd2 = EventFD(name: "vfio-msix[3] again")
        try h.kernel.irq.requestIRQ(irq, name: "vfio-msix[3](0000:00:01.0)", eventfd: fd2)
        #expect(h.entry(0, 3).address == 0x0809_0040 && h.entry(0, 3).data == 3)
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 1)
        #expect(fd2.count == 1 && fd.count == 3)
    }
}
