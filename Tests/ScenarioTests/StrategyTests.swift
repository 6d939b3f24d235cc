import Testing
@testable import Scenario

/// The strategy ids are the interface (docs/strategies.md: "Each id is used unchanged in code, on the command line and in reports").
@Suite struct StrategyTests {
    @Test func idsAreTheDocumentedOnes() {
        #expect(Strategy.allCases.map(\.rawValue) == ["legacy", "irqchip-relay", "vfio-override", "rmr-identity", "sw-msi-window", "vits-direct"])
    }

    /// Only the baseline changes nothing; the merged design needs guest firmware (the RMR),
    /// and only the RFC touches the irqchip and the PCI MSI core (its patches 1–6).
    @Test func declaredChanges() {
        #expect(Strategy.legacy.changes.isEmpty)
        #expect(Strategy.rmrIdentity.changes.contains(.guestFirmware))
        #expect(Strategy.allCases.filter { $0.changes.contains(.irqchip) } == [.irqchipRelay])
        #expect(Strategy.allCases.filter { $0.changes.contains(.pciMSICore) } == [.irqchipRelay])
    }
}
