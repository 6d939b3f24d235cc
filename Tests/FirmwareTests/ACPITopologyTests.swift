import Foundation
import Testing
import Bus
@testable import Firmware

/// A lookup's (target, ID) equals the expected pair (tuples are not Equatable).
func same(_ result: (target: DeviceTreeTarget, id: UInt32)?, _ target: DeviceTreeTarget, _ id: UInt32) -> Bool {
    result?.target == target && result?.id == id
}

@Suite("Topology from ACPI")
struct ACPITopologyTests {
    static func tables(_ directory: String) throws -> ACPITableSet {
        try ACPITableSet(contentsOf: ACPIFixtures.root.appendingPathComponent(directory).path)
    }

    @Test("QEMU virt: CPUs, GICv3 with one ITS, one SMMUv3, one ECAM root complex with RID maps")
    func virt() throws {
        let set = try Self.tables("qemu-virt")
        #expect(set.iort != nil && set.madt != nil && set.mcfg != nil)
        let memory = set.defaultMemory()
        #expect(memory == [MemoryRange(base: PhysicalAddress(0x4000_0000), size: 0x4000_0000)])
        let t = try Topology(acpi: set, memory: memory)
        #expect(t.cpus.map(\.mpidr) == [0, 1])
        let gic = try #require(t.gic)
        #expect(gic.architecture == .v3)
        #expect(gic.distributor == MemoryRange(base: PhysicalAddress(0x0800_0000), size: 0x1_0000))
        #expect(gic.redistributorRegions == [MemoryRange(base: PhysicalAddress(0x080A_0000), size: 0xF6_0000)])
        #expect(gic.its.map(\.region) == [MemoryRange(base: PhysicalAddress(0x0808_0000), size: 0x2_0000)])
        #expect(t.smmus.map(\.path) == ["IORT@0x48 SMMUv3"])
        #expect(t.smmus.first?.region == MemoryRange(base: PhysicalAddress(0x0905_0000), size: 0x2_0000))
        #expect(t.smmus.first?.iortNode == 1 && t.smmus.first?.dmaCoherent == true)
        #expect(t.smmus.first?.interruptNames == ["eventq", "priq", "gerror", "cmdq-sync"])
        let bridge = try #require(t.pcieHostBridges.first)
        #expect(t.pcieHostBridges.count == 1 && bridge.iortNode == 2 && bridge.domain == 0 && bridge.ranges.isEmpty)
        #expect(bridge.configSpace == MemoryRange(base: PhysicalAddress(0x40_1000_0000), size: 0x1000_0000))
        #expect(bridge.busRange == 0...255)
        let iommu = try #require(bridge.iommuMap)
        #expect(same(iommu.translate(0x08), DeviceTreeTarget.smmuV3(0), 0x08))
        #expect(same(iommu.translate(0xFF), DeviceTreeTarget.smmuV3(0), 0xFF))
        #expect(iommu.translate(0x100) == nil)
        let msi = try #require(bridge.msiMap)
        #expect(same(msi.translate(0x08), DeviceTreeTarget.its(0), 0x08))
        #expect(same(msi.translate(0x150), DeviceTreeTarget.its(0), 0x150))
        #expect(same(msi.translate(0xFFFF), DeviceTreeTarget.its(0), 0xFFFF))
        #expect(t.untranslatedITSBases.isEmpty)
        #expect(t.iort == set.iort)
    }

    @Test("IORT SMMUv1/v2 node: an Arm SMMU with its model, interrupts and node; the root complex's iommu-map names it")
    func smmuV1V2Node() throws {
        let set = try Self.tables("qemu-virt-mmu500")
        let t = try Topology(acpi: set, memory: set.defaultMemory())
        #expect(t.smmus.isEmpty)
        let mmu = try #require(t.otherIOMMUs.first)
        #expect(mmu.path == "IORT@0x48 SMMUv1/v2")
        #expect(mmu.iortModel == 3 && mmu.iortNode == 1)
        #expect(mmu.armSMMUVersion == .v2 && mmu.isArmSMMUv2)
        // Linux's platform device: NSgIrpt plus the eight context interrupts; one global.
        #expect(mmu.interruptCount == 9 && mmu.globalInterrupts == 1)
        #expect(mmu.regions == [MemoryRange(base: PhysicalAddress(0x905_0000), size: 0x1_0000)])
        let bridge = try #require(t.pcieHostBridges.first)
        #expect(same(bridge.iommuMap?.translate(0x08), DeviceTreeTarget.iommu(0), 0x08))
        #expect(same(bridge.msiMap?.translate(0x08), DeviceTreeTarget.its(0), 0x08))
        // Model 4 (CoreLink MMU-401) is ARM_SMMU_V1_64K; 6 is none Linux knows.
        var iort = try #require(set.iort)
        guard case .smmuV1V2(var node) = iort.nodes[1].kind else { Issue.record("node 1"); return }
        node.model = 4
        iort.nodes[1].kind = .smmuV1V2(node)
        var patched = set
        patched.iort = try IORT(bytes: try iort.bytes())
        #expect(try Topology(acpi: patched, memory: []).otherIOMMUs.first?.armSMMUVersion == .v1With64KGranule)
        node.model = 6
        iort.nodes[1].kind = .smmuV1V2(node)
        patched.iort = try IORT(bytes: try iort.bytes())
        #expect(try Topology(acpi: patched, memory: []).otherIOMMUs.first?.isArmSMMU == false)
    }

    @Test("pxb-pcie bypass range: absent from iommu-map, straight to the ITS in msi-map")
    func bypass() throws {
        var set = try Self.tables("qemu-virt")
        set.iort = try IORT(bytes: try ACPIFixtures.bytes("qemu-virt-bypass/iort"))
        let t = try Topology(acpi: set, memory: [])
        let bridge = try #require(t.pcieHostBridges.first)
        #expect(same(bridge.iommuMap?.translate(0x1FF), DeviceTreeTarget.smmuV3(0), 0x1FF))
        #expect(bridge.iommuMap?.translate(0x8000) == nil)
        #expect(same(bridge.msiMap?.translate(0x8000), DeviceTreeTarget.its(0), 0x8000))
        #expect(bridge.msiMap?.entries.count == 2)
    }

    @Test("SMMUv3 DeviceID mapping composed: RC → SMMU → ITS with an offset output base")
    func composedOffsets() throws {
        var set = try Self.tables("qemu-virt")
        var iort = try #require(set.iort)
        // SMMU maps StreamIDs 0x80.. to DeviceIDs 0x1000..; only RIDs 0x80-0xFF go through it.
        iort.nodes[1].mappings = [IORTIDMapping(inputBase: 0x80, count: 0x100, outputBase: 0x1000, outputNode: 0)]
        set.iort = try IORT(bytes: try iort.bytes())
        let bridge = try #require(try Topology(acpi: set, memory: []).pcieHostBridges.first)
        #expect(bridge.msiMap?.translate(0x7F) == nil)
        #expect(same(bridge.msiMap?.translate(0x80), DeviceTreeTarget.its(0), 0x1000))
        #expect(same(bridge.msiMap?.translate(0xFF), DeviceTreeTarget.its(0), 0x107F))
    }

    @Test("HiSilicon Hi161x SMMUv3: its ITSs are untranslated")
    func hisilicon() throws {
        var set = try Self.tables("qemu-virt")
        var iort = try #require(set.iort)
        guard case .smmuV3(var smmu) = iort.nodes[1].kind else { Issue.record("node 1 is not an SMMUv3"); return }
        smmu.model = IORTSMMUv3.Model.hisiliconHi161x
        iort.nodes[1].kind = .smmuV3(smmu)
        set.iort = iort
        #expect(try Topology(acpi: set, memory: []).untranslatedITSBases == [PhysicalAddress(0x0808_0000)])
    }

    @Test("errors name the table, the node offset and the field")
    func errors() throws {
        var bytes = try ACPIFixtures.bytes("qemu-virt/iort")
        bytes[0x48 + 12] = 0x00; bytes[0x48 + 13] = 0x10  // SMMUv3 mapping offset 0x1000
        #expect(throws: ACPIError.self) { try IORT(bytes: bytes) }
        do { _ = try IORT(bytes: bytes) } catch {
            #expect(error.description == "IORT: node at 0x48: ID mapping array offset 0x1000 beyond node length 0x58")
        }
        var dangling = try ACPIFixtures.bytes("qemu-virt/iort")
        dangling[0xA0 + 0x24 + 12] = 0x50  // RC mapping 0 → 0x50, inside the SMMUv3 node
        do { _ = try IORT(bytes: dangling); Issue.record("accepted a dangling reference") } catch {
            #expect(error.description == "IORT: node at 0xa0: ID mapping 0 Output Reference 0x50 is not the offset of any node")
        }
        var madt = try ACPIFixtures.bytes("qemu-virt/apic")
        madt[44 + 1] = 0  // GICD length 0
        do { _ = try MADT(bytes: madt); Issue.record("accepted a zero-length structure") } catch {
            #expect(error.description == "APIC: structure at 0x2c: Length 0 below the 2-byte structure header")
        }
        var sum = try ACPIFixtures.bytes("qemu-virt/mcfg")
        sum[9] &+= 1
        #expect(try MCFG(bytes: sum).header.checksumIsValid == false)
    }

    @Test("a directory of tables with any names, recognised by signature; non-ACPI files ignored")
    func directory() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-acpi-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(try ACPIFixtures.bytes("arm-sgi/iort")).write(to: dir.appendingPathComponent("x1"))
        try Data(try ACPIFixtures.bytes("arm-sgi/mcfg")).write(to: dir.appendingPathComponent("x2"))
        try Data(try ACPIFixtures.bytes("qemu-virt/apic")).write(to: dir.appendingPathComponent("x3"))
        try Data("DSDT but not really".utf8).write(to: dir.appendingPathComponent("DSDT"))
        let set = try ACPITableSet(contentsOf: dir.path)
        #expect(set.iort != nil && set.mcfg != nil && set.madt != nil)
        let t = try Topology(acpi: set, memory: set.defaultMemory())
        // SGI: all RIDs → SMMUv3 (no bypass); the single mapping (DeviceID mapping index 1) is skipped for RIDs.
        let bridge = try #require(t.pcieHostBridges.first)
        #expect(same(bridge.iommuMap?.translate(0x1234), DeviceTreeTarget.smmuV3(0), 0x1234))
        #expect(same(bridge.msiMap?.translate(0x1234), DeviceTreeTarget.its(0), 0x1234))
        #expect(bridge.configSpace?.base == PhysicalAddress(0x6000_0000))
        #expect(throws: ACPITableSet.LoadError.self) { try ACPITableSet(contentsOf: dir.appendingPathComponent("missing").path) }
        #expect(throws: ACPITableSet.LoadError.self) { try ACPITableSet(contentsOf: "/dev/zero") }
    }
}
