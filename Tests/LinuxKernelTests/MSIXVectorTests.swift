import Testing
import Bus
import GIC
@testable import LinuxKernel
import Machine
import PCI

/// pci_alloc_irq_vectors for MSI-X on the qemu-virt host with the identity default domain:
/// the SMMU passes the MSI write through, so the message is the ITS driver's own.
@Suite("PCI MSI-X through the ITS: allocation, delivery, masking, affinity")
struct MSIXVectorTests {
    @Test("4 MSI-X vectors: one MAPD (4-entry ITT), MAPTI + SYNC per vector, entries = doorbell 0x0809_0040 / EventID, masked")
    func allocateFour() throws {
        let h = try PCIKernelHost.identity()
        let dev = try h.bind(0)
        let driver = try #require(h.kernel.itsDrivers.first)
        let before = driver.issuedCommands.count
        #expect(try h.kernel.pci.allocateIRQVectors(dev, min: 1, max: 4, flags: [.msix]) == 4)
        let commands = Array(driver.issuedCommands[before...])
        let device = try #require(driver.device(0x8), "qemu-virt msi-map: RID 0x0008 → DeviceID 0x8")
        #expect(device.eventCount == 4 && device.lpiBase == 8192)
        var expected: [ITSCommand] = [.mapd(device: DeviceID(8), size: 1, ittAddress: device.ittAddress, valid: true)]
        for event in 0..<4 {
            expected.append(.mapti(device: DeviceID(8), event: EventID(UInt32(event)), intid: INTID(8192 + UInt32(event)), collection: CollectionID(0)))
            expected.append(.sync(target: .processor(0)))
        }
        #expect(commands == expected)
        #expect(h.its.errorLog.isEmpty)
        for vector in 0..<4 {
            let e = h.entry(0, vector)
            #expect(e.address == 0x0809_0040 && e.data == UInt32(vector) && e.masked)
            let desc = dev.device.msiDescriptors[vector]
            #expect(desc.message == MSIMessage(address: 0x0809_0040, data: UInt32(vector)), "desc->msg caches what was written")
            #expect(try h.kernel.pci.irqVector(dev, vector) == desc.irq)
        }
        let msix = try #require(h.functions[0].msix)
        #expect(msix.isEnabled(in: h.functions[0].config) && !msix.isFunctionMasked(in: h.functions[0].config))
        // Linux numbers are distinct, consecutive from the first dynamic number.
        #expect(dev.device.msiDescriptors.map(\.irq) == [64, 65, 66, 67])
    }

    @Test("request_irq unmasks (LPI Enable + INV, Vector Control 0); a raised vector reaches the handler on CPU 0")
    func deliver() throws {
        let h = try PCIKernelHost.identity()
        let dev = try h.bind(0)
        try h.kernel.pci.allocateIRQVectors(dev, min: 4, max: 4, flags: [.msix])
        let irq = try h.kernel.pci.irqVector(dev, 2)
        var seen: [(Int, Int)] = []
        try h.kernel.irq.requestIRQ(irq, name: "test") { irq, cpu in seen.append((irq, cpu)); return .handled }
        #expect(!h.entry(0, 2).masked)
        #expect(h.machine.bus.ram.read(h.kernel.irq.propertyTable.rawValue + 2, size: 1) == 0xA3, "LPI 8194 enabled")
        let driver = try #require(h.kernel.itsDrivers.first)
        #expect(driver.issuedCommands.suffix(2) == [.inv(device: DeviceID(8), event: EventID(2)), .sync(target: .processor(0))])
        #expect(h.functions[0].raise(vector: 2).result?.status == .completed)
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 1)
        #expect(seen.count == 1 && seen.first?.0 == irq && seen.first?.1 == 0)
        #expect(h.kernel.irq.descriptor(irq)?.perCPUCount == [1])
        #expect(h.machine.gic?.cpuInterfaces[0].deliveries.last?.intid == INTID(8194))
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 0, "spurious 1023 ends the loop")
    }

    @Test("a vector nobody requested stays masked: raising it only sets its PBA bit")
    func unrequestedStaysPending() throws {
        let h = try PCIKernelHost.identity()
        let dev = try h.bind(0)
        try h.kernel.pci.allocateIRQVectors(dev, min: 4, max: 4, flags: [.msix])
        #expect(h.functions[0].raise(vector: 1) == .pending)
        #expect(h.functions[0].msixTable?.isPending(1) == true)
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 0)
    }

    @Test("mask: the vector latches in the PBA; unmask: the device sends it and the handler runs once")
    func maskUnmask() throws {
        let h = try PCIKernelHost.identity()
        let dev = try h.bind(0)
        try h.kernel.pci.allocateIRQVectors(dev, min: 4, max: 4, flags: [.msix])
        let irq = try h.kernel.pci.irqVector(dev, 0)
        var count = 0
        try h.kernel.irq.requestIRQ(irq, name: "t") { _, _ in count += 1; return .handled }
        try h.kernel.irq.mask(irq: irq)
        #expect(h.entry(0, 0).masked)
        #expect(h.machine.bus.ram.read(h.kernel.irq.propertyTable.rawValue, size: 1) == 0xA2, "LPI disabled too")
        #expect(h.functions[0].raise(vector: 0) == .pending)
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 0)
        try h.kernel.irq.unmask(irq: irq)
        // Unmasking writes the LPI config (INV) first, then clears the MSI-X Mask bit, which makes
        // the function send the pending message.
        #expect(h.functions[0].msixTable?.isPending(0) == false)
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 1)
        #expect(count == 1)
    }

    @Test("its_select_cpu spreads 4 vectors over the least loaded of 8 CPUs; set_affinity sends MOVI + SYNC and delivery follows")
    func affinity() throws {
        let h = try PCIKernelHost.make(fixture: "qemu-virt/virt-smmu-smp8.dtb")
        let dev = try h.bind(0)
        try h.kernel.pci.allocateIRQVectors(dev, min: 4, max: 4, flags: [.msix])
        let irqs = try (0..<4).map { try h.kernel.pci.irqVector(dev, $0) }
        // Each activation picks the CPU with the fewest LPIs, lowest number first: 0, 1, 2, 3.
        #expect(irqs.map { h.kernel.irq.descriptor($0)?.effectiveCPU } == [0, 1, 2, 3])
        var ran: [Int] = []
        try h.kernel.irq.requestIRQ(irqs[0], name: "t") { _, cpu in ran.append(cpu); return .handled }
        let driver = try #require(h.kernel.itsDrivers.first)
        try h.kernel.irq.setAffinity(irq: irqs[0], cpu: 5)
        #expect(driver.issuedCommands.suffix(2) == [.movi(device: DeviceID(8), event: EventID(0), collection: CollectionID(5)),
                                                    .sync(target: .processor(5))])
        #expect(h.its.errorLog.isEmpty)
        #expect(h.functions[0].raise(vector: 0).result?.status == .completed)
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 0, "nothing left on the old CPU")
        #expect(h.kernel.irq.handleInterrupts(cpu: 5) == 1)
        #expect(ran == [5])
        #expect(h.kernel.irq.descriptor(irqs[0])?.perCPUCount[5] == 1)
        // The message did not change: the ITS routes by collection, not by address.
        #expect(h.entry(0, 0).address == 0x0809_0040 && h.entry(0, 0).data == 0)
        // Same CPU again: no command.
        let count = driver.issuedCommands.count
        try h.kernel.irq.setAffinity(irq: irqs[0], cpu: 5)
        #expect(driver.issuedCommands.count == count)
        #expect(throws: Errno.EINVAL) { try h.kernel.irq.setAffinity(irq: irqs[0], cpu: 8) }
    }

    @Test("deactivate writes a zero message and DISCARDs; activate maps again (MAPTI) and recomposes the same message")
    func deactivateActivate() throws {
        let h = try PCIKernelHost.identity()
        let dev = try h.bind(0)
        try h.kernel.pci.allocateIRQVectors(dev, min: 4, max: 4, flags: [.msix])
        let irq = try h.kernel.pci.irqVector(dev, 3)
        let driver = try #require(h.kernel.itsDrivers.first)
        try h.kernel.irq.deactivate(irq: irq)
        #expect(h.entry(0, 3).address == 0 && h.entry(0, 3).data == 0, "msi_domain_deactivate writes an all-zero msg")
        #expect(driver.issuedCommands.suffix(2) == [.discard(device: DeviceID(8), event: EventID(3)), .sync(target: .processor(0))])
        try h.kernel.irq.activate(irq: irq)
        #expect(driver.issuedCommands.suffix(2) == [.mapti(device: DeviceID(8), event: EventID(3), intid: INTID(8195), collection: CollectionID(0)),
                                                    .sync(target: .processor(0))])
        #expect(h.entry(0, 3).address == 0x0809_0040 && h.entry(0, 3).data == 3)
        #expect(h.its.errorLog.isEmpty)
    }

    @Test("v6.15 compose goes through msi_msg_set_addr: an IOVA stored in the descriptor replaces the page, keeps offset 0x40")
    func composeUsesDescriptorIOVA() throws {
        let h = try PCIKernelHost.identity()
        let dev = try h.bind(0)
        try h.kernel.pci.allocateIRQVectors(dev, min: 1, max: 1, flags: [.msix])
        let desc = try #require(dev.device.msiDescriptors.first)
        desc.setIOMMUMSIIOVA(0xFFFF_F000, shift: 12)
        try h.kernel.irq.recompose(irq: desc.irq)
        #expect(h.entry(0, 0).address == 0xFFFF_F040)
        #expect(h.kernel.pci.cachedMSIMessage(desc).address == 0xFFFF_F040)
    }

    @Test("pci_write_msi_msg on an unmasked entry masks it around the write and restores it")
    func writeWhileUnmasked() throws {
        let h = try PCIKernelHost.identity()
        let dev = try h.bind(0)
        try h.kernel.pci.allocateIRQVectors(dev, min: 1, max: 1, flags: [.msix])
        let desc = try #require(dev.device.msiDescriptors.first)
        try h.kernel.irq.requestIRQ(desc.irq, name: "t") { _, _ in .handled }
        h.functions[0].clearLog()
        var message = h.kernel.pci.cachedMSIMessage(desc)
        message.data = 0x1234
        try h.kernel.pci.writeMSIMessage(dev, desc, message)
        #expect(h.entry(0, 0).data == 0x1234 && !h.entry(0, 0).masked)
        #expect(desc.message.data == 0x1234)
    }

    @Test("errors: not enabled (not in D0) EINVAL, max < min ERANGE, more than the table ENOSPC, twice EINVAL")
    func errors() throws {
        let h = try PCIKernelHost.identity()
        let dev = try h.pci(0)
        #expect(throws: Errno.EINVAL) { try h.kernel.pci.allocateIRQVectors(dev, min: 1, max: 4, flags: [.msix]) }
        try h.kernel.pci.bindDriver(dev, name: "t")
        #expect(throws: Errno.ERANGE) { try h.kernel.pci.allocateIRQVectors(dev, min: 4, max: 2, flags: [.msix]) }
        #expect(throws: Errno.ENOSPC) { try h.kernel.pci.allocateIRQVectors(dev, min: 5, max: 8, flags: [.msix]) }
        #expect(try h.kernel.pci.allocateIRQVectors(dev, min: 1, max: 64, flags: [.msix]) == 4, "capped by the table")
        #expect(throws: Errno.EINVAL) { try h.kernel.pci.allocateIRQVectors(dev, min: 1, max: 4, flags: [.msix]) }
        #expect(throws: Errno.EINVAL, "no MSI capability") { try h.kernel.pci.allocateIRQVectors(try h.bind(1), min: 1, max: 1, flags: [.msi]) }
    }

    @Test("pci_free_irq_vectors: refuses with a handler installed; then masks, disables, DISCARDs each, MAPD V=0, frees the LPIs")
    func free() throws {
        let h = try PCIKernelHost.identity()
        let dev = try h.bind(0)
        let freeLPIs = h.kernel.irq.lpiAllocator.freeCount
        try h.kernel.pci.allocateIRQVectors(dev, min: 4, max: 4, flags: [.msix])
        let irq = try h.kernel.pci.irqVector(dev, 0)
        try h.kernel.irq.requestIRQ(irq, name: "t") { _, _ in .handled }
        #expect(throws: Errno.EBUSY) { try h.kernel.pci.freeIRQVectors(dev) }
        let driver = try #require(h.kernel.itsDrivers.first)
        let itt = try #require(driver.device(8)).ittAddress
        let before = driver.issuedCommands.count
        // free_irq deactivates its interrupt at once (zero message, DISCARD); the other three
        // are deactivated by pci_free_irq_vectors.
        try h.kernel.irq.freeIRQ(irq)
        #expect(driver.issuedCommands.suffix(2) == [.discard(device: DeviceID(8), event: EventID(0)), .sync(target: .processor(0))])
        #expect(h.entry(0, 0) == (0, 0, true))
        try h.kernel.pci.freeIRQVectors(dev)
        let commands = Array(driver.issuedCommands[before...])
        #expect(commands.filter { $0.opcode == ITSCommand.Opcode.discard }.count == 4)
        #expect(commands.last == .mapd(device: DeviceID(8), size: 1, ittAddress: itt, valid: false))
        #expect(driver.device(8) == nil)
        #expect(h.kernel.irq.lpiAllocator.freeCount == freeLPIs)
        #expect(dev.device.msiDescriptors.isEmpty && !dev.msixEnabled)
        let msix = try #require(h.functions[0].msix)
        #expect(!msix.isEnabled(in: h.functions[0].config))
        for v in 0..<4 { #expect(h.entry(0, v) == (0, 0, true)) }
        #expect(h.kernel.irq.descriptor(irq) == nil)
        #expect(h.its.errorLog.isEmpty)
        // And again from scratch: the same DeviceID maps anew.
        #expect(try h.kernel.pci.allocateIRQVectors(dev, min: 2, max: 2, flags: [.msix]) == 2)
    }

    @Test("v6.14: the ITS composes the physical doorbell and hands the message to iommu_dma_compose_msi_msg")
    func legacyCompose() throws {
        let h = try HostHarness.make(configuration: KernelConfiguration(version: .v6_14, defaultDomain: .identity))
        let dev = try h.bind(0)
        try h.kernel.pci.allocateIRQVectors(dev, min: 1, max: 1, flags: [.msix])
        // Identity domain: no cookie, so the legacy compose leaves the physical address.
        #expect(h.entry(0, 0).address == 0x0809_0040)
    }
}
