import Testing
import Bus
import Firmware
import GIC
@testable import LinuxKernel
import Machine
import PCI

/// A booted host kernel's interrupt core, ITS driver and PCI core forked with the machine
/// (`WorldCloneable`): the copy goes on exactly as the original would (same Linux numbers,
/// LPIs, ITS commands in the same queue slots, MSI-X entries, CPU choices) and neither sees the
/// other's MSI allocations, affinity changes, frees or interrupts.
@Suite("Kernel IRQ, ITS and PCI core fork")
struct KernelIRQForkTests {
    /// qemu-virt with 8 CPUs (QEMU `-smp 8`) and no IOMMU, so affinity has somewhere to go and
    /// the MSI path is the ITS's alone (the IOMMU layer forks with its own classes).
    static func host() throws -> HostHarness {
        var topology = try Topology(dtb: try PCIKernelHost.fixtureBytes("qemu-virt/virt-smmu-smp8.dtb"))
        topology.smmus = []
        for i in topology.pcieHostBridges.indices {
            topology.pcieHostBridges[i].iommuMap = nil
            topology.pcieHostBridges[i].iommus = []
        }
        return try HostHarness.make(machine: try Machine(topology: topology, name: "virt-smp8-noiommu"))
    }

    /// The observable results of one step, compared between original and copy.
    struct Step: Equatable {
        var commands: [String]
        var irqs: [Int]
        var lpis: [UInt32]
        var entries: [[UInt64]]
        var lpiCounts: [Int]
    }

    /// Allocates 4 MSI-X vectors on function 1, moves one of function 0's vectors, frees
    /// another, and returns what each kernel did.
    static func drive(_ kernel: LinuxKernel, functions: [PCIFunction], moved: Int, freed: Int, cpu: Int) throws -> Step {
        let driver = try #require(kernel.itsDrivers.first)
        let before = driver.commandLog.count
        let dev1 = try #require(kernel.pci.device(functions[1].requesterID))
        try kernel.pci.bindDriver(dev1, name: "test-driver")
        try kernel.pci.allocateIRQVectors(dev1, min: 4, max: 4, flags: [.msix])
        try kernel.irq.setAffinity(irq: moved, cpu: cpu)
        try kernel.irq.freeIRQ(freed)
        let irqs = dev1.device.msiDescriptors.map(\.irq)
        let table = try #require(functions[1].msixTable)
        return Step(commands: Array(driver.commandLog[before...]), irqs: irqs,
                    lpis: irqs.compactMap { kernel.irq.descriptor($0)?.hwirq },
                    entries: (0..<4).map { [table.messageAddress($0), UInt64(table.messageData($0)), table.isMasked($0) ? 1 : 0] },
                    lpiCounts: kernel.irq.lpiCountPerCPU)
    }

    @Test("every part carries its values and points into the copy; the same next steps give the same LPIs, commands and entries, independently",
          arguments: [false, true])
    func forkedHostIRQ(withSMMU: Bool) throws {
        // With the SMMU (qemu-virt, one CPU, DMA default domain) the messages carry the
        // doorbell's IOVA; without it (8 CPUs) affinity moves between CPUs.
        let h = withSMMU ? try HostHarness.make() : try Self.host()
        let cpus = h.kernel.irq.cpuCount
        let dev0 = try h.bind(0)
        try h.kernel.pci.allocateIRQVectors(dev0, min: 4, max: 4, flags: [.msix])
        let irqs = dev0.device.msiDescriptors.map(\.irq)
        var handled = 0
        try h.kernel.irq.requestIRQ(irqs[0], name: "ep0-0") { _, _ in handled += 1; return .handled }
        let trigger = EventFD(name: "vfio-msix[1]")
        try h.kernel.irq.requestIRQ(irqs[1], name: "ep0-1", eventfd: trigger)
        try h.kernel.irq.requestIRQ(irqs[2], name: "ep0-2") { _, _ in .handled }
        try h.kernel.irq.setAffinity(irq: irqs[2], cpu: min(3, cpus - 1))

        let fork = try h.forked()
        let copy = fork.kernel
        let driver = try #require(h.kernel.itsDrivers.first), driverCopy = try #require(copy.itsDrivers.first)

        // Values: every stored value field of every part was carried.
        #expect(CloneMap.valueFieldsThatDiffer(h.kernel, copy) == [])
        #expect(CloneMap.valueFieldsThatDiffer(h.kernel.irq, copy.irq) == [])
        #expect(CloneMap.valueFieldsThatDiffer(driver, driverCopy) == [])
        #expect(CloneMap.valueFieldsThatDiffer(h.kernel.pci, copy.pci) == [])
        for (original, twin) in zip(h.kernel.pci.devices, copy.pci.devices) {
            #expect(CloneMap.valueFieldsThatDiffer(original, twin) == [], "\(original.name)")
            #expect(CloneMap.valueFieldsThatDiffer(original.device, twin.device) == [], "\(original.name)")
        }
        for (original, twin) in zip(h.kernel.irq.sortedDescriptors, copy.irq.sortedDescriptors) {
            #expect(CloneMap.valueFieldsThatDiffer(original, twin) == [], "irq \(original.irq)")
        }
        for (original, twin) in zip(driver.sortedDevices, driverCopy.sortedDevices) {
            #expect(CloneMap.valueFieldsThatDiffer(original, twin) == [], "DeviceID \(original.deviceID)")
        }
        for (original, twin) in zip(dev0.device.msiDescriptors, try #require(copy.pci.device(named: dev0.name)).device.msiDescriptors) {
            #expect(CloneMap.valueFieldsThatDiffer(original, twin) == [], "vector \(original.index)")
        }

        // References: one copy of each object, all in the copied world.
        let dev0Copy = try #require(copy.pci.device(named: dev0.name))
        #expect(dev0Copy !== dev0 && dev0Copy.device.pci === dev0Copy && dev0Copy.kernel === copy)
        #expect(copy.devices.contains { $0 === dev0Copy.device } && !copy.devices.contains { $0 === dev0.device })
        #expect(copy.irq.kernel === copy && driverCopy.kernel === copy && copy.pci.kernel === copy)
        #expect(copy.bus === fork.machine.bus && copy.cpuInterface === fork.machine.gic)
        for irq in irqs {
            let d = try #require(copy.irq.descriptor(irq))
            #expect(d !== h.kernel.irq.descriptor(irq) && copy.irq.descriptor(hwirq: d.hwirq) === d)
            #expect(d.device === dev0Copy.device && d.msiDescriptor === dev0Copy.device.msiDescriptors[irq - irqs[0]])
            #expect(d.itsDevice === driverCopy.device(0x8))
        }

        // The closures: VFIO's action signals the copied eventfd; the drivers' handlers wait.
        #expect(copy.irq.irqsAwaitingHandler == [irqs[0], irqs[2]])
        var handledCopy = 0
        try copy.irq.reinstallHandler(irq: irqs[0]) { _, _ in handledCopy += 1; return .handled }
        try copy.irq.reinstallHandler(irq: irqs[2]) { _, _ in .handled }
        #expect(copy.irq.irqsAwaitingHandler.isEmpty)
        #expect(throws: Errno.EINVAL) { try copy.irq.reinstallHandler(irq: irqs[1]) { _, _ in .handled } }
        #expect(fork.functions[0].raise(vector: 0).result?.status == .completed)
        #expect(fork.functions[0].raise(vector: 1).result?.status == .completed)
        #expect((0..<cpus).reduce(0) { $0 + copy.irq.handleInterrupts(cpu: $1) } == 2)
        #expect(handledCopy == 1 && handled == 0, "the interrupt was the copy's")
        let triggerCopy = try #require(fork.map.copy(of: trigger))
        #expect(triggerCopy.count == 1 && trigger.count == 0)
        #expect((0..<cpus).reduce(0) { $0 + h.kernel.irq.handleInterrupts(cpu: $1) } == 0, "nothing is pending on the original's GIC")

        // The same next steps on the copy, then on the original.
        let beforeOriginal = driver.commandLog
        let fromCopy = try Self.drive(copy, functions: fork.functions, moved: irqs[3], freed: irqs[1], cpu: min(5, cpus - 1))
        #expect(driver.commandLog == beforeOriginal, "the copy's commands are not the original's")
        #expect(h.kernel.irq.descriptor(irqs[1])?.action != nil && h.kernel.irq.descriptor(irqs[3])?.affinity == nil)
        #expect(driver.device(0x10) == nil && h.functions[1].msixTable?.messageAddress(0) == 0)
        #expect(!fromCopy.commands.isEmpty && fromCopy.irqs.count == 4)
        let fromOriginal = try Self.drive(h.kernel, functions: h.functions, moved: irqs[3], freed: irqs[1], cpu: min(5, cpus - 1))
        #expect(fromOriginal == fromCopy)
        #expect(fork.machine.its[0].creadr == h.its.creadr && fork.machine.its[0].errorLog.isEmpty)
        #expect(driverCopy.commandWriteOffset == driver.commandWriteOffset)
        // Both grew their descriptor tables alike; a dictionary's iteration order may differ
        // once it has grown (each storage has its own hash seed), so those two compare sorted.
        #expect(CloneMap.valueFieldsThatDiffer(h.kernel.irq, copy.irq).allSatisfy { ["descriptors", "descriptorByHWIRQ"].contains($0) })
        #expect(copy.irq.sortedDescriptors.map(\.irq) == h.kernel.irq.sortedDescriptors.map(\.irq))
        for (original, twin) in zip(h.kernel.irq.sortedDescriptors, copy.irq.sortedDescriptors) {
            // Only the copy took interrupts 0 and 1 of function 0.
            #expect(CloneMap.valueFieldsThatDiffer(original, twin) == (irqs[0...1].contains(original.irq) ? ["perCPUCount"] : []),
                    "irq \(original.irq)")
            #expect(copy.irq.descriptor(hwirq: twin.hwirq) === twin)
        }
    }

    @Test("a GICv2 + v2m host: the copy drives its own GICC on the copied bus and hands out the v2m SPIs the original would")
    func forkedGICv2mHost() throws {
        let h = try HostScenario.host(dtb: "qemu-virt/virt-smmu-gic2.dtb")
        let counter = HostScenario.Counter()
        let pcis = h.kernel.pci.devices.filter { !$0.isBridge }
        let irqs = try HostScenario.probe(h.kernel, pcis[0], vectors: 4, counter: counter)
        #expect(irqs.compactMap { h.kernel.irq.descriptor($0)?.hwirq } == [80, 81, 82, 83])

        let fork = try h.forked()
        let copy = fork.kernel
        let gicc = try #require(copy.cpuInterface as? GICv2CPUInterfaceRegisters)
        #expect(gicc !== h.kernel.cpuInterface && gicc.bus === fork.machine.bus && gicc.base == (h.kernel.cpuInterface as? GICv2CPUInterfaceRegisters)?.base)
        #expect(CloneMap.valueFieldsThatDiffer(h.kernel.irq, copy.irq) == [])
        let domain = try #require(copy.irq.spiMSIDomains.first)
        #expect(domain !== h.kernel.irq.spiMSIDomains.first && domain.ranges[0].allocated == [80, 81, 82, 83])
        for irq in irqs {
            let d = try #require(copy.irq.descriptor(irq))
            #expect(d.spiRange === domain.ranges[0] && d.spiDomain === domain)
            #expect(CloneMap.valueFieldsThatDiffer(try #require(h.kernel.irq.descriptor(irq)), d) == [])
        }

        // The copy's handlers, installed again by their owner (here the test), count apart.
        #expect(copy.irq.irqsAwaitingHandler == irqs)
        let copyCounter = HostScenario.Counter()
        for irq in irqs {
            try copy.irq.reinstallHandler(irq: irq) { irq, _ in copyCounter.values[irq, default: 0] += 1; return .handled }
        }
        _ = fork.functions[0].raise(vector: 2)
        #expect(copy.irq.handleInterrupts(cpu: 0) == 1 && h.kernel.irq.handleInterrupts(cpu: 0) == 0)
        #expect(copyCounter.values == [irqs[2]: 1] && counter.values.isEmpty)

        // The same next steps: a second function's vectors, then one of the first's freed.
        func next(_ kernel: LinuxKernel) throws -> [UInt32] {
            let pci = try #require(kernel.pci.devices.filter { !$0.isBridge }.last)
            let more = try HostScenario.probe(kernel, pci, vectors: 4, counter: HostScenario.Counter())
            try kernel.irq.freeIRQ(irqs[1])
            return more.compactMap { kernel.irq.descriptor($0)?.hwirq }
        }
        let fromCopy = try next(copy)
        #expect(fromCopy == [84, 85, 86, 87])
        #expect(h.kernel.irq.spiMSIDomains[0].ranges[0].allocated == [80, 81, 82, 83], "the copy's SPIs are not the original's")
        #expect(h.kernel.irq.descriptor(irqs[1])?.action != nil)
        #expect(try next(h.kernel) == fromCopy)
        #expect(h.kernel.irq.spiMSIDomains[0].ranges[0].allocated == domain.ranges[0].allocated)
        #expect(fork.machine.gic?.distributor.isEnabled(intid: 81) == h.machine.gic?.distributor.isEnabled(intid: 81))
    }

    @Test("a GICv4.1 host's vPEs: the copy's doorbells wait for KVM's handler, then ring the copy's vPE; VMOVP goes to each ITS alike")
    func forkedVPEs() throws {
        // CPU 1 in another cluster, so its redistributor has its own vPE table and a move
        // between the CPUs needs VMOVP.
        let suite = GICv4HostITSTests()
        let h = try suite.host(machine: try suite.twoGroupMachine())
        var rung: [(UInt16, Int)] = []
        let vm = try h.kernel.irq.allocateVCPUIRQs(vcpuCount: 2) { vpe, cpu in rung.append((vpe.id, cpu)) }
        let fork = try h.forked()
        let copy = fork.kernel
        let vmCopy = try #require(copy.irq.itsVMs.first)
        #expect(vmCopy !== vm && CloneMap.valueFieldsThatDiffer(vm, vmCopy) == [])
        for (vpe, twin) in zip(vm.vpes, vmCopy.vpes) {
            #expect(twin !== vpe && CloneMap.valueFieldsThatDiffer(vpe, twin) == [])
        }
        #expect(copy.irq.irqsAwaitingHandler == vm.vpes.map(\.irq))
        #expect(throws: Errno.EINVAL) { try copy.irq.reinstallVPEDoorbellHandlers(vm) { _, _ in } }
        var rungCopy: [(UInt16, Int)] = []
        try copy.irq.reinstallVPEDoorbellHandlers(vmCopy) { vpe, cpu in rungCopy.append((vpe.id, cpu)) }
        #expect(copy.irq.irqsAwaitingHandler.isEmpty)

        // A doorbell taken by the copy: its vPE, its KVM callback.
        let action = try #require(copy.irq.descriptor(vmCopy.vpes[1].irq)?.action)
        #expect(action.run(irq: vmCopy.vpes[1].irq, cpu: 1) == .handled)
        #expect(vmCopy.vpes[1].doorbellsTaken == 1 && vmCopy.vpes[1].pendingLast)
        #expect(vm.vpes[1].doorbellsTaken == 0 && !vm.vpes[1].pendingLast && rung.isEmpty)
        #expect(rungCopy.map(\.0) == [vmCopy.vpes[1].id] && rungCopy.map(\.1) == [1])

        // Moving a vPE: the same VMOVP (+ VSYNC) from each kernel, each to its own ITS.
        let driver = try #require(h.kernel.itsDrivers.first), driverCopy = try #require(copy.itsDrivers.first)
        #expect(try copy.irq.setVPEAffinity(vmCopy.vpes[0], cpu: 1))
        #expect(driver.issuedVirtualCommands.count + 2 == driverCopy.issuedVirtualCommands.count, "VMOVP + VSYNC on the copy only")
        #expect(vm.vpes[0].cpu == 0 && vmCopy.vpes[0].cpu == 1)
        #expect(try h.kernel.irq.setVPEAffinity(vm.vpes[0], cpu: 1))
        #expect(driver.issuedVirtualCommands == driverCopy.issuedVirtualCommands && driver.commandLog == driverCopy.commandLog)
        #expect(fork.machine.its[0].creadr == h.its.creadr && fork.machine.its[0].errorLog == h.its.errorLog)
    }
}
