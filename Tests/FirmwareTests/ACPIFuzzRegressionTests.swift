import Foundation
import Testing
@testable import Firmware

/// Inputs FuzzACPI found, kept as regression tests (Tests/Fixtures/acpi/fuzz/).
@Suite("ACPI fuzz regressions")
struct ACPIFuzzRegressionTests {
    @Test("an unknown node type's ID mappings follow their nodes when the writer moves them", arguments: ["iort-roundtrip-1"])
    func iortRoundTrip(name: String) throws {
        let bytes = try ACPIFixtures.bytes("fuzz/\(name)")
        let table = try IORT(bytes: bytes)
        let written = try table.bytes()
        let again = try IORT(bytes: written)
        let rewritten = try again.bytes()
        #expect(rewritten == written)
        // The writer lays nodes out anew (from 0x30), so offsets move; what each node is and
        // where its mappings point (by node index) must not.
        #expect(again.nodes.map(\.type) == table.nodes.map(\.type))
        #expect(again.nodes.map { $0.mappings.map(\.outputNode) } == table.nodes.map { $0.mappings.map(\.outputNode) })
        #expect(again.nodes.map { $0.mappings.map(\.outputBase) } == table.nodes.map { $0.mappings.map(\.outputBase) })
    }
}
