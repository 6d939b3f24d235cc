/// An open `/dev/vfio/vfio` (`struct vfio_container`, drivers/vfio/container.c): groups join it
/// with `VFIO_GROUP_SET_CONTAINER`, then `VFIO_SET_IOMMU` picks the IOMMU backend (type1) and
/// attaches every group; `VFIO_IOMMU_MAP_DMA` / `UNMAP_DMA` go to the backend.
public final class VFIOContainer {
    unowned(safe) let kernel: LinuxKernel
    public let process: UserProcess
    /// `container->group_list`.
    public internal(set) var groups: [VFIOGroupFile] = []
    /// `container->iommu_driver` + `iommu_data`.
    public internal(set) var type1: VFIOType1?

    /// `VFIO_TYPE1_IOMMU`, `VFIO_TYPE1v2_IOMMU` (include/uapi/linux/vfio.h).
    public static let type1IOMMU: UInt32 = 1
    public static let type1v2IOMMU: UInt32 = 3

    init(kernel: LinuxKernel, process: UserProcess) {
        self.kernel = kernel
        self.process = process
    }

    /// `VFIO_CHECK_EXTENSION` for the type1 backend (`vfio_iommu_type1_check_extension`).
    public func checkExtension(_ ext: UInt32) -> Int {
        ext == Self.type1IOMMU || ext == Self.type1v2IOMMU ? 1 : 0
    }

    /// `VFIO_SET_IOMMU` (`vfio_ioctl_set_iommu`): EINVAL without a group or with a backend
    /// already set ("only by adding a group to a container does the user get the privilege of
    /// enabling the iommu"); ENODEV for a type no backend supports; then
    /// `vfio_iommu_type1_open` and `__vfio_container_attach_groups` — if a group fails to attach
    /// (EPERM without isolated MSI), the backend is released and the container stays unset.
    public func setIOMMU(_ type: UInt32) throws(Errno) {
        guard !groups.isEmpty, type1 == nil else { throw .EINVAL }
        guard checkExtension(type) == 1 else { throw .ENODEV }
        let backend = VFIOType1(kernel: kernel, process: process, v2: type == Self.type1v2IOMMU)
        var attached: [VFIOGroupFile] = []
        for group in groups {
            do throws(Errno) {
                try backend.attachGroup(group.group)
                attached.append(group)
            } catch {
                for done in attached { backend.detachGroup(done.group) }
                throw error
            }
        }
        type1 = backend
    }

    /// `VFIO_IOMMU_MAP_DMA`. A container without a backend answers EINVAL (`vfio_fops_unl_ioctl`
    /// passes unknown ioctls to the driver only when one is set; `ret` starts at -EINVAL).
    public func mapDMA(flags: UInt32, vaddr: UInt64, iova: UInt64, size: UInt64, argsz: UInt32 = 32) throws(Errno) {
        guard let type1 else { throw .EINVAL }
        try type1.mapDMA(argsz: argsz, flags: flags, vaddr: vaddr, iova: iova, size: size)
    }

    /// `VFIO_IOMMU_UNMAP_DMA`: returns the bytes unmapped (written back into `size`).
    @discardableResult
    public func unmapDMA(flags: UInt32 = 0, iova: UInt64, size: UInt64, argsz: UInt32 = 24) throws(Errno) -> UInt64 {
        guard let type1 else { throw .EINVAL }
        return try type1.unmapDMA(argsz: argsz, flags: flags, iova: iova, size: size)
    }
}

/// An open `/dev/vfio/$GROUP` (`struct vfio_group`, drivers/vfio/group.c).
public final class VFIOGroupFile {
    unowned(safe) let kernel: LinuxKernel
    public let group: IOMMUGroup
    public internal(set) weak var container: VFIOContainer?
    public internal(set) var deviceFiles: [VFIODeviceFile] = []

    init(kernel: LinuxKernel, group: IOMMUGroup) {
        self.kernel = kernel
        self.group = group
    }

    /// `VFIO_GROUP_GET_STATUS`: VIABLE when the group is in a container, or when nobody has
    /// claimed its DMA ownership (`iommu_group_dma_owner_claimed`).
    public var isViable: Bool { container != nil || !group.isDMAOwnerClaimed }

    /// `VFIO_GROUP_SET_CONTAINER` (`vfio_container_attach_group`): EINVAL if the group already
    /// has a container; `iommu_group_claim_dma_owner` (EBUSY when an iommufd or another
    /// container owns it) moves the group to its blocking domain; a container whose backend is
    /// already set attaches the group at once (and a failure releases the ownership again).
    public func setContainer(_ container: VFIOContainer) throws(Errno) {
        guard self.container == nil else { throw .EINVAL }
        try kernel.iommu.claimDMAOwner(group, owner: self)
        if let type1 = container.type1 {
            do throws(Errno) {
                try type1.attachGroup(group)
            } catch {
                kernel.iommu.releaseDMAOwner(group)
                throw error
            }
        }
        container.groups.append(self)
        self.container = container
    }

    /// `VFIO_GROUP_UNSET_CONTAINER`: EINVAL without a container, EBUSY while a device is open.
    public func unsetContainer() throws(Errno) {
        guard let container else { throw .EINVAL }
        guard deviceFiles.allSatisfy({ $0.isClosed }) else { throw .EBUSY }
        container.type1?.detachGroup(group)
        container.groups.removeAll { $0 === self }
        if container.groups.isEmpty { container.type1 = nil }
        kernel.iommu.releaseDMAOwner(group)
        self.container = nil
    }

    /// `VFIO_GROUP_GET_DEVICE_FD(name)`: ENODEV for a name not in the group (or not bound to
    /// vfio-pci); EINVAL until the group's container has an IOMMU backend
    /// (`vfio_device_group_open`: "!vfio_group_has_iommu"); EBUSY when the device is open
    /// already. Opening enables the function (`vfio_pci_core_enable`).
    public func getDeviceFD(_ name: String) throws(Errno) -> VFIODeviceFile {
        guard let vdev = kernel.vfio.devices.first(where: { $0.device.name == name && $0.device.iommu?.group === group }) else {
            throw .ENODEV
        }
        guard let container, container.type1 != nil else { throw .EINVAL }
        guard vdev.openFile == nil else { throw .EBUSY }
        try vdev.enable()
        let file = VFIODeviceFile(vdev: vdev, process: container.process, viaGroup: true)
        vdev.openFile = file
        deviceFiles.append(file)
        return file
    }
}
