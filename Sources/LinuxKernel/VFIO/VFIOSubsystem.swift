/// drivers/vfio: the vfio-pci driver's devices, containers (`/dev/vfio/vfio`), group files
/// (`/dev/vfio/$GROUP`) and device cdevs (`/dev/vfio/devices/vfioN`).
///
/// The uAPI a VMM drives, legacy path: `openContainer` → `openGroup(id)` →
/// `group.setContainer` → `container.setIOMMU(VFIO_TYPE1v2_IOMMU)` → `container.mapDMA` →
/// `group.getDeviceFD(name)` → `device.setIRQs`. cdev path: `kernel.openIOMMUFD()` →
/// `openDevice(cdev)` → `device.bindIOMMUFD` → `iommufd.ioasAlloc` / `ioasMap` /
/// `hwptAlloc` → `device.attachIOMMUFDPT` → `device.setIRQs`.
public final class VFIOSubsystem {
    unowned(safe) let kernel: LinuxKernel
    /// Devices bound to vfio-pci, in bind order (`vfioN` numbering).
    public internal(set) var devices: [VFIOPCIDevice] = []
    var groupFiles: [Int: VFIOGroupFile] = [:]

    init(kernel: LinuxKernel) { self.kernel = kernel }

    /// `echo vfio-pci > driver_override; echo … > bind`: `vfio_pci_probe` →
    /// `vfio_pci_core_register_device` (a group with an IOMMU, `vfio_register_group_dev`, and
    /// the cdev). EINVAL for a device without an IOMMU group: `vfio_device_set_group` →
    /// `vfio_group_find_or_alloc` returns -EINVAL when `iommu_group_get` finds none and
    /// `enable_unsafe_noiommu_mode` is off (drivers/vfio/group.c, v6.14–v6.19; no-IOMMU mode is
    /// not modelled), so the probe fails. EBUSY for a device bound already.
    @discardableResult
    public func bindVFIOPCI(_ device: Device) throws(Errno) -> VFIOPCIDevice {
        guard let pdev = kernel.pci.pciDevice(of: device) else { throw .ENODEV }
        // really_probe → pci_dma_configure, before vfio_pci_probe runs.
        try kernel.pci.dmaConfigure(device)
        guard device.iommu?.group != nil else {
            kernel.log.log("vfio-pci", "\(device.name): vfio_group_find_or_alloc: no iommu_group (enable_unsafe_noiommu_mode is off)")
            throw .EINVAL
        }
        if let existing = devices.first(where: { $0.device === device }) { _ = existing; throw .EBUSY }
        let vdev = VFIOPCIDevice(kernel: kernel, pdev: pdev, cdevName: "vfio\(devices.count)")
        device.driverName = "vfio-pci"
        devices.append(vdev)
        kernel.log.log("vfio-pci", "\(device.name): bound, cdev /dev/vfio/devices/\(vdev.cdevName), group \(device.iommu?.group?.id ?? -1)")
        return vdev
    }

    /// `open("/dev/vfio/vfio")`.
    public func openContainer(process: UserProcess) -> VFIOContainer {
        VFIOContainer(kernel: kernel, process: process)
    }

    /// `open("/dev/vfio/$id")` (`vfio_group_fops_open`): ENOENT when no vfio-pci device is in
    /// that iommu group (no such node), EBUSY when the group is open already.
    public func openGroup(_ id: Int) throws(Errno) -> VFIOGroupFile {
        guard let vdev = devices.first(where: { $0.device.iommu?.group?.id == id }), let group = vdev.device.iommu?.group else {
            throw .ENOENT
        }
        if let open = groupFiles[id], open.container != nil || !open.deviceFiles.isEmpty { throw .EBUSY }
        let file = VFIOGroupFile(kernel: kernel, group: group)
        groupFiles[id] = file
        return file
    }

    /// `open("/dev/vfio/devices/vfioN")` (`vfio_device_fops_cdev_open`): ENOENT for an unknown
    /// cdev; the file has no access until VFIO_DEVICE_BIND_IOMMUFD. EBUSY while the device is
    /// open through its group (`vfio_device_block_group` refuses at bind in Linux; the model
    /// refuses at open).
    public func openDevice(_ cdevName: String, process: UserProcess) throws(Errno) -> VFIODeviceFile {
        guard let vdev = devices.first(where: { $0.cdevName == cdevName }) else { throw .ENOENT }
        guard vdev.openFile == nil else { throw .EBUSY }
        let file = VFIODeviceFile(vdev: vdev, process: process, viaGroup: false)
        vdev.openFile = file
        return file
    }
}
