import Bus

/// `/dev/kvm` in the host kernel model: the handle a VMM opens to create VMs.
///
/// The model is stateless (every VM is owned by the `KVMVirtualMachine` its creator holds, as
/// a VM fd is), so `kernel.kvm` can be a computed property and the core `LinuxKernel` needs no
/// new stored state.
public struct KVM {
    unowned(safe) let kernel: LinuxKernel

    init(kernel: LinuxKernel) { self.kernel = kernel }

    /// KVM_CREATE_VM (`kvm_dev_ioctl_create_vm` → `kvm_create_vm`): a VM with no memory, no
    /// vCPUs and no interrupt controller, owned by `process` (memory slots take its user
    /// addresses, irqfds its eventfd descriptors).
    public func createVM(process: UserProcess) -> KVMVirtualMachine {
        let vm = KVMVirtualMachine(kernel: kernel, process: process, id: kernel.makeObjectID())
        kernel.log.log("kvm", "VM \(vm.id) created for \(process.name)")
        return vm
    }
}

extension LinuxKernel {
    /// `open("/dev/kvm")`.
    public var kvm: KVM { KVM(kernel: self) }
}

/// KVM uAPI constants (include/uapi/linux/kvm.h).
public enum KVMConstants {
    /// `KVM_MSI_VALID_DEVID` (1 << 0): the route / `struct kvm_msi` carries a DeviceID, which
    /// arm64's vITS requires (`vgic_msi_to_its` returns -EINVAL without it).
    public static let msiValidDevID: UInt32 = 1 << 0
    /// `KVM_MAX_IRQ_ROUTES` (include/linux/kvm_host.h: 4096): GSIs are below it
    /// (`kvm_set_irq_routing` rejects larger ones with EINVAL).
    public static let maxIRQRoutes: UInt32 = 4096
    /// `KVM_USER_MEM_SLOTS` when the architecture does not define it (kvm_host.h:
    /// SHRT_MAX − KVM_INTERNAL_MEM_SLOTS = 32767 − 0 on arm64).
    public static let userMemorySlots: UInt32 = 32767
    /// `KVM_VGIC_V3_DIST_SIZE` (64 KiB), `KVM_VGIC_V3_REDIST_SIZE` (2 × 64 KiB: RD_base +
    /// SGI_base per vCPU), `KVM_VGIC_V3_ITS_SIZE` (2 × 64 KiB: control + translation frame)
    /// from arch/arm64/include/uapi/asm/kvm.h.
    public static let vgicV3DistributorSize: UInt64 = 0x1_0000
    public static let vgicV3RedistributorSize: UInt64 = 0x2_0000
    public static let vgicV3ITSSize: UInt64 = 0x2_0000
    /// `KVM_VGIC_V2_DIST_SIZE` (4 KiB) and `KVM_VGIC_V2_CPU_SIZE` (8 KiB), same header.
    public static let vgicV2DistributorSize: UInt64 = 0x1000
    public static let vgicV2CPUSize: UInt64 = 0x2000
    /// arm64's `KVM_IRQCHIP_NUM_PINS` (arch/arm64/include/asm/kvm_host.h: 1020 − 32, one pin per
    /// possible SPI).
    public static let irqchipPins: UInt32 = 1020 - 32
}
