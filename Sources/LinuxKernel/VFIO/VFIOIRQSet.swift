/// `struct vfio_irq_set` (include/uapi/linux/vfio.h), the argument of `VFIO_DEVICE_SET_IRQS`:
///
///     __u32 argsz; __u32 flags; __u32 index; __u32 start; __u32 count; __u8 data[];
///
/// The data bytes follow the header as the caller laid them out: nothing (DATA_NONE), one byte
/// per vector (DATA_BOOL) or one little-endian `__s32` eventfd per vector (DATA_EVENTFD). `argsz`
/// is what the caller claims the whole structure occupies; the kernel trusts only `argsz - minsz`
/// bytes of data (`vfio_set_irqs_validate_and_prepare`).
public struct VFIOIRQSet: Hashable, Sendable {
    public var argsz: UInt32
    public var flags: UInt32
    public var index: UInt32
    public var start: UInt32
    public var count: UInt32
    public var data: [UInt8]

    /// `offsetofend(struct vfio_irq_set, count)`: five `__u32`.
    public static let minimumSize: UInt32 = 20

    // Flags (include/uapi/linux/vfio.h).
    public static let dataNone: UInt32 = 1 << 0
    public static let dataBool: UInt32 = 1 << 1
    public static let dataEventFD: UInt32 = 1 << 2
    public static let actionMask: UInt32 = 1 << 3
    public static let actionUnmask: UInt32 = 1 << 4
    public static let actionTrigger: UInt32 = 1 << 5
    /// `VFIO_IRQ_SET_DATA_MSI_IOVA` (RFCv1 7/7, `KernelPatches.vfioMSIIOVAPrepare`): "Data is MSI
    /// IOVA (u64)", one per vector.
    public static let dataMSIIOVA: UInt32 = 1 << 6
    /// `VFIO_IRQ_SET_ACTION_PREPARE` (RFCv1 7/7): "Prepare interrupt".
    public static let actionPrepare: UInt32 = 1 << 7
    /// `VFIO_IRQ_SET_DATA_TYPE_MASK` of an unpatched kernel.
    public static let dataTypeMask: UInt32 = dataNone | dataBool | dataEventFD
    /// `VFIO_IRQ_SET_ACTION_TYPE_MASK` of an unpatched kernel.
    public static let actionTypeMask: UInt32 = actionMask | actionUnmask | actionTrigger

    /// `VFIO_IRQ_SET_DATA_TYPE_MASK` of a kernel with `patches`: RFCv1 7/7 adds DATA_MSI_IOVA.
    public static func dataTypeMask(_ patches: KernelPatches) -> UInt32 {
        patches.contains(.vfioMSIIOVAPrepare) ? dataTypeMask | dataMSIIOVA : dataTypeMask
    }

    /// `VFIO_IRQ_SET_ACTION_TYPE_MASK` of a kernel with `patches`: RFCv1 7/7 adds ACTION_PREPARE.
    public static func actionTypeMask(_ patches: KernelPatches) -> UInt32 {
        patches.contains(.vfioMSIIOVAPrepare) ? actionTypeMask | actionPrepare : actionTypeMask
    }

    // `enum { VFIO_PCI_INTX_IRQ_INDEX, … VFIO_PCI_NUM_IRQS }`.
    public static let intxIndex: UInt32 = 0
    public static let msiIndex: UInt32 = 1
    public static let msixIndex: UInt32 = 2
    public static let errIndex: UInt32 = 3
    public static let reqIndex: UInt32 = 4
    /// `VFIO_PCI_NUM_IRQS`: `max_irq_type` for vfio-pci.
    public static let numIRQs: UInt32 = 5

    /// A raw structure; `argsz` defaults to the header plus the data actually supplied.
    public init(argsz: UInt32? = nil, flags: UInt32, index: UInt32, start: UInt32, count: UInt32, data: [UInt8] = []) {
        self.flags = flags
        self.index = index
        self.start = start
        self.count = count
        self.data = data
        self.argsz = argsz ?? (Self.minimumSize &+ UInt32(clamping: data.count))
    }

    /// ACTION_TRIGGER | DATA_EVENTFD with one descriptor per vector from `start` (-1 tears a
    /// vector's trigger down).
    public static func trigger(index: UInt32 = msixIndex, start: UInt32, eventfds: [Int32]) -> VFIOIRQSet {
        var bytes: [UInt8] = []
        for fd in eventfds {
            let raw = UInt32(bitPattern: fd)
            bytes += [UInt8(truncatingIfNeeded: raw), UInt8(truncatingIfNeeded: raw >> 8),
                      UInt8(truncatingIfNeeded: raw >> 16), UInt8(truncatingIfNeeded: raw >> 24)]
        }
        return VFIOIRQSet(flags: actionTrigger | dataEventFD, index: index, start: start,
                          count: UInt32(clamping: eventfds.count), data: bytes)
    }

    /// ACTION_TRIGGER | DATA_NONE with count 0: disable the index (`vfio_msi_disable`).
    public static func disable(index: UInt32 = msixIndex) -> VFIOIRQSet {
        VFIOIRQSet(flags: actionTrigger | dataNone, index: index, start: 0, count: 0)
    }

    /// ACTION_PREPARE | DATA_MSI_IOVA (RFCv1 7/7): the MSI IOVA of each vector from `start`, one
    /// little-endian `__u64` each (arm64). The kernel uses the value as the whole message
    /// address (doorbell offset included), so a VMM passes the guest's programmed vMSI-X
    /// address, e.g. 0xFFBF_0040.
    public static func prepare(index: UInt32 = msixIndex, start: UInt32, iovas: [UInt64]) -> VFIOIRQSet {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(iovas.count * 8)
        for iova in iovas {
            for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: iova >> UInt64(shift))) }
        }
        return VFIOIRQSet(flags: actionPrepare | dataMSIIOVA, index: index, start: start,
                          count: UInt32(clamping: iovas.count), data: bytes)
    }

    /// ACTION_PREPARE | DATA_NONE (RFCv1 7/7): frees the IOVA array. The handler refuses count
    /// 0 (EINVAL) and then frees the whole array whatever the range ("FIXME support partial
    /// unset"), so vector 0 with count 1 is enough.
    public static func prepareClear(index: UInt32 = msixIndex) -> VFIOIRQSet {
        VFIOIRQSet(flags: actionPrepare | dataNone, index: index, start: 0, count: 1)
    }

    /// The data as `__u64` IOVAs (little endian).
    func msiIOVAs(count: Int) -> [UInt64] {
        var result: [UInt64] = []
        for i in 0..<max(count, 0) {
            let base = i * 8
            guard base + 7 < data.count else { break }
            var value: UInt64 = 0
            for b in 0..<8 { value |= UInt64(data[base + b]) << UInt64(8 * b) }
            result.append(value)
        }
        return result
    }

    /// The data as `__s32` eventfds (little endian, as the arm64 kernel reads them).
    func eventfds(count: Int) -> [Int32] {
        var result: [Int32] = []
        for i in 0..<count {
            let base = i * 4
            guard base + 3 < data.count else { break }
            let raw = UInt32(data[base]) | UInt32(data[base + 1]) << 8 | UInt32(data[base + 2]) << 16 | UInt32(data[base + 3]) << 24
            result.append(Int32(bitPattern: raw))
        }
        return result
    }

    /// `vfio_set_irqs_validate_and_prepare(hdr, num_irqs, max_irq_type, &data_size)`
    /// (drivers/vfio/vfio_main.c): returns the number of data bytes the ioctl copies in.
    ///
    /// In the kernel's order: argsz below the header, index ≥ max_irq_type, a count that would
    /// wrap `start + count` (`count >= U32_MAX - start`) or a flag outside the two masks → EINVAL;
    /// start beyond the index's vectors or start+count past them → EINVAL; a data type that is
    /// not exactly one of NONE/BOOL/EVENTFD (and, with `.vfioMSIIOVAPrepare`, MSI_IOVA: 8 bytes
    /// per entry, RFCv1 7/7's `size = sizeof(uint64_t)`) → EINVAL; fewer data bytes than
    /// count×size → EINVAL. The action type is not checked here: `vfio_pci_set_irqs_ioctl`
    /// answers ENOTTY for an action it has no handler for. Unpatched, bits 6 and 7 are outside
    /// the masks: EINVAL, as for any unknown flag.
    public func validate(numIRQs: Int, maxIRQType: UInt32 = numIRQs, patches: KernelPatches = []) throws(Errno) -> Int {
        let minsz = Self.minimumSize
        let dataMask = Self.dataTypeMask(patches)
        guard argsz >= minsz, index < maxIRQType, count < UInt32.max &- start,
              flags & ~(dataMask | Self.actionTypeMask(patches)) == 0 else { throw .EINVAL }
        let irqCount = UInt64(max(numIRQs, 0))
        guard UInt64(start) < irqCount, UInt64(start) + UInt64(count) <= irqCount else { throw .EINVAL }
        let size: UInt64
        switch flags & dataMask {
        case Self.dataNone: size = 0
        case Self.dataBool: size = 1
        case Self.dataEventFD: size = 4
        case Self.dataMSIIOVA where patches.contains(.vfioMSIIOVAPrepare): size = 8
        default: throw .EINVAL
        }
        guard size != 0 else { return 0 }
        let needed = UInt64(count) * size
        guard UInt64(argsz - minsz) >= needed else { throw .EINVAL }
        // `memdup_user` copies `data_size` bytes; bytes the caller did not actually supply are
        // an unreadable user buffer.
        guard UInt64(data.count) >= needed else { throw .EFAULT }
        return Int(needed)
    }
}
