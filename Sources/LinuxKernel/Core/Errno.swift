/// Linux error numbers (include/uapi/asm-generic/errno-base.h and errno.h) as the kernel model
/// returns them. uAPI calls fail with the errno the kernel returns for the kernel's reason, so
/// tests can pin `EOVERFLOW` for the 65th sw_msi page or `EPERM` for unsafe interrupts.
public enum Errno: Int32, Error, Hashable, Sendable, CustomStringConvertible {
    case EPERM = 1
    case ENOENT = 2
    case EIO = 5
    case ENXIO = 6
    case E2BIG = 7
    case EBADF = 9
    /// EAGAIN (11): KVM_IRQFD before the in-kernel irqchip is initialised (`kvm_irqfd_assign`).
    case EAGAIN = 11
    case ENOMEM = 12
    case EFAULT = 14
    case EBUSY = 16
    case EEXIST = 17
    case ENODEV = 19
    case EINVAL = 22
    case ENOTTY = 25
    case ENOSPC = 28
    case ERANGE = 34
    case ENOSYS = 38
    case EOVERFLOW = 75
    case EOPNOTSUPP = 95
    case EADDRINUSE = 98
    case ETIMEDOUT = 110

    public var description: String { "\(name) (\(rawValue))" }

    public var name: String {
        switch self {
        case .EPERM: "EPERM"
        case .ENOENT: "ENOENT"
        case .EIO: "EIO"
        case .ENXIO: "ENXIO"
        case .E2BIG: "E2BIG"
        case .EBADF: "EBADF"
        case .EAGAIN: "EAGAIN"
        case .ENOMEM: "ENOMEM"
        case .EFAULT: "EFAULT"
        case .EBUSY: "EBUSY"
        case .EEXIST: "EEXIST"
        case .ENODEV: "ENODEV"
        case .EINVAL: "EINVAL"
        case .ENOTTY: "ENOTTY"
        case .ENOSPC: "ENOSPC"
        case .ERANGE: "ERANGE"
        case .ENOSYS: "ENOSYS"
        case .EOVERFLOW: "EOVERFLOW"
        case .EOPNOTSUPP: "EOPNOTSUPP"
        case .EADDRINUSE: "EADDRINUSE"
        case .ETIMEDOUT: "ETIMEDOUT"
        }
    }
}
