import PCI
import Scenario

/// One `--device` of `doorbell host`:
/// `BDF[,behind=root-port|pcie-to-pci-bridge][,interrupts=msi-x|msi|intx][,vectors=N]`.
/// A function off bus 0 sits behind a bridge on bus 0 whose secondary bus is its bus (a root
/// port unless `behind` says otherwise), placed as scenario files place `host-behind`
/// (`HostBridgePlacement`: 00:1f.0, 00:1e.0, … in order of first use).
public struct HostDeviceSpec: Hashable, Sendable {
    public enum Interrupts: String, CaseIterable, Sendable {
        case msix = "msi-x"
        case msi
        /// No MSI or MSI-X capability: only the Interrupt Pin (INTA#).
        case intx
    }

    public var requesterID: RequesterID
    public var bridge: DeviceDescription.Bridge?
    public var interrupts: Interrupts = .msix
    /// MSI-X Table Size, or MSI vectors (1, 2, 4, 8, 16, 32); 1 for INTx.
    public var vectors: Int = 4

    public init(requesterID: RequesterID, bridge: DeviceDescription.Bridge? = nil, interrupts: Interrupts = .msix, vectors: Int = 4) {
        self.requesterID = requesterID
        self.bridge = bridge
        self.interrupts = interrupts
        self.vectors = vectors
    }
}
