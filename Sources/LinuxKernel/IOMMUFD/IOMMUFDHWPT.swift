/// `struct iommufd_ioas` (drivers/iommu/iommufd/iommufd_private.h): an IOVA space the user
/// fills with `IOMMU_IOAS_MAP`, and the automatically created paging HWPTs that mirror it
/// (`hwpt_list`, the "auto domains" an attach to an IOAS reuses).
public final class IOMMUFDIOAS: IOMMUFDObject {
    public let iopt: IOPageTable
    /// `ioas->hwpt_list`, in creation order.
    public internal(set) var hwpts: [IOMMUFDHWPTPaging] = []

    init(process: UserProcess) {
        iopt = IOPageTable(process: process)
        super.init(type: .ioas)
    }

    /// A forked IOAS around its copied page table.
    init(iopt: IOPageTable) {
        self.iopt = iopt
        super.init(type: .ioas)
    }
}

/// `struct iommufd_hw_pagetable`: a user-visible wrapper of an `iommu_domain`. Two kinds: paging
/// (`IOMMUFDHWPTPaging`) and `IOMMUFD_OBJ_HWPT_NESTED` (`IOMMUFDHWPTNested`, a subclass whose
/// `pagingParent` is its stage-2 parent — `find_hwpt_paging` then maps sw_msi pages there).
public class IOMMUFDHWPT: IOMMUFDObject {
    public let domain: IOMMUDomain

    init(type: IOMMUFDObjectType, domain: IOMMUDomain) {
        self.domain = domain
        super.init(type: type)
    }

    /// `find_hwpt_paging(hwpt)`: the paging HWPT whose domain holds the IOVA → PA mappings and
    /// the sw_msi pages: itself for a paging HWPT, the parent for a nested one.
    var pagingParent: IOMMUFDHWPTPaging? { nil }
}

/// `struct iommufd_hwpt_paging`.
public final class IOMMUFDHWPTPaging: IOMMUFDHWPT {
    /// The IOAS whose areas the domain mirrors.
    public unowned(safe) let ioas: IOMMUFDIOAS
    /// Created by an attach to an IOAS (destroyed with its last device), not by IOMMU_HWPT_ALLOC.
    public let isAutoDomain: Bool
    /// Allocated with IOMMU_HWPT_ALLOC_NEST_PARENT.
    public let isNestParent: Bool
    /// `present_sw_msi`: the sw_msi maps already mapped in this domain (v6.15+).
    public internal(set) var presentSWMSI = SWMSIBitmap()
    /// `hwpt_paging->msi_cookie` (v6.14 and before): `iommu_get_msi_cookie` was called on the
    /// domain ("can only be called once per domain").
    public internal(set) var hasMSICookie = false

    init(domain: IOMMUDomain, ioas: IOMMUFDIOAS, isAutoDomain: Bool, isNestParent: Bool) {
        self.ioas = ioas
        self.isAutoDomain = isAutoDomain
        self.isNestParent = isNestParent
        super.init(type: .hwptPaging, domain: domain)
    }

    override var pagingParent: IOMMUFDHWPTPaging? { self }
}

/// `struct iommufd_group`: per iommufd file, per `iommu_group` — which HWPT the group is
/// attached to, its devices, the SW_MSI base its reserved regions gave, and the sw_msi maps its
/// MSIs use (`required_sw_msi`, v6.15 Part-1).
public final class IOMMUFDGroup {
    public let group: IOMMUGroup
    /// `attach->hwpt` for IOMMU_NO_PASID.
    public internal(set) var hwpt: IOMMUFDHWPT?
    /// The attached devices (`attach->device_array`), in attach order.
    public internal(set) var attachedDevices: [IOMMUFDDevice] = []
    /// `sw_msi_start`: PHYS_ADDR_MAX until a device's reserved regions name an SW_MSI window.
    public internal(set) var swMSIStart: UInt64 = .max
    public internal(set) var requiredSWMSI = SWMSIBitmap()

    init(group: IOMMUGroup) { self.group = group }
}

/// `struct iommufd_device`: a device bound to an iommufd file (`iommufd_device_bind`).
public final class IOMMUFDDevice: IOMMUFDObject {
    public let device: Device
    public let igroup: IOMMUFDGroup
    /// `idev->vdev`: the device's vDEVICE, if one was allocated (at most one).
    public internal(set) weak var vdevice: IOMMUFDVDevice?
    /// `idev->sw_msi_start` / `idev->sw_msi_size` as IOMMU_OPTION_SW_MSI_START/SIZE set them
    /// (`KernelPatches.iommufdSWMSIWindow`, Part-2 v2 1/7 and 4/7): PHYS_ADDR_MAX and 0 (bytes)
    /// until the VMM sets them; a size of 0 means "the driver's IOMMU_RESV_SW_MSI window".
    public internal(set) var swMSIOptionStart: UInt64 = .max
    public internal(set) var swMSIOptionSize: UInt64 = 0
    /// `idev->msi_iovas` / `num_msi_iovas` (`KernelPatches.iommufdMSIIOVA`, RFCv2 "iommufd/device:
    /// Allow setting IOVAs for MSI(x) vectors"): the guest IOVA of each MSI index, handed down
    /// by VFIO's ACTION_PREPARE. Keyed lookups only.
    public internal(set) var msiIOVAs: [Int: UInt64] = [:]
    public internal(set) var numberOfMSIIOVAs = 0

    init(device: Device, igroup: IOMMUFDGroup) {
        self.device = device
        self.igroup = igroup
        super.init(type: .device)
    }

    /// The HWPT the device is attached to, if any.
    public var hwpt: IOMMUFDHWPT? {
        igroup.attachedDevices.contains { $0 === self } ? igroup.hwpt : nil
    }
}

extension IOMMUFDDevice {
    /// `iommufd_device_set_num_msi_iovas(idev, num)`: `krealloc` to exactly `num` entries, new
    /// ones PHYS_ADDR_MAX (unset); shrinking drops the entries past the end.
    func setNumberOfMSIIOVAs(_ num: Int) {
        let n = max(num, 0)
        if n < numberOfMSIIOVAs {
            for index in n..<numberOfMSIIOVAs { msiIOVAs[index] = nil }
        }
        numberOfMSIIOVAs = n
    }

    /// `iommufd_device_set_msi_iova(idev, index, iova)`: EINVAL past `num_msi_iovas`.
    func setMSIIOVA(index: Int, iova: UInt64) throws(Errno) {
        guard index >= 0, index < numberOfMSIIOVAs else { throw .EINVAL }
        msiIOVAs[index] = iova
    }

    /// `iommufd_device_unset_msi_iova(idev, index)`: back to PHYS_ADDR_MAX; out of range is a
    /// no-op.
    func unsetMSIIOVA(index: Int) {
        guard index >= 0, index < numberOfMSIIOVAs else { return }
        msiIOVAs[index] = nil
    }
}
