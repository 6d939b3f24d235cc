import Firmware
// STUB — owned by the IRQ/MSI/PCI/ITS helper; replace entirely.
public final class GICv3ITSDriver {
    unowned(safe) let kernel: LinuxKernel
    public let index: Int
    public let node: ITSDescription
    init(kernel: LinuxKernel, index: Int, node: ITSDescription) {
        self.kernel = kernel
        self.index = index
        self.node = node
    }
}
