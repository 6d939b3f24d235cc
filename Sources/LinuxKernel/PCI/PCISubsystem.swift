import Bus
import Firmware
import PCI

/// The PCI core: host bridge enumeration through ECAM (drivers/pci/probe.c), resource
/// assignment (drivers/pci/setup-bus.c, setup-res.c), `pci_enable_device`/`pci_set_master`
/// (drivers/pci/pci.c), DMA aliases (drivers/pci/search.c), and PCI MSI/MSI-X
/// (drivers/pci/msi/*.c, in the PCIMSI*.swift files).
public final class PCISubsystem {
    unowned(safe) let kernel: LinuxKernel

    /// Every function found, in enumeration order (`pci_devices`).
    public internal(set) var devices: [PCIDevice] = []
    /// `pci_acs_enable`: set by `pci_request_acs()` (see `PCIACS.swift`).
    public internal(set) var acsRequested = false

    init(kernel: LinuxKernel) { self.kernel = kernel }

    /// The function at `requesterID` under host bridge `hostBridge`.
    public func device(_ requesterID: RequesterID, hostBridge: Int = 0) -> PCIDevice? {
        devices.first { $0.requesterID == requesterID && $0.hostBridge == hostBridge }
    }

    /// The function with sysfs name `name` ("0000:00:01.0").
    public func device(named name: String) -> PCIDevice? { devices.first { $0.name == name } }

    /// The function behind a generic `Device`.
    public func pciDevice(of device: Device) -> PCIDevice? { device.pci ?? devices.first { $0.device === device } }
}

/// `pci_alloc_irq_vectors` flags (include/linux/pci.h `PCI_IRQ_*`).
public struct PCIIRQFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `PCI_IRQ_INTX` (legacy wire; not modelled: no INTx path exists here).
    public static let intx = PCIIRQFlags(rawValue: 1 << 0)
    /// `PCI_IRQ_MSI`.
    public static let msi = PCIIRQFlags(rawValue: 1 << 1)
    /// `PCI_IRQ_MSIX`.
    public static let msix = PCIIRQFlags(rawValue: 1 << 2)
    /// `PCI_IRQ_AFFINITY`: spread the vectors over the CPUs as managed interrupts
    /// (`irq_create_affinity_masks`).
    public static let affinity = PCIIRQFlags(rawValue: 1 << 3)
    /// `PCI_IRQ_ALL_TYPES`.
    public static let allTypes: PCIIRQFlags = [.intx, .msi, .msix]
}
