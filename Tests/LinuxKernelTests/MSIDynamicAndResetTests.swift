import Testing
import Bus
import GIC
@testable import LinuxKernel
import Machine
import PCI

@Suite("Dynamic MSI-X, FLR and pci_restore_msi_state, plain MSI")
struct MSIDynamicAndResetTests {
    @Test("pci_msix_alloc_irq_at adds a vector: lowest free entry, next event, MAPTI only (the ITT was sized for the table)")
    func dynamicVector() throws {
        let h = try PCIKernelHost.identity(endpoints: [HostHarness.Endpoint(requesterID: RequesterID(bus: 0, device: 1, function: 0), vectors: 8)])
        let dev = try h.bind(0)
        #expect(try h.kernel.pci.allocateIRQVectors(dev, min: 2, max: 2, flags: [.msix]) == 2)
        let driver = try #require(h.kernel.itsDrivers.first)
        // hwsize = 8: its_pci_msi_prepare sizes the ITS device for the whole table.
        #expect(driver.device(8)?.eventCount == 8)
        let mapdBefore = driver.count(of: ITSCommand.Opcode.mapd)
        let added = try h.kernel.pci.msixAllocateIRQ(dev)
        #expect(added.index == 2)
        #expect(driver.count(of: ITSCommand.Opcode.mapd) == mapdBefore, "no new MAPD")
        #expect(driver.issuedCommands.suffix(2) == [.mapti(device: DeviceID(8), event: EventID(2), intid: INTID(8194), collection: CollectionID(0)),
                                                    .sync(target: .processor(0))])
        #expect(h.entry(0, 2).address == 0x0809_0040 && h.entry(0, 2).data == 2 && h.entry(0, 2).masked)
        var hits = 0
        try h.kernel.irq.requestIRQ(added.irq, name: "dyn") { _, _ in hits += 1; return .handled }
        #expect(h.functions[0].raise(vector: 2).result?.status == .completed)
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 1 && hits == 1)
        // An explicit index: the event is the ITS's next free one (its_alloc_device_irq takes the
        // lowest free bit of the event map), not the table index, so entry 6 carries EventID 3.
        #expect(try h.kernel.pci.msixAllocateIRQ(dev, at: 6).index == 6)
        #expect(h.entry(0, 6).data == 3)
        #expect(throws: Errno.EBUSY) { try h.kernel.pci.msixAllocateIRQ(dev, at: 6) }
        #expect(throws: Errno.ERANGE) { try h.kernel.pci.msixAllocateIRQ(dev, at: 8) }
        for _ in 0..<4 { _ = try h.kernel.pci.msixAllocateIRQ(dev) }
        #expect(throws: Errno.ENOSPC) { try h.kernel.pci.msixAllocateIRQ(dev) }
        #expect(dev.device.msiDescriptors.map(\.index) == Array(0..<8))
        // pci_msix_free_irq on an unrequested one: zero message, event released.
        let six = try h.kernel.pci.irqVector(dev, 6)
        let event = try #require(h.kernel.irq.descriptor(six)).eventID
        try h.kernel.pci.msixFreeIRQ(dev, irq: six)
        #expect(h.entry(0, 6).address == 0 && h.entry(0, 6).masked)
        #expect(driver.device(8)?.eventsInUse[Int(event)] == false)
        #expect(driver.issuedCommands.suffix(2) == [.discard(device: DeviceID(8), event: EventID(event)), .sync(target: .processor(0))])
        #expect(h.its.errorLog.isEmpty)
    }

    @Test("FLR wipes the function (BAR, MSI-X enable, table); pci_reset_function restores config and rewrites every cached message")
    func flrAndRestore() throws {
        let h = try PCIKernelHost.identity()
        let dev = try h.bind(0)
        try h.kernel.pci.allocateIRQVectors(dev, min: 4, max: 4, flags: [.msix])
        let irq = try h.kernel.pci.irqVector(dev, 1)
        var hits = 0
        try h.kernel.irq.requestIRQ(irq, name: "t") { _, _ in hits += 1; return .handled }
        let function = h.functions[0]
        let cap = try #require(function.expressCapability)
        #expect(cap.supportsFunctionLevelReset)

        // A bare FLR, as the device sees it.
        try h.kernel.pci.saveState(dev)
        try h.kernel.pci.functionLevelReset(dev)
        #expect(function.functionLevelResets == 1)
        #expect(function.config.barAddress(0) == 0 && !function.config.busMasterEnabled)
        #expect(function.msix?.isEnabled(in: function.config) == false)
        #expect(h.entry(0, 1) == (0, 0, true))
        #expect(cap.deviceControl(in: function.config) & 0x8000 == 0, "Initiate FLR reads 0")
        #expect(function.raise(vector: 1) == .pending, "MSI-X off: the vector only latches")

        // pci_restore_state: header first (BAR, Memory Space, Bus Master), then the MSI-X state.
        try h.kernel.pci.restoreState(dev)
        #expect(function.config.barAddress(0) == 0x1000_0000 && function.config.busMasterEnabled)
        for v in 0..<4 {
            #expect(h.entry(0, v).address == 0x0809_0040 && h.entry(0, v).data == UInt32(v))
            #expect(h.entry(0, v).masked == (v != 1), "only the requested vector is unmasked again")
        }
        // The vector latched during the reset was sent when the entry was unmasked again.
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 1 && hits == 1)
        #expect(function.raise(vector: 1).result?.status == .completed)
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 1 && hits == 2)

        // The whole pci_reset_function in one call does the same.
        try h.kernel.pci.resetFunction(dev)
        #expect(function.functionLevelResets == 2)
        #expect(h.entry(0, 1).address == 0x0809_0040 && !h.entry(0, 1).masked)
        #expect(function.raise(vector: 1).result?.status == .completed)
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 1 && hits == 3)
    }

    @Test("a function without FLR capability: pcie_flr is refused and Initiate FLR does nothing")
    func noFLR() throws {
        let h = try HostHarness.make(endpoints: [], boot: false)
        let function = try PCIFunction(name: "old", requesterID: RequesterID(bus: 0, device: 1, function: 0), vendorID: 0x1AF4,
                                       deviceID: 0x1041, bars: [BaseAddressRegister(index: 0, size: 0x4000)],
                                       msix: MSIXConfiguration(tableSize: 2), functionLevelReset: false)
        try h.machine.rootComplexes[0].attach(function)
        try h.kernel.boot()
        let dev = try h.bind(0, function: function)
        #expect(throws: Errno.EOPNOTSUPP) { try h.kernel.pci.functionLevelReset(dev) }
        try dev.writeConfig16(try #require(dev.expressCapability) + 8, 0x8000)
        #expect(function.functionLevelResets == 0 && function.config.busMasterEnabled)
    }

    @Test("MSI (4 vectors, 64-bit, maskable): one descriptor, MME = 2, address/data in config space, vector n → EventID n")
    func plainMSI() throws {
        let h = try HostHarness.make(endpoints: [], configuration: KernelConfiguration(defaultDomain: .identity), boot: false)
        let function = try PCIFunction(name: "msi", requesterID: RequesterID(bus: 0, device: 3, function: 0), vendorID: 0x1AF4,
                                       deviceID: 0x1041, msi: MSIConfiguration(vectorsLog2: 2))
        try h.machine.rootComplexes[0].attach(function)
        try h.kernel.boot()
        let dev = try h.bind(0, function: function)
        #expect(try h.kernel.pci.allocateIRQVectors(dev, min: 1, max: 8, flags: [.msix, .msi]) == 4, "no MSI-X: falls back to MSI")
        let msi = try #require(function.msi)
        #expect(msi.isEnabled(in: function.config))
        #expect(msi.address(in: function.config) == 0x0809_0040)
        #expect(msi.allocatedVectors(in: function.config) == 4)
        #expect(dev.device.msiDescriptors.count == 1)
        let driver = try #require(h.kernel.itsDrivers.first)
        #expect(driver.device(0x18)?.eventCount == 4, "RID 00:03.0 = DeviceID 0x18")
        let irq2 = try h.kernel.pci.irqVector(dev, 2)
        var hits: [Int] = []
        try h.kernel.irq.requestIRQ(irq2, name: "msi2") { irq, _ in hits.append(irq); return .handled }
        #expect(msi.maskBits(in: function.config) == 0b1011, "only vector 2 unmasked")
        #expect(function.raise(vector: 2).result?.status == .completed)
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 1 && hits == [irq2])
        #expect(h.machine.gic?.cpuInterfaces[0].deliveries.last?.intid == INTID(8194))
        #expect(h.its.errorLog.isEmpty)
    }
}

extension HostHarness {
    /// Binds the kernel's pci_dev of a function plugged in outside `functions`.
    func bind(_ unused: Int, function: PCIFunction) throws -> PCIDevice {
        let dev = try #require(kernel.pci.device(function.requesterID))
        try kernel.pci.bindDriver(dev, name: "test-driver")
        return dev
    }
}
