// STUB — owned by the IRQ/MSI/PCI/ITS helper; replace entirely.
public final class PCISubsystem {
    unowned(safe) let kernel: LinuxKernel
    init(kernel: LinuxKernel) { self.kernel = kernel }
    /// Scans every host bridge's ECAM window, assigns BARs, registers devices.
    public func enumerate() throws(Errno) {}
}
