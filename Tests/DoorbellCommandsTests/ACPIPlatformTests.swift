import Foundation
import Testing
import Testbed

/// `--platform` with ACPI tables, as a user passes a copy of `/sys/firmware/acpi/tables` or a
/// single table: `topology` prints every table the way `iasl -d` does, field for field against
/// the committed disassembly (ACPICA's, not ours), and the MSI commands run on the machine the
/// tables describe.
@Suite("ACPI platforms on the command line")
struct ACPIPlatformTests {
    static var acpi: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/acpi")
    }

    typealias Row = IASLListing.Row

    /// Rows of `iasl -d` text or of `doorbell topology`'s table part (`IASLListing`).
    static func rows(_ text: String) -> [Row] { IASLListing.rows(text) }

    /// How a table's printed rows must match iasl's.
    enum Match { case exact, prefix, subset }

    /// Each fixture directory and its tables. `prefix`: Debian's iasl 20200925 stops at the RMR
    /// node, which it predates, so only the rows before it are checked. `subset`: iasl's MADT
    /// template also has x86 structures (local APIC, I/O APIC…), which Doorbell keeps as bytes
    /// and does not print; every row it prints must be one of iasl's.
    static let fixtures: [(directory: String, tables: [(String, Match)])] = [
        ("qemu-virt", [("iort", .exact), ("apic", .exact), ("mcfg", .exact)]),
        ("qemu-virt-bypass", [("iort", .exact)]),
        ("qemu-virt-rmr", [("iort", .prefix)]),
        ("arm-sgi", [("iort", .exact), ("mcfg", .exact)]),
        ("qemu-virt-mmu500", [("iort", .exact), ("apic", .exact), ("mcfg", .exact)]),
        ("templates", [("iort", .exact), ("apic", .subset), ("mcfg", .exact)]),
    ]

    @Test("topology --platform DIR prints each table as iasl -d does", arguments: fixtures.map(\.directory))
    func topologyMatchesIASL(directory: String) throws {
        let fixture = try #require(Self.fixtures.first { $0.directory == directory })
        let run = try BinaryTests.run(["topology", "--platform", Self.acpi.appendingPathComponent(directory).path])
        // The template's zero addresses collide (SMMU and ECAM at 0): the tables still print.
        #expect(run.status == 0 || directory == "templates", "\(run.stderr)")
        let printed = Self.rows(run.stdout)
        // The command prints IORT, APIC, MCFG in that order: split them at each Signature row.
        var perTable: [String: [Row]] = [:]
        var current = ""
        for row in printed {
            if row.label == "Signature" { current = row.value.trimmingCharacters(in: CharacterSet(charactersIn: "\"")).lowercased() }
            perTable[current, default: []].append(row)
        }
        for (table, match) in fixture.tables {
            let oracleText = try String(contentsOf: Self.acpi.appendingPathComponent("\(directory)/\(table).dsl"), encoding: .utf8)
            let oracle = Self.rows(oracleText)
            let mine = perTable[table] ?? []
            #expect(oracle.count > 8, "\(directory)/\(table): oracle parsed to \(oracle.count) rows")
            if match == .subset {
                #expect(mine.count > 8)
                for row in mine { #expect(oracle.contains(row), "\(directory)/\(table): printed row \(row) is not in iasl's disassembly") }
                continue
            }
            if match == .exact { #expect(mine.count == oracle.count, "\(directory)/\(table): \(mine.count) rows printed, iasl has \(oracle.count)") }
            for (index, row) in oracle.enumerated() {
                guard index < mine.count else { Issue.record("\(directory)/\(table): iasl row \(row) not printed"); break }
                let other = mine[index]
                // iasl 20200925 calls the node word at +4 "Reserved"; DEN 0049E names it Identifier.
                let sameLabel = other.label == row.label || (row.label == "Reserved" && other.label == "Identifier")
                #expect(other.offset == row.offset && sameLabel && other.value == row.value,
                        "\(directory)/\(table) row \(index): iasl \(row), doorbell \(other)")
            }
        }
    }

    @Test("msi and host run on QEMU virt's ACPI tables, a directory or a lone table recognised by content")
    func msiOnACPI() throws {
        let directory = Self.acpi.appendingPathComponent("qemu-virt").path
        let msi = try BinaryTests.run(["msi", "--platform", directory])
        #expect(msi.status == 0, "\(msi.stderr)")
        #expect(msi.stdout.contains("result: delivered: CPU 0 took LPI 8194"))
        #expect(msi.stdout.contains("StreamID 0x8, DeviceID 0x8"))
        let host = try BinaryTests.run(["host", "--platform", directory])
        #expect(host.status == 0, "\(host.stderr)")
        #expect(host.stdout.contains("result: delivered"))
        // A lone IORT names its ITS only by Translation ID: without the MADT there is no GIC.
        let lone = try BinaryTests.run(["msi", "--platform", Self.acpi.appendingPathComponent("qemu-virt/iort.dat").path])
        #expect(lone.status == 1)
        #expect(lone.stderr.contains("neither a device tree GIC node nor an ACPI MADT"), "\(lone.stderr)")
    }

    @Test("an IORT SMMUv1/v2 node (MMU-500): msi maps the MSI IOVA in a stage-1 bank; host's arm-smmu gets the device from the IORT")
    func mmu500OnACPI() throws {
        let directory = Self.acpi.appendingPathComponent("qemu-virt-mmu500").path
        let msi = try BinaryTests.run(["msi", "--platform", directory])
        #expect(msi.status == 0, "\(msi.stderr)")
        #expect(msi.stdout.contains("SMMUv2 IORT@0x48 SMMUv1/v2: SMR0 = StreamID 0x8 → S2CR0 → context bank 0 (stage 1, ASID 1)"), "\(msi.stdout)")
        #expect(msi.stdout.contains("0xffff_f040 → 0x0809_0040 (stage 1)"), "\(msi.stdout)")
        #expect(msi.stdout.contains("result: delivered: CPU 0 took LPI 8194"), "\(msi.stdout)")
        let topology = try BinaryTests.run(["topology", "--platform", directory])
        #expect(topology.stdout.contains("iommu[0]: IORT@0x48 SMMUv1/v2 model 3 (Arm CoreLink MMU-500)"), "\(topology.stdout)")
        #expect(topology.stdout.contains("verdict: supported"), "\(topology.stdout)")
        for owner in ["driver", "vfio-type1", "vfio-iommufd"] {
            let host = try BinaryTests.run(["host", "--platform", directory, "--owner", owner])
            #expect(host.status == 0, "\(owner): \(host.stderr)")
            #expect(host.stdout.contains("iommu arm-smmu.0, StreamIDs 0x8"), "\(owner): \(host.stdout)")
            #expect(host.stdout.contains("result: delivered"), "\(owner): \(host.stdout)")
        }
    }

    @Test("the same IORT with Model 4 (MMU-401): an SMMUv1 whose stage-2 bank maps the MSI IOVA")
    func mmu401OnACPI() throws {
        let source = Self.acpi.appendingPathComponent("qemu-virt-mmu500")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-mmu401-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for table in ["apic", "mcfg"] {
            try Data(contentsOf: source.appendingPathComponent("\(table).dat")).write(to: directory.appendingPathComponent("\(table).dat"))
        }
        // The SMMU node is at 0x48; its Model field at +0x20. The checksum byte (9) makes the
        // table's bytes sum to zero again.
        var iort = [UInt8](try Data(contentsOf: source.appendingPathComponent("iort.dat")))
        #expect(iort[0x68] == 3)
        iort[0x68] = 4
        iort[9] = 0
        iort[9] = UInt8(truncatingIfNeeded: 0 &- iort.reduce(0) { $0 &+ Int($1) })
        try Data(iort).write(to: directory.appendingPathComponent("iort.dat"))
        let msi = try BinaryTests.run(["msi", "--platform", directory.path])
        #expect(msi.status == 0, "\(msi.stderr)")
        #expect(msi.stdout.contains("SMMUv1 IORT@0x48 SMMUv1/v2: SMR0 = StreamID 0x8 → S2CR0 → context bank 0 (stage 2, VMID 1: the SMMU has no stage 1)"), "\(msi.stdout)")
        #expect(msi.stdout.contains("result: delivered: CPU 0 took LPI 8194"), "\(msi.stdout)")
    }

    @Test("inputs that are not a platform description exit 1 with the file named")
    func notAPlatform() throws {
        let dsl = Self.acpi.appendingPathComponent("qemu-virt/iort.dsl").path
        let text = try BinaryTests.run(["topology", "--platform", dsl])
        #expect(text.status == 1)
        #expect(text.stderr.contains("\(dsl): not a platform description"), "\(text.stderr)")
        let device = try BinaryTests.run(["topology", "--platform", "/dev/zero"])
        #expect(device.status == 1)
        #expect(device.stderr.contains("not a regular file"), "\(device.stderr)")
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-empty-\(getpid())")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        let none = try BinaryTests.run(["topology", "--platform", empty.path])
        #expect(none.status == 1)
        #expect(none.stderr.contains("no IORT, APIC (MADT) or MCFG table"), "\(none.stderr)")
    }
}
