import Testing
import Bus
import Firmware
@testable import LinuxKernel
import Machine
import PCI

/// INTx: the Interrupt Pin, the swizzle across bridges, QEMU virt's interrupt-map, and
/// `pci_alloc_irq_vectors`' fallback to INTx only when MSI cannot be enabled.
@Suite("PCI INTx")
struct PCIINTxTests {
    @Test("QEMU virt's interrupt-map: slot s, pin p (1…4) → SPI 3 + ((p − 1 + s) mod 4), parent the GIC, level high (create_pcie_irq_map)")
    func qemuVirtInterruptMap() throws {
        let topology = try Topology(dtb: try PCIKernelHost.fixtureBytes("qemu-virt/virt-smmu.dtb"))
        let bridge = try #require(topology.pcieHostBridges.first)
        let map = try #require(bridge.interruptMap)
        // Mask <0x1800 0 0 7>: slot bits 12:11 of phys.hi and the pin; 16 entries (slots 0…3 ×
        // pins), each with the GIC's 2 address cells and 3 interrupt cells.
        #expect(map.mask == [0x1800, 0, 0, 7])
        #expect(map.entries.count == 16)
        for slot in UInt32(0)..<32 {
            for pin in UInt32(1)...4 {
                let entry = try #require(map.lookup(address: [slot << 11, 0, 0], pin: pin))
                #expect(entry.parentPhandle == topology.gic?.phandle)
                #expect(entry.parentAddress == [0, 0])
                #expect(entry.parentSpecifier == [0, 3 + (pin - 1 + slot) % 4, 4], "slot \(slot) pin \(pin)")
            }
        }
    }

    @Test("a truncated interrupt-map or one naming an unknown phandle is a mistake, not a crash")
    func badMaps() {
        let cells: (UInt32) -> (address: UInt32, interrupt: UInt32?)? = { $0 == 1 ? (2, 3) : nil }
        guard case .failure = InterruptMap.parse([0, 0, 0, 1, 1, 0, 0, 0, 3], mask: nil, parentCells: cells) else { Issue.record("truncated"); return }
        guard case .failure = InterruptMap.parse([0, 0, 0, 1, 9, 0, 0, 0, 3, 4], mask: nil, parentCells: cells) else { Issue.record("phandle"); return }
        guard case .failure = InterruptMap.parse([], mask: [1, 2], parentCells: cells) else { Issue.record("mask"); return }
        guard case .success(let map) = InterruptMap.parse([0x800, 0, 0, 1, 1, 0, 0, 0, 5, 4], mask: nil, parentCells: cells) else { Issue.record("valid"); return }
        #expect(map.lookup(address: [0x800, 0, 0], pin: 1)?.parentSpecifier == [0, 5, 4])
        #expect(map.lookup(address: [0x800, 0, 0], pin: 2) == nil, "no mask: every bit compared")
    }

    @Test("pci_swizzle_interrupt_pin: ((pin − 1 + slot) mod 4) + 1", arguments: [
        (UInt8(1), UInt8(0), UInt8(1)), (1, 1, 2), (2, 3, 1), (4, 1, 1), (3, 31, 2),
    ])
    func swizzle(pin: UInt8, slot: UInt8, expected: UInt8) {
        #expect(PCIToPCIBridge.swizzle(pin: pin, device: slot) == expected)
    }

    /// A qemu-virt host with: 00:02.0 (INTA) on the root bus; a root port 00:1f.0 (bus 1) with
    /// 01:01.0 (INTA) behind it; and behind the root port a PCIe-to-PCI bridge 01:00.0 (bus 2)
    /// with 02:03.0 (INTA). No function has MSI or MSI-X.
    /// `fixture`: a qemu-virt DTB to build the machine from instead of the preset.
    func intxHost(fixture: String? = nil) throws -> (HostHarness, [PCIFunction]) {
        let h = try fixture.map { try HostHarness.make(machine: try Machine(topology: try Topology(dtb: try PCIKernelHost.fixtureBytes($0)), name: $0),
                                                       endpoints: [], boot: false) }
            ?? HostHarness.make(endpoints: [], boot: false)
        let rc = h.machine.rootComplexes[0]
        let port = try PCIToPCIBridge(name: "root-port", requesterID: RequesterID(bus: 0, device: 0x1F, function: 0),
                                      kind: .rootPort, deviceID: 0x000C, secondaryBus: 1, subordinateBus: 2)
        try rc.attach(port)
        let nested = try PCIToPCIBridge(name: "pcie-pci-bridge", requesterID: RequesterID(bus: 1, device: 0, function: 0),
                                        kind: .pcieToPCI, deviceID: 0x000E, secondaryBus: 2)
        try rc.attach(nested, behind: port)
        var functions: [PCIFunction] = []
        for (rid, bridge) in [(RequesterID(bus: 0, device: 2, function: 0), PCIToPCIBridge?.none),
                              (RequesterID(bus: 1, device: 1, function: 0), port),
                              (RequesterID(bus: 2, device: 3, function: 0), nested)] {
            let f = try PCIFunction(name: "\(rid)", requesterID: rid, vendorID: 0x1AF4, deviceID: 0x1041,
                                    bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)], interruptPin: 1)
            try rc.attach(f, behind: bridge)
            functions.append(f)
        }
        try h.kernel.boot()
        return (h, functions)
    }

    @Test("INTA behind no, one and two bridges reaches the host bridge swizzled and maps to the SPI QEMU wired; asserting it raises that SPI at the distributor")
    func swizzleThroughBridges() throws {
        let (h, functions) = try intxHost()
        // 00:02.0 INTA: root bus, slot 2 pin 1 → SPI 3 + (0 + 2) % 4 = 5, INTID 37.
        // 01:01.0 INTA: the root port swizzles with slot 1: pin 2 at 00:1f.0 (slot 31, & 3 = 3)
        //   → SPI 3 + (1 + 31) % 4 = 3, INTID 35.
        // 02:03.0 INTA: 01:00.0 swizzles with slot 3: pin 4; the root port with 01:00.0's slot 0:
        //   pin 4 at 00:1f.0 → SPI 3 + (3 + 31) % 4 = 5, INTID 37.
        let expected: [(UInt8, UInt8, UInt32)] = [(0x10, 1, 37), (0xF8, 2, 35), (0xF8, 4, 37)]
        for (f, e) in zip(functions, expected) {
            let dev = try #require(h.kernel.pci.device(f.requesterID))
            let route = try #require(h.kernel.pci.intxRoute(dev))
            #expect(route.rootDevfn == e.0 && route.pin == e.1 && route.intid == e.2, "\(f.requesterID)")
            let hw = try #require(f.intxRoute)
            #expect(hw.rootDevfn == e.0 && hw.pin == e.1, "the hardware swizzle agrees with Linux's")
        }
        let gic = try #require(h.machine.gic)
        #expect(!gic.distributor.isPending(intid: 35))
        functions[1].setINTx(true)
        #expect(gic.distributor.isPending(intid: 35))
        #expect(!gic.distributor.isPending(intid: 37))
        functions[1].setINTx(false)
        #expect(!gic.distributor.isPending(intid: 35), "level-sensitive: pending only while asserted")
    }

    @Test("pci_alloc_irq_vectors(1, n, PCI_IRQ_ALL_TYPES) on a function without MSI falls back to INTx: dev->irq, Interrupt Disable cleared, the SPI enabled and routed to CPU 0")
    func fallbackWithoutCapability() throws {
        let (h, functions) = try intxHost()
        let dev = try #require(h.kernel.pci.device(functions[1].requesterID))
        var n = 0
        try h.kernel.pci.probeDriver(dev, name: "intx") { () throws(Errno) in
            try h.kernel.pci.enableDevice(dev)
            // Without PCI_IRQ_INTX there is no fallback: MSI-X and MSI fail (no capability).
            #expect(throws: Errno.self) { try h.kernel.pci.allocateIRQVectors(dev, min: 1, max: 4, flags: [.msix, .msi]) }
            n = try h.kernel.pci.allocateIRQVectors(dev, min: 1, max: 4, flags: .allTypes)
        }
        // pci_assign_irq at probe mapped INTID 35 (see swizzleThroughBridges) to dev->irq.
        #expect(n == 1 && dev.intxEnabled && !dev.msixEnabled && !dev.msiEnabled)
        #expect(dev.irq >= IRQSubsystem.firstDynamicIRQ)
        #expect(h.kernel.irq.descriptor(dev.irq)?.hwirq == 35)
        #expect(try h.kernel.pci.irqVector(dev, 0) == dev.irq)
        #expect(throws: Errno.EINVAL) { try h.kernel.pci.irqVector(dev, 1) }
        #expect(functions[1].configRead(offset: ConfigRegister.interruptLine, size: 1) == UInt32(dev.irq & 0xFF))
        #expect(functions[1].configRead(offset: ConfigRegister.command, size: 2) & UInt32(ConfigRegister.commandInterruptDisable) == 0)
        try h.kernel.irq.requestIRQ(dev.irq, name: "intx") { _, _ in .handled }
        let gic = try #require(h.machine.gic)
        #expect(gic.distributor.isEnabled(intid: 35))
        // GICD_IROUTER35 = CPU 0's affinity (qemu-virt: MPIDR 0), GICD_ICFGR2 bit 7 clear (level).
        let base = try #require(h.kernel.topology.gic?.distributor.base)
        #expect(try h.kernel.mmio.read32(try #require(base.adding(0xC08))) & (1 << 7) == 0)
        #expect(try h.kernel.mmio.read(try #require(base.adding(0x6000 + 8 * 35)), size: 8) == 0)
        try h.kernel.irq.freeIRQ(dev.irq)
        #expect(!gic.distributor.isEnabled(intid: 35), "free_irq masks it: GICD_ICENABLER")
    }

    @Test("a function with MSI-X and an Interrupt Pin gets MSI-X while an MSI domain exists, INTx on the same platform with the ITS removed (no msi-parent)",
          arguments: [("qemu-virt/virt-smmu.dtb", true), ("qemu-virt/virt-smmu-itsoff.dtb", false)])
    func intxOnlyWithoutMSI(fixture: String, hasITS: Bool) throws {
        let machine = try Machine(topology: try Topology(dtb: try PCIKernelHost.fixtureBytes(fixture)), name: fixture)
        let function = try PCIFunction(name: "ep", requesterID: RequesterID(bus: 0, device: 1, function: 0), vendorID: 0x1AF4, deviceID: 0x1041,
                                       bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                       msix: MSIXConfiguration(tableSize: 4), interruptPin: 1)
        try machine.rootComplexes[0].attach(function)
        let gic = try #require(machine.gic)
        let kernel = LinuxKernel(topology: machine.topology, bus: machine.bus, cpuInterface: gic)
        try kernel.boot()
        #expect(kernel.itsDrivers.isEmpty == !hasITS)
        let dev = try #require(kernel.pci.device(function.requesterID))
        var n = 0
        try kernel.pci.probeDriver(dev, name: "ep") { () throws(Errno) in
            try kernel.pci.enableDevice(dev)
            try kernel.pci.setMaster(dev)
            n = try kernel.pci.allocateIRQVectors(dev, min: 1, max: 4, flags: .allTypes)
        }
        // 00:01.0 INTA: slot 1 pin 1 → SPI 3 + (0 + 1) % 4 = 4, INTID 36; mapped at probe either way.
        #expect(kernel.irq.descriptor(dev.irq)?.hwirq == 36)
        if hasITS {
            #expect(n == 4 && dev.msixEnabled && !dev.intxEnabled)
        } else {
            #expect(n == 1 && dev.intxEnabled && !dev.msixEnabled)
            #expect(try kernel.pci.irqVector(dev, 0) == dev.irq)
        }
    }

    /// The kernel's handler for `dev`'s INTx: `pci_check_and_mask_intx`-style, it reads
    /// PCI_STATUS and returns IRQ_NONE when PCI_STATUS_INTERRUPT is clear; otherwise it clears
    /// the device's condition (`clearAfter` calls: 1 clears at once, 2 leaves it asserted the
    /// first time) and returns IRQ_HANDLED. Records the CPU of each call.
    func installHandler(_ kernel: LinuxKernel, _ dev: PCIDevice, _ function: PCIFunction, clearAfter: Int = 1) throws -> () -> [Int] {
        var cpus: [Int] = []
        try kernel.irq.requestIRQ(dev.irq, name: "intx") { _, cpu in
            guard let status = try? dev.readConfig(ConfigRegister.status, size: 2),
                  UInt16(truncatingIfNeeded: status) & ConfigRegister.statusInterrupt != 0 else { return .none }
            cpus.append(cpu)
            if cpus.count >= clearAfter { function.setINTx(false) }
            return .handled
        }
        return { cpus }
    }

    @Test("the asserted INTx is taken on CPU 0: IAR returns SPI INTID 35, handle_fasteoi_irq runs the handler once, the driver clears the device, the SPI ends inactive (EOImode 1: EOIR then DIR)")
    func handledOnCPU() throws {
        let (h, functions) = try intxHost()
        let dev = try #require(h.kernel.pci.device(functions[1].requesterID))
        try h.kernel.pci.probeDriver(dev, name: "intx") { () throws(Errno) in
            try h.kernel.pci.enableDevice(dev)
            _ = try h.kernel.pci.allocateIRQVectors(dev, min: 1, max: 1, flags: .allTypes)
        }
        let calls = try installHandler(h.kernel, dev, functions[1])
        let gic = try #require(h.machine.gic)
        #expect(gic.cpuInterfaces[0].eoiMode, "the host is entered at EL2: supports_deactivate_key")
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 0)
        #expect(functions[1].setINTx(true))
        #expect(functions[1].configRead(offset: ConfigRegister.status, size: 2) & UInt32(ConfigRegister.statusInterrupt) != 0)
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 1)
        #expect(calls() == [0])
        let d = try #require(h.kernel.irq.descriptor(dev.irq))
        #expect(d.perCPUCount[0] == 1 && d.unhandledCount == 0)
        #expect(gic.cpuInterfaces[0].deliveries.last?.intid.rawValue == 35)
        #expect(!gic.distributor.isPending(intid: 35) && !gic.distributor.isActive(intid: 35))
        #expect(gic.cpuInterfaces[0].counters.deactivations == 1 && gic.cpuInterfaces[0].runningPriority == 0xFF)
        #expect(!functions[1].setINTx(false) && !functions[1].interruptStatus)
    }

    @Test("level semantics through Linux: a handler that leaves the line asserted sees the SPI taken again after DIR; once cleared it is not")
    func retakenWhileAsserted() throws {
        let (h, functions) = try intxHost()
        let dev = try #require(h.kernel.pci.device(functions[1].requesterID))
        try h.kernel.pci.probeDriver(dev, name: "intx") { () throws(Errno) in
            try h.kernel.pci.enableDevice(dev)
            _ = try h.kernel.pci.allocateIRQVectors(dev, min: 1, max: 1, flags: .allTypes)
        }
        let calls = try installHandler(h.kernel, dev, functions[1], clearAfter: 2)
        functions[1].setINTx(true)
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 2)
        #expect(calls() == [0, 0])
        #expect(h.kernel.irq.descriptor(dev.irq)?.perCPUCount[0] == 2)
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 0)
    }

    @Test("irq_set_affinity(irq, CPU 1) writes GICD_IROUTER with CPU 1's MPIDR: CPU 0 takes nothing, CPU 1 runs the handler; after free_irq (GICD_ICENABLER) nothing is taken")
    func affinityAndDisable() throws {
        let (h, functions) = try intxHost(fixture: "qemu-virt/virt-smmu-smp8.dtb")
        let cpus = h.kernel.topology.cpus
        try #require(cpus.count >= 2)
        let dev = try #require(h.kernel.pci.device(functions[1].requesterID))
        try h.kernel.pci.probeDriver(dev, name: "intx") { () throws(Errno) in
            try h.kernel.pci.enableDevice(dev)
            _ = try h.kernel.pci.allocateIRQVectors(dev, min: 1, max: 1, flags: .allTypes)
        }
        let calls = try installHandler(h.kernel, dev, functions[1])
        try h.kernel.irq.setAffinity(irq: dev.irq, cpu: 1)
        let base = try #require(h.kernel.topology.gic?.distributor.base)
        #expect(try h.kernel.mmio.read(try #require(base.adding(0x6000 + 8 * 35)), size: 8) == cpus[1].mpidr & 0xFF_00FF_FFFF)
        #expect(h.kernel.irq.descriptor(dev.irq)?.effectiveCPU == 1)
        functions[1].setINTx(true)
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 0)
        #expect(h.kernel.irq.handleInterrupts(cpu: 1) == 1)
        #expect(calls() == [1])
        #expect(h.kernel.irq.descriptor(dev.irq)?.perCPUCount == [0, 1] + Array(repeating: 0, count: max(cpus.count - 2, 0)))

        try h.kernel.irq.freeIRQ(dev.irq)
        functions[1].setINTx(true)
        let gic = try #require(h.machine.gic)
        #expect(gic.distributor.isPending(intid: 35) && !gic.distributor.isEnabled(intid: 35))
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) + h.kernel.irq.handleInterrupts(cpu: 1) == 0, "a disabled SPI is not taken")
    }

    @Test("Command.Interrupt Disable deasserts the wire while the condition holds and clearing it asserts it again (PCI 3.0 §6.2.2)")
    func interruptDisableGatesTheWire() throws {
        let (h, functions) = try intxHost()
        let gic = try #require(h.machine.gic)
        let f = functions[1]
        f.setINTx(true)
        #expect(gic.distributor.level(intid: 35))
        let command = f.configRead(offset: ConfigRegister.command, size: 2)
        f.configWrite(offset: ConfigRegister.command, size: 2, value: command | UInt32(ConfigRegister.commandInterruptDisable))
        #expect(!gic.distributor.level(intid: 35) && f.interruptStatus)
        f.configWrite(offset: ConfigRegister.command, size: 2, value: command)
        #expect(gic.distributor.level(intid: 35))
        f.functionLevelReset()
        #expect(!gic.distributor.level(intid: 35), "FLR clears Interrupt Status")
    }

    @Test("a guest kernel (EL1) runs EOImode 0: ICC_EOIR1_EL1 deactivates and the same handler runs once",
          arguments: ["host", "guest"])
    func eoiModeByRole(role: String) throws {
        let machine = try Machine(topology: try Topology(dtb: try PCIKernelHost.fixtureBytes("qemu-virt/virt-smmu-itsoff.dtb")), name: "itsoff")
        let function = try PCIFunction(name: "ep", requesterID: RequesterID(bus: 0, device: 1, function: 0), vendorID: 0x1AF4, deviceID: 0x1041,
                                       bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)], interruptPin: 1)
        try machine.rootComplexes[0].attach(function)
        let gic = try #require(machine.gic)
        let kernel = LinuxKernel(role: role, topology: machine.topology, bus: machine.bus, cpuInterface: gic)
        try kernel.boot()
        let dev = try #require(kernel.pci.device(function.requesterID))
        try kernel.pci.probeDriver(dev, name: "ep") { () throws(Errno) in
            try kernel.pci.enableDevice(dev)
            _ = try kernel.pci.allocateIRQVectors(dev, min: 1, max: 1, flags: .allTypes)
        }
        let calls = try installHandler(kernel, dev, function)
        #expect(gic.cpuInterfaces[0].eoiMode == (role == "host"))
        // gic_dist_init: every SPI Group 1 at priority 0xA0, level, routed to the boot CPU.
        #expect(gic.distributor.isGroup1(intid: 36) && gic.distributor.priority(intid: 36) == 0xA0)
        #expect(!gic.distributor.isEdgeTriggered(intid: 36) && gic.distributor.router(intid: 36) == 0)
        function.setINTx(true)
        #expect(kernel.irq.handleInterrupts(cpu: 0) == 1)
        #expect(calls() == [0])
        #expect(!gic.distributor.isActive(intid: 36))
        #expect(gic.cpuInterfaces[0].counters.deactivations == 1 && gic.cpuInterfaces[0].counters.ignoredDeactivations == 0)
    }

    @Test("an SPI taken with no action is masked and marked IRQS_PENDING (handle_fasteoi_irq), and deactivated")
    func noActionMasks() throws {
        let (h, functions) = try intxHost()
        let dev = try #require(h.kernel.pci.device(functions[1].requesterID))
        try h.kernel.pci.probeDriver(dev, name: "intx") { () throws(Errno) in
            try h.kernel.pci.enableDevice(dev)
            _ = try h.kernel.pci.allocateIRQVectors(dev, min: 1, max: 1, flags: .allTypes)
        }
        let gic = try #require(h.machine.gic)
        let d = try #require(h.kernel.irq.descriptor(dev.irq))
        // Enabled by hand with no action installed (GICD_ISENABLER, as a bootloader might leave it).
        let base = try #require(h.kernel.topology.gic?.distributor.base)
        try h.kernel.mmio.write32(try #require(base.adding(0x104)), 1 << 3)
        functions[1].setINTx(true)
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 1)
        #expect(d.replayPending && d.unhandledCount == 1 && d.perCPUCount[0] == 0)
        #expect(!gic.distributor.isEnabled(intid: 35) && !gic.distributor.isActive(intid: 35))
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 0)
    }
}
