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

    /// The rows agree with themselves: a VMM that maps the vITS doorbell page
    /// (`IOMMUFD_CMD_IOAS_MAP_MSI`) needs a host with that patch; a plan with a guest RMR changes
    /// the guest firmware; a strategy that changes nothing carries no patch and runs on the
    /// release before native sw_msi; a host patch means the uAPI changed.
    @Test func rowsAreConsistent() {
        for strategy in Strategy.allCases {
            let row = strategy.definition
            #expect((row.msiPlan == .guestIOVAs) == row.hostPatches.contains(.iommufdIOASMapMSI), "\(strategy)")
            #expect([.rmrIdentity, .swMSIWindow].contains(row.msiPlan) == row.changes.contains(.guestFirmware), "\(strategy)")
            #expect(row.changes.isEmpty == (row.hostPatches.isEmpty && row.msiPlan == .none), "\(strategy)")
            if !row.hostPatches.isEmpty { #expect(row.changes.contains(.uapi), "\(strategy)") }
            #expect(strategy.origin == row.origin && strategy.changes == row.changes && strategy.baseRelease == row.baseRelease
                    && strategy.hostPatches == row.hostPatches)
        }
    }
}
