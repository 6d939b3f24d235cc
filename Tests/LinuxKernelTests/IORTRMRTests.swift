import Testing
import Bus
import Firmware
import Machine
import PCI
@testable import LinuxKernel

/// IORT reserved memory ranges (`iort_iommu_rmr_get_resv_regions`) on QEMU virt's MADT and
/// MCFG, with an IORT built in code shaped as QEMU 11 writes it for an accelerated SMMUv3:
/// ITS group, SMMUv3, root complex (RIDs 0x0-0xFF → SMMU, the rest → ITS group) and an RMR
/// node (revision 3, flags 0, one single mapping over StreamIDs 0x0-0xFF, range 0x0800_0000 +
/// 1 MiB: the guest's MSI window), table revision 5.
@Suite("IORT RMR")
struct IORTRMRTests {
    static func iort(tableRevision: UInt8 = 5, rmrFlags: UInt32 = 0,
                     ranges: [IORTMemoryRange] = [IORTMemoryRange(base: 0x0800_0000, length: 0x10_0000)]) -> IORT {
        let its = IORTNode(revision: 1, identifier: 0, kind: .itsGroup(IORTITSGroup(itsIdentifiers: [0])))
        let smmu = IORTNode(revision: 4, identifier: 1,
                            mappings: [IORTIDMapping(inputBase: 0, numberOfIDsMinusOne: 0xFFFF, outputBase: 0, outputNode: 0)],
                            kind: .smmuV3(IORTSMMUv3(baseAddress: 0x0905_0000, flags: 1, eventGSIV: 0x6A, priGSIV: 0x6B,
                                                     gerrGSIV: 0x6D, syncGSIV: 0x6C)))
        let rc = IORTNode(revision: 3, identifier: 2,
                          mappings: [IORTIDMapping(inputBase: 0, numberOfIDsMinusOne: 0xFF, outputBase: 0, outputNode: 1),
                                     IORTIDMapping(inputBase: 0x100, numberOfIDsMinusOne: 0xFEFF, outputBase: 0x100, outputNode: 0)],
                          kind: .rootComplex(IORTRootComplex(memoryProperties: IORTMemoryAccessProperties(cacheCoherency: 1, memoryFlags: 3),
                                                             pciSegment: 0, memoryAddressSizeLimit: 0x40)))
        let rmr = IORTNode(revision: 3, identifier: 3,
                           mappings: [IORTIDMapping(inputBase: 0, numberOfIDsMinusOne: 0xFF, outputBase: 0, outputNode: 1, flags: 1)],
                           kind: .rmr(IORTRMR(flags: rmrFlags, ranges: ranges)))
        return IORT(header: ACPITableHeader(signature: "IORT", revision: tableRevision), nodes: [its, smmu, rc, rmr])
    }

    /// The RMR regions 00:01.0 gets (after the SW_MSI window), with the kernel log.
    static func regions(_ iort: IORT, preserve: Bool = true) throws -> ([ReservedRegion], [String]) {
        // Through the writer and reader, as firmware would hand the table over.
        let table = try IORT(bytes: try iort.bytes())
        let host = try ACPIHost.host(iort: table) { $0.pcieHostBridges[0].preserveBootConfiguration = preserve }
        let device = try ACPIHost.device(host, RequesterID(bus: 0, device: 1, function: 0)).device
        let driver = try #require(host.kernel.iommu.driver(for: device))
        // Boot asked for the regions too (each call logs, as `iommu_get_resv_regions` does): keep this call's lines.
        host.kernel.log.removeAll()
        let all = driver.reservedRegions(for: device)
        #expect(all.first?.type == .swMSI)
        return (Array(all.dropFirst()), host.kernel.log.lines.filter { $0.hasPrefix("ACPI: IORT") })
    }

    @Test("QEMU 11's RMR with preserve_config: one DIRECT region, prot R|W|MMIO")
    func direct() throws {
        let (regions, log) = try Self.regions(Self.iort())
        #expect(regions == [ReservedRegion(start: 0x0800_0000, length: 0x10_0000, protection: [.read, .write, .mmio], type: .direct)])
        #expect(log.isEmpty)
    }

    @Test("the hand-built fixture qemu-virt-rmr reads to the same nodes as the IORT built here")
    func fixtureShape() throws {
        let fixture = try #require(try ACPIHost.tables("qemu-virt-rmr").iort)
        let built = try IORT(bytes: try Self.iort().bytes())
        #expect(fixture.header.revision == built.header.revision)
        #expect(fixture.nodes.map(\.kind) == built.nodes.map(\.kind))
        #expect(fixture.nodes.map(\.mappings) == built.nodes.map(\.mappings))
    }

    @Test("without preserve_config a PCI device gets no RMR")
    func noPreserve() throws {
        #expect(try Self.regions(Self.iort(), preserve: false).0.isEmpty)
    }

    @Test("table revision below 5 (before DEN 0049E.d): no RMR")
    func oldTable() throws {
        #expect(try Self.regions(Self.iort(tableRevision: 3)).0.isEmpty)
    }

    @Test("remapping permitted → DIRECT_RELAXABLE; access privileged → PRIV; attributes 0x05 → CACHE")
    func flags() throws {
        let relaxable = try Self.regions(Self.iort(rmrFlags: 1)).0
        #expect(relaxable.map(\.type) == [.directRelaxable])
        #expect(relaxable.first?.protection == [.read, .write, .mmio])
        let privileged = try Self.regions(Self.iort(rmrFlags: 2 | (0x05 << 2))).0
        #expect(privileged.first?.protection == [.read, .write, .priv, .cache])
        let normalNC = try Self.regions(Self.iort(rmrFlags: 0x04 << 2)).0
        #expect(normalNC.first?.protection == [.read, .write])
    }

    @Test("an unaligned range is page-aligned with a firmware-bug line; zero length is kept and reported")
    func alignment() throws {
        let (regions, log) = try Self.regions(Self.iort(ranges: [IORTMemoryRange(base: 0x0800_1800, length: 0x1000),
                                                                   IORTMemoryRange(base: 0x0900_0000, length: 0)]))
        #expect(regions == [
            ReservedRegion(start: 0x0800_1000, length: 0x2000, protection: [.read, .write, .mmio], type: .direct),
            ReservedRegion(start: 0x0900_0000, length: 0, protection: [.read, .write, .mmio], type: .direct),
        ])
        #expect(log == [
            "ACPI: IORT: [Firmware Bug]: RMR descriptor[0x9000000] with zero length, continue anyway",
            "ACPI: IORT: [Firmware Bug]: RMR descriptor[0x8001800 - 0x80027ff] not aligned to 64K, continue with [0x8001000 - 0x8002fff]",
        ])
    }

    @Test("an RMR node without ID mappings is skipped as a firmware bug")
    func noMappings() throws {
        var iort = Self.iort()
        iort.nodes[3].mappings = []
        let (regions, log) = try Self.regions(iort)
        #expect(regions.isEmpty)
        #expect(log == ["ACPI: IORT: [Firmware Bug]: Invalid ID mapping, skipping RMR node 0xec"])
    }
}
