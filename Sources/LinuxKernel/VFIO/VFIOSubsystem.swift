// STUB — owned by the VFIO/iommufd helper; replace entirely.
/// drivers/vfio: containers (type1), groups, device files (cdev), VFIO_DEVICE_SET_IRQS.
public final class VFIOSubsystem {
    unowned(safe) let kernel: LinuxKernel
    init(kernel: LinuxKernel) { self.kernel = kernel }
}
