// STUB — owned by the IRQ/MSI/PCI/ITS helper; replace entirely.
public final class IRQSubsystem {
    unowned(safe) let kernel: LinuxKernel
    init(kernel: LinuxKernel) { self.kernel = kernel }
    /// GIC bring-up: redistributor LPI tables, ITS drivers, collections, PMR.
    public func probe() throws(Errno) {}
}
