import Bus

/// `IOMMU_READ`, `IOMMU_WRITE`, … (include/linux/iommu.h): what a mapping allows.
public struct IOMMUProtection: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let read = IOMMUProtection(rawValue: 1 << 0)
    public static let write = IOMMUProtection(rawValue: 1 << 1)
    public static let cache = IOMMUProtection(rawValue: 1 << 2)
    public static let noExec = IOMMUProtection(rawValue: 1 << 3)
    public static let mmio = IOMMUProtection(rawValue: 1 << 4)
    public static let priv = IOMMUProtection(rawValue: 1 << 5)
}

/// `IOMMU_DOMAIN_*` (include/linux/iommu.h).
public enum IOMMUDomainType: String, Hashable, Sendable {
    case blocked = "blocked"
    case identity = "identity"
    case unmanaged = "unmanaged"
    case dma = "DMA"
    case dmaFQ = "DMA-FQ"
    case nested = "nested"
}

/// `enum iommu_domain_cookie_type` (Robin Murphy's "iommu: Sort out domain user data", v6.15).
public enum IOMMUCookieType: String, Hashable, Sendable {
    case none = "IOMMU_COOKIE_NONE"
    case dmaIOVA = "IOMMU_COOKIE_DMA_IOVA"
    case dmaMSI = "IOMMU_COOKIE_DMA_MSI"
    case iommufd = "IOMMU_COOKIE_IOMMUFD"
}

/// `enum iommu_resv_type` with the names sysfs prints in `reserved_regions`
/// (drivers/iommu/iommu.c `iommu_group_resv_type_string`).
public enum ReservedRegionType: String, Hashable, Sendable, CaseIterable {
    case direct = "direct"
    case directRelaxable = "direct-relaxable"
    case reserved = "reserved"
    /// `IOMMU_RESV_MSI`: a hardware MSI window, untranslated.
    case msi = "msi"
    /// `IOMMU_RESV_SW_MSI`: where software maps MSI doorbells (sysfs also prints "msi").
    case swMSI = "sw-msi"

    /// The string sysfs prints.
    public var sysfsName: String { self == .swMSI ? "msi" : rawValue }
}

/// `struct iommu_resv_region`.
public struct ReservedRegion: Hashable, Sendable, CustomStringConvertible {
    public var start: UInt64
    public var length: UInt64
    public var protection: IOMMUProtection
    public var type: ReservedRegionType

    public init(start: UInt64, length: UInt64, protection: IOMMUProtection, type: ReservedRegionType) {
        self.start = start
        self.length = length
        self.protection = protection
        self.type = type
    }

    /// The last byte of the region.
    public var end: UInt64 { start &+ (length &- 1) }

    /// The line `/sys/kernel/iommu_groups/N/reserved_regions` shows: "0x%016llx 0x%016llx %s".
    public var description: String {
        "0x" + hex16(start) + " 0x" + hex16(end) + " " + type.sysfsName
    }
}

func hex16(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
}

/// `struct iommu_iotlb_gather`: the range an unmap touched, for the invalidation that follows.
public struct IOTLBGather: Hashable, Sendable {
    public var start: UInt64 = .max
    public var end: UInt64 = 0
    public var pageSize: UInt64 = 0
    /// Set when the flush queue defers the invalidation (lazy mode).
    public var queued = false
    public init() {}

    /// `iommu_iotlb_gather_add_range`.
    public mutating func add(iova: UInt64, size: UInt64) {
        start = min(start, iova)
        end = max(end, iova &+ (size &- 1))
    }
}

/// `struct iommu_domain_ops` for paging domains: what the IOMMU driver implements.
public protocol IOMMUDomainOperations: AnyObject {
    /// `map_pages`: map [iova, iova+size) to physical, in the domain's page sizes.
    func map(iova: UInt64, physical: PhysicalAddress, size: UInt64, protection: IOMMUProtection) throws(Errno)
    /// `unmap_pages`: returns the bytes unmapped; adds the range to `gather`.
    func unmap(iova: UInt64, size: UInt64, gather: inout IOTLBGather) -> UInt64
    /// `iotlb_sync`: invalidate what `gather` collected (TLBI by range + CMD_SYNC).
    func iotlbSync(_ gather: IOTLBGather)
    /// `flush_iotlb_all`.
    func flushIOTLBAll()
    /// `iova_to_phys`.
    func iovaToPhys(_ iova: UInt64) -> PhysicalAddress?
}

/// `struct iommu_domain`.
public final class IOMMUDomain {
    /// Set by the core after the driver allocates a paging domain (`iommu_domain_init`), and
    /// lowered from DMA-FQ to DMA when the flush queue cannot be set up (`iommu_dma_init_domain`).
    public internal(set) var type: IOMMUDomainType
    /// The driver that allocated it.
    public unowned(safe) let driver: any IOMMUDriver
    /// The paging operations; nil for the static identity and blocked domains. Set once, in
    /// `init`, or by a fork's clone after it has recorded the domain (the operations' attached
    /// masters lead back to it).
    public internal(set) var operations: (any IOMMUDomainOperations)?
    /// `pgsize_bitmap`: the page and block sizes the tables support.
    public var pageSizeBitmap: UInt64
    /// `geometry.aperture_start/end`.
    public var apertureStart: UInt64
    public var apertureEnd: UInt64
    /// `domain->cookie_type` and the union it selects.
    public var cookie: IOMMUCookie = .none
    /// Allocated with IOMMU_HWPT_ALLOC_NEST_PARENT (stage 2 for nesting).
    public var isNestParent = false
    /// A per-kernel sequence number, for reports.
    public let id: Int
    /// The driver's own object for this domain (`struct arm_smmu_domain`).
    public var driverData: AnyObject?

    public init(type: IOMMUDomainType, driver: any IOMMUDriver, operations: (any IOMMUDomainOperations)?,
                pageSizeBitmap: UInt64, apertureStart: UInt64 = 0, apertureEnd: UInt64 = .max, id: Int) {
        self.type = type
        self.driver = driver
        self.operations = operations
        self.pageSizeBitmap = pageSizeBitmap
        self.apertureStart = apertureStart
        self.apertureEnd = apertureEnd
        self.id = id
    }

    public var cookieType: IOMMUCookieType { cookie.type }

    /// Whether the domain translates with page tables (`iommu_is_dma_domain` or unmanaged).
    public var isPaging: Bool { operations != nil }
}

/// The union behind `domain->cookie_type`.
public enum IOMMUCookie {
    case none
    /// dma-iommu's cookie for DMA / DMA-FQ domains (IOVA allocator, MSI pages, flush queue).
    case dmaIOVA(IOMMUDMACookie)
    /// `iommu_get_msi_cookie`'s cookie for unmanaged domains (VFIO type1).
    case dmaMSI(IOMMUDMAMSICookie)
    /// iommufd's HWPT that owns the domain.
    case iommufd(AnyObject)

    public var type: IOMMUCookieType {
        switch self {
        case .none: .none
        case .dmaIOVA: .dmaIOVA
        case .dmaMSI: .dmaMSI
        case .iommufd: .iommufd
        }
    }
}

/// Flags of `domain_alloc_paging_flags` (IOMMU_HWPT_ALLOC_*).
public struct DomainAllocationFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// IOMMU_HWPT_ALLOC_NEST_PARENT: a stage-2 domain usable as a nesting parent.
    public static let nestParent = DomainAllocationFlags(rawValue: 1 << 0)
}

/// `struct iommu_ops`: what an IOMMU driver provides to the core.
public protocol IOMMUDriver: AnyObject {
    var name: String { get }
    /// The page sizes of domains this driver allocates (`pgsize_bitmap`).
    var pageSizeBitmap: UInt64 { get }
    /// `probe_device`: set up the driver's per-device state from `device.iommu` (the fwspec).
    func probeDevice(_ device: Device) throws(Errno)
    /// `def_domain_type`: a forced default domain type for this device, if any.
    func defaultDomainType(for device: Device) -> IOMMUDomainType?
    /// `domain_alloc_paging_flags`.
    func allocatePagingDomain(for device: Device, flags: DomainAllocationFlags) throws(Errno) -> IOMMUDomain
    /// The static `identity_domain` and `blocked_domain`.
    var identityDomain: IOMMUDomain { get }
    var blockedDomain: IOMMUDomain { get }
    /// `attach_dev`: make the device's STEs use `domain`.
    func attach(_ domain: IOMMUDomain, to device: Device) throws(Errno)
    /// `get_resv_regions`: the driver's SW_MSI window plus firmware regions
    /// (`iommu_dma_get_resv_regions`).
    func reservedRegions(for device: Device) -> [ReservedRegion]
}
