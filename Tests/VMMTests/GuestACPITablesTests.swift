import Foundation
import Testing
import Bus
import Firmware
@testable import VMM

/// The guest's IORT, MADT and MCFG against the QEMU virt fixtures (Tests/Fixtures/acpi): the
/// iasl-compiled ones field for field (iasl writes its own creator into the header and forced
/// the IORT node identifiers to 0), the hand-built RMR one byte for byte.
@Suite("Guest ACPI tables")
struct GuestACPITablesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("acpi")

    static func fixture(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: root.appendingPathComponent(name)))
    }

    /// `iommu=smmuv3` (the machine-wide vSMMU) over the root bus, no RMR: QEMU's plain virt.
    static let plain = GuestACPITables(ramSize: 0x100_0000, cpuCount: 2, layout: .virt, vSMMU: true, accelerated: false,
                                       rootPortBuses: [], reservedMSIWindow: nil)
    /// `-device arm-smmuv3,primary-bus=pcie.0,accel=on` with QEMU 11's RMR.
    static let accelerated = GuestACPITables(ramSize: 0x100_0000, cpuCount: 2, layout: .virt, vSMMU: true, accelerated: true,
                                             rootPortBuses: [], reservedMSIWindow: MSIPlan.hostSWMSIWindow)

    /// `mine` with iasl's header creator and the identifiers iasl zeroed, so it can equal an
    /// iasl-compiled fixture read back.
    static func asIASLWroteIt(_ mine: IORT, like fixture: IORT) throws -> IORT {
        var table = try IORT(bytes: mine.bytes())
        table.header.creatorID = fixture.header.creatorID
        table.header.creatorRevision = fixture.header.creatorRevision
        table.header.checksum = fixture.header.checksum
        for index in table.nodes.indices { table.nodes[index].identifier = 0 }
        return table
    }

    @Test("plain QEMU virt: the IORT equals qemu-virt/iort.dat field for field (ITS group, SMMUv3 at 0x0905_0000 with COHACC and GSIVs 106/107/109/108, root complex RIDs 0–0xFF → SMMU, 0x100–0xFFFF → ITS), identifiers aside; QEMU's are 0, 1, 2; table revision 5")
    func plainIORT() throws {
        let fixture = try IORT(bytes: Self.fixture("qemu-virt/iort.dat"))
        let mine = Self.plain.iort
        #expect(try Self.asIASLWroteIt(mine, like: fixture) == fixture)
        #expect(mine.nodes.map(\.identifier) == [0, 1, 2])
        #expect(mine.header.revision == 5)
        #expect(try mine.bytes().count == fixture.header.length.asInt)
    }

    @Test("a root port on bus 1 and a pxb-pcie at bus 0x80 with bypass_iommu: RIDs 0–0x1FF → SMMU, the rest (bypassed bridge included) → ITS, as qemu-virt-bypass/iort.dat")
    func bypassIORT() throws {
        let fixture = try IORT(bytes: Self.fixture("qemu-virt-bypass/iort.dat"))
        let tables = GuestACPITables(ramSize: 0x100_0000, cpuCount: 2, layout: .virt, vSMMU: true, accelerated: false, rootPortBuses: [1],
                                     expanderBridges: [.init(buses: 0x80...0x80, bypassIOMMU: true)], reservedMSIWindow: nil)
        #expect(try Self.asIASLWroteIt(tables.iort, like: fixture) == fixture)
    }

    @Test("a non-bypassed pxb-pcie joins the machine-wide vSMMU's ranges (populate_smmuv3_legacy_dev) but not an arm-smmuv3 device's on pcie.0; the ITS ranges are the gaps")
    func expanderRanges() throws {
        let pxb = GuestACPITables.ExpanderBridge(buses: 0x80...0x81, bypassIOMMU: false)
        let legacy = GuestACPITables(ramSize: 0x100_0000, cpuCount: 1, layout: .virt, vSMMU: true, accelerated: false, rootPortBuses: [],
                                     expanderBridges: [pxb], reservedMSIWindow: nil)
        #expect(legacy.smmus.first?.requesterIDs == [0..<0x100, 0x8000..<0x8200])
        #expect(GuestACPITables.itsRanges(legacy.smmus) == [0x100..<0x8000, 0x8200..<0x1_0000])
        let device = GuestACPITables(ramSize: 0x100_0000, cpuCount: 1, layout: .virt, vSMMU: true, accelerated: true, rootPortBuses: [],
                                     expanderBridges: [pxb], reservedMSIWindow: nil)
        #expect(device.smmus.first?.requesterIDs == [0..<0x100])
    }

    @Test("accelerated vSMMU: the IORT is qemu-virt-rmr/iort.dat byte for byte (RMR node 3, rev 3, flags 0, one single mapping of RIDs 0–0xFF to the SMMU, range 0x0800_0000 + 1 MiB)")
    func acceleratedIORT() throws {
        let fixture = try Self.fixture("qemu-virt-rmr/iort.dat")
        let mine = try Self.accelerated.iort.bytes()
        #expect(mine == fixture)
        let node = try #require(Self.accelerated.iort.nodes.last)
        guard case .rmr(let rmr) = node.kind else { Issue.record("last node is \(node.typeName)"); return }
        #expect(node.revision == 3 && node.identifier == 3)
        #expect(rmr.flags == 0)
        #expect(rmr.ranges == [IORTMemoryRange(base: 0x0800_0000, length: 0x10_0000)])
        #expect(node.mappings == [IORTIDMapping(inputBase: 0, count: 0x100, outputBase: 0, outputNode: 1, singleMapping: true)])
    }

    @Test("no vSMMU: ITS group and root complex only, all RIDs → ITS; accel without a window: no RMR node; ats=on sets the root complex's ATS attribute")
    func otherShapes() throws {
        let none = GuestACPITables(ramSize: 0x100_0000, cpuCount: 1, layout: .virt, vSMMU: false, accelerated: false,
                                   rootPortBuses: [], reservedMSIWindow: MSIPlan.hostSWMSIWindow).iort
        #expect(none.nodes.map(\.type) == [0, 2])
        #expect(none.nodes[1].mappings == [IORTIDMapping(inputBase: 0, count: 0x1_0000, outputBase: 0, outputNode: 0)])
        let noWindow = GuestACPITables(ramSize: 0x100_0000, cpuCount: 1, layout: .virt, vSMMU: true, accelerated: true,
                                       rootPortBuses: [3], reservedMSIWindow: nil).iort
        #expect(noWindow.nodes.map(\.type) == [0, 4, 2])
        #expect(noWindow.nodes[2].mappings.map(\.inputRange) == [0...0x3FF, 0x400...0xFFFF])
        var ats = Self.accelerated
        ats.smmus[0].ats = true
        guard case .rootComplex(let rc) = ats.iort.nodes[2].kind else { Issue.record("node 2 is not the root complex"); return }
        #expect(rc.atsAttribute == 1)
    }

    @Test("MADT: qemu-virt/apic.dat field for field (GICD v3, GICC per vCPU with MPIDR and PMU GSIV 23, GICR 0x080A_0000 + 0xF6_0000, ITS 0); MCFG: qemu-virt/mcfg.dat")
    func madtAndMCFG() throws {
        var madt = try MADT(bytes: Self.plain.madt.bytes())
        let madtFixture = try MADT(bytes: Self.fixture("qemu-virt/apic.dat"))
        madt.header.creatorID = madtFixture.header.creatorID
        madt.header.creatorRevision = madtFixture.header.creatorRevision
        madt.header.checksum = madtFixture.header.checksum
        #expect(madt == madtFixture)
        var mcfg = try MCFG(bytes: Self.plain.mcfg.bytes())
        let mcfgFixture = try MCFG(bytes: Self.fixture("qemu-virt/mcfg.dat"))
        mcfg.header.creatorID = mcfgFixture.header.creatorID
        mcfg.header.creatorRevision = mcfgFixture.header.creatorRevision
        mcfg.header.checksum = mcfgFixture.header.checksum
        #expect(mcfg == mcfgFixture)
        #expect(GuestACPITables.mpidr(17) == 0x101)
    }

    @Test("the guest topology from the accelerated tables: RAM from the layout, the IORT with its RMR, SMMU and ITS where the device tree puts them, identity msi-map through the SMMU, and the host bridge preserving the boot configuration (only with accel)")
    func topology() throws {
        let t = try Self.accelerated.topology()
        #expect(t.memory == [MemoryRange(base: PhysicalAddress(0x4000_0000), size: 0x100_0000)])
        #expect(t.cpus.map(\.mpidr) == [0, 1])
        #expect(t.iort == Self.accelerated.iort.reread)
        #expect(t.iort?.nodes.contains { if case .rmr = $0.kind { true } else { false } } == true)
        #expect(t.smmus.map(\.region) == [MemoryRange(base: PhysicalAddress(0x0905_0000), size: 0x2_0000)])
        #expect(t.gic?.its.first?.translaterAddress == PhysicalAddress(GuestMemoryMap.virt.msiGPA))
        let bridge = try #require(t.pcieHostBridges.first)
        #expect(bridge.preserveBootConfiguration)
        #expect(bridge.configSpace == MemoryRange(base: PhysicalAddress(0x40_1000_0000), size: 0x1000_0000))
        #expect(t.reservedMemory.isEmpty, "the RMR is in the IORT, not a device-tree stand-in")
        #expect(try Self.plain.topology().pcieHostBridges.first?.preserveBootConfiguration == false)
    }
}

extension IORT {
    /// The table as a reader sees it after writing (layout offsets and lengths filled in).
    var reread: IORT? { try? IORT(bytes: bytes()) }
}

extension UInt32 {
    var asInt: Int { Int(self) }
}
