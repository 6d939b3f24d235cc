import Bus

/// `struct vfio_device_file` (drivers/vfio/vfio_main.c, device_cdev.c): an open VFIO device,
/// reached either through a group fd (`VFIO_GROUP_GET_DEVICE_FD`, legacy container path) or by
/// opening its cdev `/dev/vfio/devices/vfioN` and binding it to an iommufd.
public final class VFIODeviceFile {
    public let vdev: VFIOPCIDevice
    /// The process that opened the file: its eventfds are what SET_IRQS resolves.
    public let process: UserProcess
    /// `df->group`: set for a file from `VFIO_GROUP_GET_DEVICE_FD`.
    public let viaGroup: Bool
    /// `df->access_granted`: a group-path file is usable at once; a cdev file after
    /// VFIO_DEVICE_BIND_IOMMUFD.
    public private(set) var accessGranted: Bool
    /// The iommufd the cdev is bound to, and the device object there (`vdev->iommufd_device`).
    public private(set) var iommufd: IOMMUFD?
    public private(set) var iommufdDevice: IOMMUFDDevice?
    /// `vdev->iommufd_attached`.
    public private(set) var iommufdAttached = false
    public private(set) var isClosed = false

    init(vdev: VFIOPCIDevice, process: UserProcess, viaGroup: Bool) {
        self.vdev = vdev
        self.process = process
        self.viaGroup = viaGroup
        self.accessGranted = viaGroup
    }

    /// `vfio_device_fops_unl_ioctl`: every ioctl but BIND needs access ("if
    /// (!smp_load_acquire(&df->access_granted)) return -EINVAL").
    func requireAccess() throws(Errno) {
        guard !isClosed else { throw .EBADF }
        guard accessGranted else { throw .EINVAL }
    }

    // MARK: cdev + iommufd (drivers/vfio/device_cdev.c, drivers/vfio/iommufd.c)

    /// `VFIO_DEVICE_BIND_IOMMUFD` (`vfio_df_ioctl_bind_iommufd`): returns the device's object id
    /// in the iommufd (`out_devid`). EINVAL for non-zero flags, for a file opened through a group,
    /// or a second bind; then `vfio_df_open` → `iommufd_device_bind` (EPERM without isolated
    /// MSI unless allowed; EPERM/EBUSY if the group is owned otherwise) and the device is
    /// enabled (`vfio_pci_core_enable`).
    public func bindIOMMUFD(_ iommufd: IOMMUFD, flags: UInt32 = 0) throws(Errno) -> UInt32 {
        guard !isClosed else { throw .EBADF }
        guard flags == 0, !viaGroup, !accessGranted else { throw .EINVAL }
        let idev = try iommufd.bind(vdev.device)
        do throws(Errno) {
            try vdev.enable()
        } catch {
            iommufd.unbind(idev)
            throw error
        }
        self.iommufd = iommufd
        iommufdDevice = idev
        accessGranted = true
        vdev.kernel.log.log("vfio", "\(vdev.device.name): bound to iommufd as device \(idev.id)")
        return idev.id
    }

    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` (`vfio_iommufd_physical_attach_ioas`): attach to an IOAS
    /// (auto domain) or a HWPT; a device already attached is replaced instead
    /// (`iommufd_device_replace`). Returns the HWPT id actually used (`pt_id` is written back).
    public func attachIOMMUFDPT(_ ptID: UInt32, flags: UInt32 = 0) throws(Errno) -> UInt32 {
        try requireAccess()
        guard flags == 0 else { throw .EINVAL }
        guard let iommufd, let idev = iommufdDevice else { throw .EINVAL }
        var id = ptID
        if iommufdAttached {
            try iommufd.replace(idev, ptID: &id)
        } else {
            try iommufd.attach(idev, ptID: &id)
            iommufdAttached = true
        }
        return id
    }

    /// `VFIO_DEVICE_DETACH_IOMMUFD_PT` (`vfio_iommufd_physical_detach_ioas`).
    public func detachIOMMUFDPT(flags: UInt32 = 0) throws(Errno) {
        try requireAccess()
        guard flags == 0 else { throw .EINVAL }
        guard let iommufd, let idev = iommufdDevice, iommufdAttached else { return }
        iommufd.detach(idev)
        iommufdAttached = false
    }

    // MARK: common ioctls

    /// `VFIO_DEVICE_SET_IRQS`.
    @discardableResult
    public func setIRQs(_ irqSet: VFIOIRQSet) throws(Errno) -> Int {
        try requireAccess()
        return try vdev.setIRQs(irqSet, process: process)
    }

    /// A write to the device's config region (`VFIO_PCI_CONFIG_REGION_INDEX`) at the Command
    /// register: `vfio_pci_config` passes Bus Master and Memory Space through to the function,
    /// which is how a VMM lets its device DMA and signal.
    public func writeCommand(_ value: UInt16) throws(Errno) {
        try requireAccess()
        try vdev.pdev.writeConfig16(0x04, value)
    }

    /// `close()`: `vfio_df_close` → `vfio_pci_core_disable`; for a cdev,
    /// `vfio_df_iommufd_unbind` (detach, release ownership).
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        if accessGranted { vdev.disable() }
        if let iommufd, let idev = iommufdDevice { iommufd.unbind(idev) }
        iommufdAttached = false
        iommufdDevice = nil
        accessGranted = false
        if vdev.openFile === self { vdev.openFile = nil }
    }
}

/// A forked device file: the same access state and iommufd binding, on the copied device,
/// process and iommufd context.
extension VFIODeviceFile: WorldCloneable {
    public func clone(into map: inout CloneMap) -> VFIODeviceFile {
        let vdevCopy = map.clone(vdev)
        let processCopy = map.clone(process)
        if let done = map.copy(of: self) { return done }
        let copy = VFIODeviceFile(vdev: vdevCopy, process: processCopy, viaGroup: viaGroup)
        map.record(self, as: copy)
        copy.accessGranted = accessGranted
        copy.iommufd = map.clone(iommufd)
        copy.iommufdDevice = map.clone(iommufdDevice)
        copy.iommufdAttached = iommufdAttached
        copy.isClosed = isClosed
        return copy
    }
}
