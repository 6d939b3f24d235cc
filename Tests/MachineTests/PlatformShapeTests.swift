import Testing
import Bus
import Firmware
import GIC
import PCI
import SMMUv3
@testable import Machine
@testable import Testbed

/// Machines built from other platform shapes: two ITSs with RID ranges split between them, a
/// device behind a PCIe-to-PCI bridge, a platform without an SMMU, real board DTBs.
@Suite("Platform shapes")
struct PlatformShapeTests {
    @Test("qemu-virt-two-its: bus 0 reaches ITS 0 and bus 1 reaches ITS 1, each with its msi-map DeviceID")
    func twoITSs() throws {
        let machine = try MachinePreset.qemuVirtTwoITS.makeMachine()
        #expect(machine.its.count == 2)
        #expect(machine.its.map(\.base) == [PhysicalAddress(0x0808_0000), PhysicalAddress(0x0910_0000)])
        let bm = try BareMetal(machine: machine)
        try bm.enableLPIs()
        try bm.enableITS(0)
        try bm.enableITS(1)
        try bm.resetSMMU()
        let near = try bm.addMSIXEndpoint(requesterID: RequesterID(bus: 0, device: 1, function: 0), vectors: 2, barAddress: 0x1000_0000)
        let far = try bm.addMSIXEndpoint(requesterID: RequesterID(bus: 1, device: 0, function: 0), vectors: 2, barAddress: 0x1001_0000)
        // msi-map <0x0 &its0 0x0 0x100>, <0x100 &its1 0x100 0xff00>: RID 0x0008 → DeviceID 0x8 on
        // ITS 0; RID 0x0100 → DeviceID 0x100 + (0x100 − 0x100) = 0x100 on ITS 1.
        let rc = machine.rootComplexes[0]
        #expect(rc.route(for: near).deviceID == DeviceID(0x8))
        #expect(rc.route(for: far).deviceID == DeviceID(0x100))
        for function in [near, far] { try bm.installSTE(.bypass, streamID: try #require(rc.route(for: function).streamID)) }
        try bm.mapDevice(DeviceID(0x8), events: 2, firstINTID: 8192, its: 0)
        try bm.mapDevice(DeviceID(0x100), events: 2, firstINTID: 8300, its: 1)
        try bm.writeMSIXEntry(near, vector: 1, address: machine.its[0].translaterAddress.rawValue, data: 1)
        try bm.writeMSIXEntry(far, vector: 1, address: machine.its[1].translaterAddress.rawValue, data: 1)
        #expect(near.raise(vector: 1).result?.status == .completed)
        #expect(far.raise(vector: 1).result?.status == .completed)
        // Both LPIs have priority 0xA0: the second is taken only after the first's EOI drops the
        // running priority (an equal priority does not preempt, GICv3 §4.8).
        #expect(machine.gic?.acknowledge(cpu: 0) == 8193)
        #expect(machine.gic?.acknowledge(cpu: 0) == 1023)
        machine.gic?.endOfInterrupt(cpu: 0, intid: 8193)
        #expect(machine.gic?.acknowledge(cpu: 0) == 8301)
        machine.gic?.endOfInterrupt(cpu: 0, intid: 8301)
        // The far device aimed at the wrong ITS: ITS 0 has no DeviceID 0x100, so the write is
        // dropped there and counted, and nothing becomes pending.
        try bm.writeMSIXEntry(far, vector: 0, address: machine.its[0].translaterAddress.rawValue, data: 0)
        let droppedBefore = machine.its[0].counters.drops.reduce(0, +)
        #expect(far.raise(vector: 0).result?.status == .completed, "a posted write completes even if the ITS drops it")
        #expect(machine.its[0].counters.drops.reduce(0, +) == droppedBefore + 1)
        #expect(machine.gic?.acknowledge(cpu: 0) == 1023)
    }

    @Test("a function behind a PCIe-to-PCI bridge signals with the alias DeviceID (secondary bus, devfn 0)")
    func bridgeAlias() throws {
        let machine = try MachinePreset.qemuVirt.makeMachine()
        let bm = try BareMetal(machine: machine)
        try bm.enableLPIs()
        try bm.enableITS()
        try bm.resetSMMU()
        let rc = machine.rootComplexes[0]
        // Linux pci_for_each_dma_alias, PCI_EXP_TYPE_PCI_BRIDGE: the alias is
        // PCI_DEVID(bridge->subordinate->number, 0) = (2 << 8) | 0 = 0x0200.
        let bridge = try PCIToPCIBridge(name: "pcie-to-pci", requesterID: RequesterID(bus: 0, device: 2, function: 0), kind: .pcieToPCI,
                                        vendorID: 0x1B36, deviceID: 0x000E, secondaryBus: 2, subordinateBus: 2)
        try rc.attach(bridge)
        try bm.configWrite(bridge.requesterID, offset: 0x04, size: 2, value: 0x0006)   // bridge MEM | MASTER
        let behind = try PCIFunction(name: "legacy", requesterID: RequesterID(bus: 2, device: 3, function: 0), vendorID: 0x8086, deviceID: 0x100E,
                                     bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)], msix: MSIXConfiguration(tableSize: 1))
        try rc.attach(behind, behind: bridge)
        try bm.configWrite(behind.requesterID, offset: 0x10, size: 4, value: 0x1000_0000)
        try bm.configWrite(behind.requesterID, offset: 0x04, size: 2, value: 0x0006)
        try bm.configWrite(behind.requesterID, offset: try #require(behind.msix).controlOffset, size: 2, value: UInt32(MSIXCapability.controlEnable))
        #expect(rc.route(for: behind).deviceID == DeviceID(0x0200))
        #expect(rc.route(for: behind).streamID == StreamID(0x0200))
        try bm.installSTE(.bypass, streamID: StreamID(0x0200))
        try bm.mapDevice(DeviceID(0x0200), events: 1, firstINTID: 8400)
        try bm.writeMSIXEntry(behind, vector: 0, address: 0x0809_0040, data: 0)
        #expect(behind.raise(vector: 0).result?.status == .completed)
        #expect(machine.gic?.acknowledge(cpu: 0) == 8400)
    }

    @Test("isolation: a CPU store to GITS_TRANSLATER and another device's DeviceID raise nothing")
    func isolation() throws {
        let machine = try MachinePreset.qemuVirt.makeMachine()
        let bm = try BareMetal(machine: machine)
        try bm.enableLPIs()
        try bm.enableITS()
        try bm.mapDevice(DeviceID(0x8), events: 4, firstINTID: 8192)
        // A CPU store carries no DeviceID (GICv3 §5.2: the DeviceID is the bus sideband of the
        // requesting device), so EventID 0 of DeviceID 8 cannot be forged from a CPU.
        try machine.bus.write(PhysicalAddress(0x0809_0040), size: 4, value: 0, requester: .cpu(0))
        #expect(machine.gic?.acknowledge(cpu: 0) == 1023)
        // A device whose msi-map DeviceID is 0x10 cannot raise DeviceID 8's LPIs with the same EventID.
        try machine.bus.write(PhysicalAddress(0x0809_0040), size: 4, value: 0, requester: .device(DeviceID(0x10)))
        #expect(machine.gic?.acknowledge(cpu: 0) == 1023)
        // DeviceID 8 itself does.
        try machine.bus.write(PhysicalAddress(0x0809_0040), size: 4, value: 0, requester: .device(DeviceID(0x8)))
        #expect(machine.gic?.acknowledge(cpu: 0) == 8192)
        #expect(machine.its[0].counters.drops.reduce(0, +) == 2)
    }

    @Test("QEMU dumps build machines with what their device trees say", arguments: [
        ("virt-smmu", 1, 1, 1), ("virt-noiommu", 1, 0, 1), ("virt-smmu-itsoff", 0, 1, 1),
        ("virt-noiommu-itsoff", 0, 0, 1), ("virt-smmu-gic2", 0, 1, 1), ("virt-smmu-smp8", 1, 1, 1),
        ("virt-smmu-highmem-off", 1, 1, 1), ("virt-smmu-default-bypass", 1, 1, 1),
    ])
    func qemuDumps(name: String, itsCount: Int, smmuCount: Int, rootComplexes: Int) throws {
        let bytes = try Fixture.bytes("qemu-virt/\(name).dtb")
        let machine = try Machine(topology: try Topology(dtb: bytes), name: name)
        #expect(machine.its.count == itsCount, "\(name)")
        #expect(machine.smmus.count == smmuCount, "\(name)")
        #expect(machine.rootComplexes.count == rootComplexes, "\(name)")
        if name == "virt-smmu-gic2" {
            // A GICv2 (the GICv2 register layout) with QEMU's v2m frame: SPIs 80…143.
            #expect(machine.gic?.configuration.version == 2)
            #expect(machine.gic?.v2mFrames.map(\.typer) == [80 << 16 | 64])
            #expect(!machine.notModelled.contains { $0.contains("GICv2m") })
        }
        if name == "virt-smmu-smp8" { #expect(machine.gic?.redistributors.count == 8) }
    }

    @Test("a default-bypass dump has an SMMU but no iommu-map, so PCI DMA is not translated")
    func defaultBypass() throws {
        let machine = try Machine(topology: try Topology(dtb: try Fixture.bytes("qemu-virt/virt-smmu-default-bypass.dtb")))
        #expect(machine.translatedPorts.allSatisfy { $0 == nil })
        #expect(machine.rootComplexes[0].iommuMap == nil)
    }
}

enum Fixture {
    static func bytes(_ relative: String) throws -> [UInt8] {
        let tests = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false).dropLast(2).joined(separator: "/")
        return try DeviceTreeFile.read(path: tests + "/Fixtures/" + relative)
    }
    enum FixtureError: Error { case missing(String) }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Machine lifetime")
struct MachineLifetimeTests {
    @Test("a machine and its bus are freed with their last reference (no device holds the bus strongly)")
    func freed() throws {
        weak var weakMachine: Machine?
        weak var weakBus: SystemBus?
        weak var weakSMMU: SMMUv3?
        do {
            let machine = try MachinePreset.qemuVirt.makeMachine()
            let bm = try BareMetal(machine: machine)
            try bm.enableLPIs()
            try bm.enableITS()
            try bm.resetSMMU()
            weakMachine = machine
            weakBus = machine.bus
            weakSMMU = machine.smmus.first
        }
        #expect(weakMachine == nil)
        #expect(weakBus == nil)
        #expect(weakSMMU == nil)
    }
}

@Suite("Board device trees")
struct BoardMachineTests {
    @Test("hip07-d05: 64 redistributors over 4 regions at stride 0x4_0000, 8 ITSs, and an MSI through msi-map to ITS 2")
    func hip07() throws {
        let machine = try Machine(topology: try Topology(dtb: try Fixture.bytes("boards/hisilicon_hip07-d05.dtb")), name: "hip07-d05")
        let gic = try #require(machine.gic)
        // The DT gives 4 regions of 0x40_0000 with redistributor-stride 0x4_0000: 16 frames each.
        #expect(gic.redistributors.count == 64)
        #expect(gic.redistributors[15].rdBase == PhysicalAddress(0x4d10_0000 + 15 * 0x4_0000))
        #expect(gic.redistributors[16].rdBase == PhysicalAddress(0x6d10_0000))
        #expect(gic.redistributors.filter(\.isLast).map(\.processorNumber) == [15, 31, 47, 63])
        #expect(machine.its.count == 8)
        #expect(machine.smmus.count == 4, "smmu@a0040000 is status = \"disabled\"")
        #expect(machine.rootComplexes.count == 1)
        let bm = try BareMetal(machine: machine, tableMemory: 0x0100_0000)
        try bm.enableLPIs()
        try bm.enableITS(2)
        // msi-map mask 0xffff: <0xf800 its[2] 0xf800 0x800>; RID f9:01.0 = 0xf908 → DeviceID 0xf908.
        let rid = RequesterID(bus: 0xF9, device: 1, function: 0)
        let rc = machine.rootComplexes[0]
        let function = try bm.addMSIXEndpoint(requesterID: rid, vectors: 1, barAddress: rc.memoryWindowBase)
        #expect(rc.route(for: function).deviceID == DeviceID(0xF908))
        #expect(rc.route(for: function).streamID == nil, "the host bridge has no iommu-map")
        try bm.mapDevice(DeviceID(0xF908), events: 1, firstINTID: 8192, its: 2)
        try bm.writeMSIXEntry(function, vector: 0, address: machine.its[2].translaterAddress.rawValue, data: 0)
        #expect(function.raise(vector: 0).result?.status == .completed)
        #expect(gic.acknowledge(cpu: 0) == 8192)
    }
}

@Suite("LPI selection across the pending table")
struct LPISelectionTests {
    @Test("LPIs pending far apart in the table are taken by priority, then 1023, and again after they are re-raised")
    func farApart() throws {
        let machine = try MachinePreset.qemuVirt.makeMachine()
        let bm = try BareMetal(machine: machine)
        try bm.enableLPIs()
        try bm.enableITS()
        // Three devices, one event each, mapped to LPIs in distant 64-bit words of the pending
        // table (INTID − 8192 = 0, 3808, 51808), with priorities 0xA0, 0x90, 0x80.
        let lpis: [(device: UInt32, intid: UInt32, priority: UInt8)] = [(1, 8192, 0xA0), (2, 12000, 0x90), (3, 60000, 0x80)]
        for lpi in lpis {
            try bm.mapDevice(DeviceID(lpi.device), events: 1, firstINTID: lpi.intid)
            try bm.setLPIConfiguration(lpi.intid, priority: lpi.priority, enabled: true)
            try bm.issue([.inv(device: DeviceID(lpi.device), event: EventID(0))])
        }
        let gic = try #require(machine.gic)
        for _ in 0..<2 {
            for lpi in lpis {
                try machine.bus.write(PhysicalAddress(0x0809_0040), size: 4, value: 0, requester: .device(DeviceID(lpi.device)))
            }
            // Lowest priority value first (GICv3 §4.8); each EOI drops the running priority.
            for expected in [60000, 12000, 8192] as [UInt32] {
                let intid = gic.acknowledge(cpu: 0)
                #expect(intid == expected)
                gic.endOfInterrupt(cpu: 0, intid: intid)
            }
            #expect(gic.acknowledge(cpu: 0) == 1023)
        }
    }
}
