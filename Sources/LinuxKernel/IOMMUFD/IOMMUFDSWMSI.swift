import Bus

/// `struct iommufd_sw_msi_maps` (drivers/iommu/iommufd/iommufd_private.h, v6.15):
/// `DECLARE_BITMAP(bitmap, 64)` of sw_msi map ids. A HWPT keeps the ids already mapped in its
/// domain (`present_sw_msi`); a device group keeps the ids its MSIs use (`required_sw_msi`).
public struct SWMSIBitmap: Hashable, Sendable {
    public private(set) var bits: UInt64 = 0
    public init() {}
    public func contains(_ id: Int) -> Bool { id >= 0 && id < 64 && bits & (1 << UInt64(id)) != 0 }
    mutating func insert(_ id: Int) {
        guard id >= 0, id < 64 else { return }
        bits |= 1 << UInt64(id)
    }
    /// The ids set, ascending.
    public var ids: [Int] { (0..<64).filter { contains($0) } }
}

/// `struct iommufd_sw_msi_map`: one doorbell page known to an iommufd file, at a fixed IOVA
/// `swMSIStart + pgoff × PAGE_SIZE` in every domain of the file that needs it.
public struct IOMMUFDSWMSIMap: Hashable, Sendable {
    /// `sw_msi_start`: the base of the SW_MSI window the map belongs to.
    public var swMSIStart: UInt64
    /// `msi_addr`: the doorbell page (page aligned).
    public var msiAddress: UInt64
    /// `pgoff`: the page's slot inside the window.
    public var pageOffset: UInt32
    /// `id`: the bit in the `iommufd_sw_msi_maps` bitmaps.
    public var id: Int
    /// `PAGE_SIZE` of the kernel that made the map: the page mapped, and the pgoff step.
    public var pageSize: UInt64

    /// The IOVA the doorbell page is mapped at: `sw_msi_start + pgoff * PAGE_SIZE`
    /// (`iommufd_sw_msi_install`, `iommufd_sw_msi`).
    public var iova: UInt64 { swMSIStart &+ UInt64(pageOffset) &* pageSize }
}

/// `ictx->sw_msi_list` with `ictx->sw_msi_id` (drivers/iommu/iommufd/driver.c, v6.15).
public struct IOMMUFDSWMSITable: Hashable, Sendable {
    /// `PAGE_SIZE` of the kernel owning the file: each map is one page, `msi_addr & PAGE_MASK`,
    /// at `pgoff * PAGE_SIZE` in the window.
    public let pageSize: UInt64
    /// `BITS_PER_BYTE * sizeof_field(struct iommufd_sw_msi_maps, bitmap)`.
    public static let capacity = 64

    /// In creation order (`list_add_tail`).
    public private(set) var maps: [IOMMUFDSWMSIMap] = []
    /// `sw_msi_id`: the next id; ids are never reused while the file is open.
    public private(set) var nextID = 0

    public init(pageSize: UInt64 = Granule.size4K.size) {
        self.pageSize = pageSize
    }

    /// `PAGE_SHIFT`: the shift `iommufd_sw_msi` gives `msi_desc_set_iommu_msi_iova`.
    public var pageShift: Int { pageSize.trailingZeroBitCount }

    /// `iommufd_sw_msi_get_map(ictx, msi_addr, sw_msi_start)`: the existing map of this page in
    /// this window, else a new one whose pgoff is one past the largest pgoff used in the window.
    /// EOVERFLOW once 64 ids exist (the 65th distinct doorbell page). The pgoff is not checked
    /// against the window's length: Linux does not bound it (verified in
    /// drivers/iommu/iommufd/driver.c `iommufd_sw_msi_get_map`, which checks only the id count).
    mutating func getMap(msiAddress: UInt64, swMSIStart: UInt64) throws(Errno) -> IOMMUFDSWMSIMap {
        var maxPageOffset: UInt32 = 0
        for map in maps where map.swMSIStart == swMSIStart {
            maxPageOffset = max(maxPageOffset, map.pageOffset &+ 1)
            if map.msiAddress == msiAddress { return map }
        }
        guard nextID < Self.capacity else { throw .EOVERFLOW }
        let map = IOMMUFDSWMSIMap(swMSIStart: swMSIStart, msiAddress: msiAddress, pageOffset: maxPageOffset, id: nextID,
                                  pageSize: pageSize)
        nextID += 1
        maps.append(map)
        return map
    }
}
