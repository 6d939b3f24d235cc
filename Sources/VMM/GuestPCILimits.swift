/// The guest PCI topology the VMM builds on QEMU's `virt` machine (hw/arm/virt.c,
/// hw/pci-host/gpex.c): one root bus, `pcie.0`, whose 32 slots of 8 functions each hold the
/// passthrough functions and the root ports, with 00:00.0 taken by the host bridge
/// (`gpex-root`), and an ECAM window (PCIe r6.0 §7.2.2: 1 MiB of configuration space per bus).
public enum GuestPCILimits {
    /// Slots 1–31 of `pcie.0` (slot 0 is the host bridge's).
    public static let slots = 31
    /// Functions on the root bus besides the host bridge: 31 slots × 8 functions.
    public static let rootBusFunctions = slots * 8
    /// Buses an ECAM window of `size` bytes decodes (1 MiB each, at most 256).
    public static func buses(ecamSize size: UInt64) -> Int { Int(min(size >> 20, 256)) }
}
