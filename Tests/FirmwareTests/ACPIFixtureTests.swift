import Foundation
import Testing
import Testbed
import Bus
@testable import Firmware

/// The ACPI fixtures under Tests/Fixtures/acpi: binaries compiled by ACPICA's iasl from the
/// committed sources, and `iasl -d` disassemblies as the oracle (Scripts/acpi-fixtures.sh).
/// iasl is not needed here: the disassembly text is parsed.
enum ACPIFixtures {
    static let root = Fixtures.root.appendingPathComponent("acpi")

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: root.appendingPathComponent(name + ".dat")))
    }

    typealias Row = IASLListing.Row

    /// The rows of the committed `iasl -d` disassembly `name`.dsl (`IASLListing`).
    static func oracle(_ name: String) throws -> [Row] {
        IASLListing.rows(try String(contentsOf: root.appendingPathComponent(name + ".dsl"), encoding: .utf8))
    }

    /// The reader's dump as rows.
    static func rows(_ fields: [ACPIField]) -> [Row] {
        fields.map { Row(offset: $0.offset, label: $0.label, value: $0.value) }
    }

    /// Labels that differ only because Debian's iasl (20200925) predates the newer ones.
    static func sameLabel(oracle: String, mine: String) -> Bool {
        oracle == mine || (oracle == "Reserved" && mine == "Identifier")
    }

    /// Compares field for field; `complete` false accepts a dump longer than the oracle (the
    /// oracle stopped at a node iasl does not know).
    static func compare(_ name: String, _ fields: [ACPIField], complete: Bool = true) throws {
        let expected = try oracle(name)
        let mine = rows(fields)
        #expect(expected.count > 10, "\(name): the oracle parsed to \(expected.count) rows")
        if complete { #expect(mine.count == expected.count, "\(name): \(mine.count) rows, iasl has \(expected.count)") }
        for (index, row) in expected.enumerated() {
            guard index < mine.count else { Issue.record("\(name): iasl row \(row) has no counterpart"); break }
            let other = mine[index]
            #expect(other.offset == row.offset && sameLabel(oracle: row.label, mine: other.label) && other.value == row.value,
                    "\(name) row \(index): iasl \(row), reader \(other)")
        }
    }
}

@Suite("ACPI fixtures against iasl")
struct ACPIFixtureTests {
    @Test("templates/iort: every node type iasl 20200925 knows") func templateIORT() throws {
        let table = try IORT(bytes: try ACPIFixtures.bytes("templates/iort"))
        #expect(table.nodes.map(\.type) == [0, 1, 2, 3, 4, 5])
        #expect(table.header.checksumIsValid)
        try ACPIFixtures.compare("templates/iort", table.fields)
    }
    @Test("templates/apic") func templateMADT() throws {
        let table = try MADT(bytes: try ACPIFixtures.bytes("templates/apic"))
        #expect(table.giccs.count == 1 && table.gicds.count == 1 && table.msiFrames.count == 1 && table.gicrs.count == 1 && table.its.count == 1)
        // Only the GIC structures are decoded; compare those rows (iasl also decodes the x86 ones).
        let expected = try ACPIFixtures.oracle("templates/apic")
        let mine = ACPIFixtures.rows(table.fields)
        for row in mine { #expect(expected.contains(row), "reader row \(row) not in iasl's disassembly") }
    }
    @Test("templates/mcfg") func templateMCFG() throws {
        try ACPIFixtures.compare("templates/mcfg", try MCFG(bytes: try ACPIFixtures.bytes("templates/mcfg")).fields)
    }
    @Test("qemu-virt/iort") func virtIORT() throws {
        try ACPIFixtures.compare("qemu-virt/iort", try IORT(bytes: try ACPIFixtures.bytes("qemu-virt/iort")).fields)
    }
    @Test("qemu-virt-mmu500/iort: an SMMUv1/v2 node (type 3) with eight context interrupts, field for field as iasl -d reads it")
    func mmu500IORT() throws {
        let table = try IORT(bytes: try ACPIFixtures.bytes("qemu-virt-mmu500/iort"))
        try ACPIFixtures.compare("qemu-virt-mmu500/iort", table.fields)
        guard case .smmuV1V2(let smmu) = table.nodes[1].kind else { Issue.record("node 1 is not an SMMUv1/v2 node"); return }
        #expect(smmu.model == 3 && smmu.baseAddress == 0x905_0000 && smmu.span == 0x1_0000 && smmu.flags == 2)
        #expect(smmu.globalInterrupts.map(\.gsiv) == [0x8F, 0x8F])
        #expect(smmu.contextInterrupts.map(\.gsiv) == Array(0x90...0x97))
        #expect(smmu.pmuInterrupts.isEmpty)
        #expect(table.nodes[1].mappings.first?.outputNode == 0)
    }
    @Test("qemu-virt-bypass/iort") func bypassIORT() throws {
        try ACPIFixtures.compare("qemu-virt-bypass/iort", try IORT(bytes: try ACPIFixtures.bytes("qemu-virt-bypass/iort")).fields)
    }
    @Test("qemu-virt-rmr/iort: as far as iasl 20200925 reads it (up to the RMR node header)") func rmrIORT() throws {
        let table = try IORT(bytes: try ACPIFixtures.bytes("qemu-virt-rmr/iort"))
        try ACPIFixtures.compare("qemu-virt-rmr/iort", table.fields, complete: false)
        guard case .rmr(let rmr) = table.nodes.last?.kind else { Issue.record("last node is not an RMR"); return }
        #expect(table.header.revision == 5 && table.nodes.last?.revision == 3 && table.nodes.last?.identifier == 3)
        #expect(rmr.flags == 0 && !rmr.remappingPermitted && rmr.ranges == [IORTMemoryRange(base: 0x0800_0000, length: 0x10_0000)])
        let mapping = try #require(table.nodes.last?.mappings.first)
        #expect(mapping.isSingleMapping && mapping.count == 0x100 && mapping.outputNode == 1)
    }
    @Test("qemu-virt/apic") func virtMADT() throws {
        try ACPIFixtures.compare("qemu-virt/apic", try MADT(bytes: try ACPIFixtures.bytes("qemu-virt/apic")).fields)
    }
    @Test("qemu-virt/mcfg") func virtMCFG() throws {
        try ACPIFixtures.compare("qemu-virt/mcfg", try MCFG(bytes: try ACPIFixtures.bytes("qemu-virt/mcfg")).fields)
    }
    @Test("arm-sgi/iort") func sgiIORT() throws {
        try ACPIFixtures.compare("arm-sgi/iort", try IORT(bytes: try ACPIFixtures.bytes("arm-sgi/iort")).fields)
    }
    @Test("arm-sgi/mcfg") func sgiMCFG() throws {
        try ACPIFixtures.compare("arm-sgi/mcfg", try MCFG(bytes: try ACPIFixtures.bytes("arm-sgi/mcfg")).fields)
    }

    static let all = ["templates/iort", "templates/apic", "templates/mcfg", "qemu-virt/iort", "qemu-virt/apic", "qemu-virt/mcfg",
                      "qemu-virt-bypass/iort", "qemu-virt-rmr/iort", "arm-sgi/iort", "arm-sgi/mcfg", "qemu-virt-mmu500/iort"]

    static func reread(_ bytes: [UInt8]) throws -> (AnyHashable, [UInt8]) {
        switch ACPITableHeader.signature(of: bytes) {
        case "IORT": let t = try IORT(bytes: bytes); return (t, try t.bytes())
        case "APIC": let t = try MADT(bytes: bytes); return (t, try t.bytes())
        default: let t = try MCFG(bytes: bytes); return (t, try t.bytes())
        }
    }

    @Test("read(write(x)) == x for every fixture; QEMU's layouts are written back byte for byte", arguments: all)
    func roundTrip(_ name: String) throws {
        let original = try ACPIFixtures.bytes(name)
        let (_, written) = try Self.reread(original)
        let (x, again) = try Self.reread(written)
        let (y, _) = try Self.reread(again)
        #expect(x == y)
        #expect(again == written)
        if name.hasPrefix("qemu-virt") { #expect(written == original, "\(name): the writer's layout is QEMU's") }
    }

    @Test("every prefix and every single-byte corruption of every fixture reads or throws, never traps", arguments: all)
    func truncations(_ name: String) throws {
        let bytes = try ACPIFixtures.bytes(name)
        for length in 0..<bytes.count { _ = try? Self.reread(Array(bytes[0..<length])) }
        for index in 0..<bytes.count {
            var corrupted = bytes
            corrupted[index] ^= 0xA5
            if let (x, _) = try? Self.reread(corrupted), let iort = x.base as? IORT {
                _ = try? Topology(acpi: ACPITableSet(iort: iort), memory: [])
            }
        }
    }
}
