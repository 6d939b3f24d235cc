import Bus
import Firmware
import GIC
import Machine
import PCI
import Testing
@testable import LinuxKernel

/// The host ITS driver's GICv4.1 side (drivers/irqchip/irq-gic-v3-its.c, irq-gic-v4.c) on the
/// qemu-virt-gicv4 preset: vPE tables at probe, vPEs mapped eagerly, a host LPI forwarded as a
/// vLPI (DISCARD + VMAPTI) and given back (DISCARD + MAPTI), residency and doorbells.
@Suite struct GICv4HostITSTests {
    /// The GICv4.1 host with the identity default domain (the device's MSI goes to the ITS
    /// untranslated) and `kvm-arm.vgic_v4_enable=1`.
    func host(machine: Machine? = nil) throws -> HostHarness {
        var configuration = KernelConfiguration(defaultDomain: .identity)
        configuration.vgicV4Enable = true
        if let machine { return try HostHarness.make(machine: machine, configuration: configuration) }
        return try HostHarness.make(preset: .qemuVirtGICv4, configuration: configuration)
    }

    /// The same platform with CPU 1 in another cluster (MPIDR 0x100) and CommonLPIAff = 3, so
    /// the two redistributors do not share a vPE table.
    func twoGroupMachine() throws -> Machine {
        var topology = try MachinePreset.qemuVirtGICv4.topology()
        topology.cpus[1].mpidr = 0x100
        var options = MachinePreset.qemuVirtGICv4.options
        options.gic.commonLPIAffinity = 3
        return try Machine(topology: topology, options: options, name: "two groups")
    }

    /// A forwarded MSI-X vector: vector 0 of function 0 with a counting handler, two vPEs, vPE 0
    /// resident on CPU 0.
    struct Forwarded {
        let h: HostHarness
        let irq: Int
        let vm: ITSVM
        var taken: () -> Int
    }

    func forwarded(vintid: UInt32 = 8200) throws -> Forwarded {
        let h = try host()
        let dev = try h.bind(0)
        try h.kernel.pci.allocateIRQVectors(dev, min: 4, max: 4, flags: [.msix])
        let irq = try h.kernel.pci.irqVector(dev, 0)
        final class Counter { var n = 0 }
        let counter = Counter()
        try h.kernel.irq.requestIRQ(irq, name: "ep0") { _, _ in counter.n += 1; return .handled }
        let vm = try h.kernel.irq.allocateVCPUIRQs(vcpuCount: 2) { _, _ in }
        try h.kernel.irq.makeVPEResident(vm.vpes[0], cpu: 0, group1: true)
        try h.kernel.irq.mapVLPI(irq: irq, ITSVLPIMap(vm: vm, vpe: vm.vpes[0], vintid: vintid, properties: 0xA3, doorbellEnabled: true))
        return Forwarded(h: h, irq: irq, vm: vm, taken: { counter.n })
    }

    func isPending(_ h: HostHarness, _ vpe: ITSVPE, _ vintid: UInt32) -> Bool {
        h.machine.bus.ram.readByte(vpe.pendingTable.rawValue + UInt64(vintid / 8)) & UInt8(1 << (vintid % 8)) != 0
    }

    @Test("probe: the vPE table at GITS_BASER2 and one GICR_VPROPBASER (Valid, indirect) shared by both CPUs under CommonLPIAff 0")
    func probeAllocatesVPETables() throws {
        let h = try host()
        let driver = h.kernel.itsDrivers[0]
        #expect(driver.isV4 && driver.isV41 && driver.singleVMOVP)
        let vpeTable = try #require(driver.tables.first { $0.type == GITSBaser.TableType.vPEs })
        #expect(vpeTable.index == 2 && vpeTable.entrySize == UInt64(ITS.vpeEntrySize) && vpeTable.register.bit(63))
        let state = h.kernel.irq.gicv4
        #expect(state.hasVLPIs && state.hasRVPEID && state.hasDirectLPI && state.maxVPEIDBits == 16)
        let share0 = try #require(state.vpeTables[0])
        let share1 = try #require(state.vpeTables[1])
        #expect(share0.vpropbaser.bit(63) && share0.vpropbaser.bit(55))
        // CPU 1 inherited CPU 0's table (inherit_vpe_l1_table_from_rd), without Z.
        #expect(share1.owner == 0 && share1.base == share0.base && !share1.vpropbaser.bit(52))
        #expect(state.vpeTableMask(1) == [0, 1])
        let vprop = try #require(h.kernel.irq.redistributors[1].base.adding(Redistributor.VirtualOffset.vpropbaser))
        #expect(try h.kernel.mmio.read64(vprop) & GICRVPropbaser.writableMask == share1.vpropbaser & GICRVPropbaser.writableMask)
    }

    @Test("redistributors in different CommonLPIAff groups get their own vPE tables")
    func separateGroupsSeparateTables() throws {
        let h = try host(machine: try twoGroupMachine())
        let state = h.kernel.irq.gicv4
        #expect(state.vpeTables[0]?.owner == 0 && state.vpeTables[1]?.owner == 1)
        #expect(state.vpeTables[0]?.base != state.vpeTables[1]?.base)
        #expect(state.vpeTableMask(1) == [1])
    }

    @Test("its_alloc_vcpu_irqs: each vPE mapped eagerly (VMAPP + VSYNC, VINVALL + VSYNC) and its doorbell enabled (INVDB)")
    func vpesMappedEagerly() throws {
        let h = try host()
        let driver = h.kernel.itsDrivers[0]
        let before = driver.commandLog.count
        let vm = try h.kernel.irq.allocateVCPUIRQs(vcpuCount: 2) { _, _ in }
        #expect(vm.vpes.map(\.id) == [0, 1])
        #expect(vm.vpes.map(\.doorbellLPI) == [vm.doorbellBase, vm.doorbellBase + 1])
        let issued = Array(driver.commandLog.dropFirst(before))
        #expect(issued.filter { $0.hasPrefix("VMAPP vPEID 0 ") }.count == 1)
        #expect(issued.first?.hasPrefix("VMAPP vPEID 0 RDbase 0x0 V=1") == true)
        #expect(issued.contains { $0.hasPrefix("VMAPP vPEID 1 ") && $0.contains("Alloc=1 PTZ=0 DefaultDB \(vm.doorbellBase + 1)") })
        #expect(issued.filter { $0 == "VINVALL vPEID 1" }.count == 1)
        #expect(issued.filter { $0 == "INVDB vPEID 0" }.count == 1)
        // The ITS holds both vPEs in its vPE table; the redistributor was told.
        #expect(h.machine.gic?.redistributors[0].virtualState.mapped[1]?.defaultDoorbell == vm.doorbellBase + 1)
        // The doorbells' configuration bytes are enabled in the host's LPI property table.
        let byte = h.kernel.irq.propertyTable.rawValue + UInt64(vm.doorbellBase - 8192)
        #expect(h.machine.bus.ram.readByte(byte) & 1 == 1)
    }

    @Test("its_vlpi_map: DISCARD + SYNC then VMAPTI + VSYNC; the device's MSI sets the vLPI in the resident vPE's VPT and the host takes nothing")
    func mappedVLPIGoesToVPT() throws {
        let f = try forwarded()
        let driver = f.h.kernel.itsDrivers[0]
        let tail = Array(driver.commandLog.suffix(4))
        #expect(tail.count == 4)
        #expect(tail[0].hasPrefix("DISCARD DeviceID 0x8 EventID 0") && tail[1].hasPrefix("SYNC"))
        #expect(tail[2] == "VMAPTI DeviceID 0x8 EventID 0x0 vPEID 0 vINTID 8200 Dbell 1023" && tail[3] == "VSYNC vPEID 0")
        // The vLPI's configuration byte went to the VM's vprop table.
        #expect(f.h.machine.bus.ram.readByte(f.vm.propertyTable.rawValue + 8) == 0xA3)
        #expect(f.h.functions[0].raise(vector: 0).result?.status == .completed)
        #expect(isPending(f.h, f.vm.vpes[0], 8200))
        #expect(f.h.kernel.irq.handleInterrupts(cpu: 0) == 0 && f.h.kernel.irq.handleInterrupts(cpu: 1) == 0)
        #expect(f.taken() == 0)
        #expect(try #require(f.h.kernel.irq.descriptor(f.irq)).vlpiMap?.vintid == 8200)
    }

    @Test("a non-resident vPE asked for a doorbell: the MSI rings it, the host takes it, the vLPI stays in the VPT")
    func nonResidentRingsDoorbell() throws {
        let f = try forwarded()
        let vpe = f.vm.vpes[0]
        try f.h.kernel.irq.makeVPENonResident(vpe, doorbell: true)
        #expect(!vpe.resident && !vpe.pendingLast)
        #expect(f.h.functions[0].raise(vector: 0).result?.status == .completed)
        #expect(isPending(f.h, vpe, 8200))
        #expect(f.h.kernel.irq.handleInterrupts(cpu: 0) == 1)
        #expect(vpe.doorbellsTaken == 1 && vpe.pendingLast && f.taken() == 0)
        // Only once: the doorbell request is consumed.
        #expect(f.h.functions[0].raise(vector: 0).result?.status == .completed)
        #expect(f.h.kernel.irq.handleInterrupts(cpu: 0) == 0)
        // Back on the CPU, the vLPI is still there for the vCPU.
        try f.h.kernel.irq.makeVPEResident(vpe, cpu: 0, group1: true)
        #expect(isPending(f.h, vpe, 8200))
        // Without a doorbell request (a preempted vCPU) nothing rings.
        try f.h.kernel.irq.makeVPENonResident(vpe, doorbell: false)
        #expect(vpe.pendingLast)
        #expect(f.h.functions[0].raise(vector: 0).result?.status == .completed)
        #expect(f.h.kernel.irq.handleInterrupts(cpu: 0) == 0 && vpe.doorbellsTaken == 1)
    }

    @Test("its_vlpi_unmap: DISCARD + SYNC, MAPTI + SYNC, and the host LPI path works again")
    func unmapRestoresHostLPI() throws {
        let f = try forwarded()
        try f.h.kernel.irq.unmapVLPI(irq: f.irq)
        let tail = Array(f.h.kernel.itsDrivers[0].commandLog.suffix(4))
        #expect(tail[0].hasPrefix("DISCARD DeviceID 0x8 EventID 0") && tail[1].hasPrefix("SYNC"))
        #expect(tail[2].hasPrefix("MAPTI DeviceID 0x8 EventID 0") && tail[3].hasPrefix("SYNC"))
        #expect(try #require(f.h.kernel.irq.descriptor(f.irq)).vlpiMap == nil)
        #expect(throws: Errno.EINVAL) { try f.h.kernel.irq.unmapVLPI(irq: f.irq) }
        #expect(f.h.functions[0].raise(vector: 0).result?.status == .completed)
        let cpu = try #require(f.h.kernel.irq.descriptor(f.irq)).effectiveCPU
        #expect(f.h.kernel.irq.handleInterrupts(cpu: cpu) == 1)
        #expect(f.taken() == 1 && !isPending(f.h, f.vm.vpes[0], 8200))
    }

    @Test("a second map of a forwarded LPI moves it with VMOVI; another VM's map is EINVAL")
    func remapIsVMOVI() throws {
        let f = try forwarded()
        try f.h.kernel.irq.mapVLPI(irq: f.irq, ITSVLPIMap(vm: f.vm, vpe: f.vm.vpes[1], vintid: 8200, properties: 0xA3, doorbellEnabled: true))
        let tail = Array(f.h.kernel.itsDrivers[0].commandLog.suffix(2))
        #expect(tail == ["VMOVI DeviceID 0x8 EventID 0x0 vPEID 1 D=1 Dbell 1023", "VSYNC vPEID 1"])
        let other = try f.h.kernel.irq.allocateVCPUIRQs(vcpuCount: 1) { _, _ in }
        #expect(throws: Errno.EINVAL) {
            try f.h.kernel.irq.mapVLPI(irq: f.irq, ITSVLPIMap(vm: other, vpe: other.vpes[0], vintid: 8200, properties: 0xA3, doorbellEnabled: true))
        }
    }

    @Test("its_vpe_set_affinity: VMOVP between redistributors with separate vPE tables, none when they share one")
    func vmovpOnlyBetweenGroups() throws {
        let shared = try host()
        let vmShared = try shared.kernel.irq.allocateVCPUIRQs(vcpuCount: 1) { _, _ in }
        #expect(try shared.kernel.irq.setVPEAffinity(vmShared.vpes[0], cpu: 1) == false)
        #expect(!shared.kernel.itsDrivers[0].commandLog.contains { $0.hasPrefix("VMOVP") })

        let h = try host(machine: try twoGroupMachine())
        let vm = try h.kernel.irq.allocateVCPUIRQs(vcpuCount: 1) { _, _ in }
        #expect(try h.kernel.irq.setVPEAffinity(vm.vpes[0], cpu: 1))
        let tail = Array(h.kernel.itsDrivers[0].commandLog.suffix(2))
        #expect(tail == ["VMOVP vPEID 0 RDbase 0x1 Seq 0 ITSList 0 DB=1 DefaultDB \(vm.doorbellBase)", "VSYNC vPEID 0"])
        #expect(h.machine.gic?.redistributors[1].virtualState.mapped[0] != nil)
        #expect(h.machine.gic?.redistributors[0].virtualState.mapped[0] == nil)
        #expect(try h.kernel.irq.setVPEAffinity(vm.vpes[0], cpu: 1) == false)
    }
}
