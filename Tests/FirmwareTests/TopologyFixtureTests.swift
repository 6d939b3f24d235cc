import Testing
import Bus
@testable import Firmware

@Suite("Topology of every fixture")
struct TopologyFixtureTests {
    @Test("every fixture gives a topology with a GIC (all 54 are arm64 machines with a GIC node)", arguments: Fixtures.all)
    func derivesTopology(name: String) throws {
        let topology: Topology
        do {
            topology = try Topology(dtb: try Fixtures.bytes(name))
        } catch {
            Issue.record("\(name): \(error)")
            return
        }
        #expect(topology.gic != nil)
        #expect(!topology.cpus.isEmpty)
        // No map entry of any fixture points at a phandle that no node carries.
        for bridge in topology.pcieHostBridges {
            for entry in (bridge.iommuMap?.entries ?? []) + (bridge.msiMap?.entries ?? []) {
                if case .unresolvedPhandle = entry.target { Issue.record("\(name) \(bridge.path): \(entry)") }
            }
        }
    }
}

