import PCI
// STUB — owned by the IRQ/MSI/PCI/ITS helper; replace entirely.
/// `struct pci_dev`.
public final class PCIDevice {
    public let device: Device
    public let requesterID: RequesterID
    /// Index of the host bridge (`topology.pcieHostBridges`) the function sits under.
    public let hostBridge: Int
    init(device: Device, requesterID: RequesterID, hostBridge: Int) {
        self.device = device
        self.requesterID = requesterID
        self.hostBridge = hostBridge
    }
}
