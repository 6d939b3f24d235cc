import Bus
import LinuxKernel

// MARK: vfio-pci MSI

extension VirtualMachineMonitor {
    /// Re-evaluates `device`'s MSI state after a trapped capability write.
    func msiChanged(_ device: PassthroughDevice) {}
}
