import Bus

/// `enum iommufd_option` (include/uapi/linux/iommufd.h): the `option_id` of `IOMMU_OPTION`.
/// RLIMIT_MODE and HUGE_PAGES are upstream; SW_MSI_START/SIZE are Part-2 v2 4/7
/// (`KernelPatches.iommufdSWMSIWindow`). Ids outside the enum are representable (`init(rawValue:)`
/// accepts any value) because user space can send any number.
public struct IOMMUFDOption: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// IOMMU_OPTION_RLIMIT_MODE: 0 per-user, 1 per-process pinned-page accounting; object 0.
    public static let rlimitMode = IOMMUFDOption(rawValue: 0)
    /// IOMMU_OPTION_HUGE_PAGES: per IOAS, 1 (default) lets domains use large pages.
    public static let hugePages = IOMMUFDOption(rawValue: 1)
    /// IOMMU_OPTION_SW_MSI_START: per device, the base of the VMM's SW_MSI window (1 MiB aligned).
    public static let swMSIStart = IOMMUFDOption(rawValue: 2)
    /// IOMMU_OPTION_SW_MSI_SIZE: per device, the window's size in MiB (0: the driver's window).
    public static let swMSISize = IOMMUFDOption(rawValue: 3)
}

/// Pieces of the ioctl that upstream and Part-2 name.
extension IOMMUFD {
    /// `enum iommufd_option_ops`: IOMMU_OPTION_OP_SET = 0, IOMMU_OPTION_OP_GET = 1.
    enum OptionOp { case set, get }

    /// `SZ_1M`: Part-2's alignment and unit for the SW_MSI window.
    static let swMSIWindowUnit: UInt64 = 1 << 20

    /// `IOMMU_OPTION` with op SET (`iommufd_option`, drivers/iommu/iommufd/main.c): `__reserved`
    /// is 0 here; an option id the kernel does not know is EOPNOTSUPP (verified in main.c:
    /// "default: return -EOPNOTSUPP"), which is what an unpatched kernel answers for
    /// SW_MSI_START/SIZE.
    public func setOption(_ option: IOMMUFDOption, objectID: UInt32, value: UInt64) throws(Errno) {
        var v = value
        try handleOption(option, op: .set, objectID: objectID, value: &v)
    }

    /// `IOMMU_OPTION` with op GET: the option's value (`cmd->val64` copied back).
    public func getOption(_ option: IOMMUFDOption, objectID: UInt32) throws(Errno) -> UInt64 {
        var v: UInt64 = 0
        try handleOption(option, op: .get, objectID: objectID, value: &v)
        return v
    }

    func handleOption(_ option: IOMMUFDOption, op: OptionOp, objectID: UInt32, value: inout UInt64) throws(Errno) {
        switch option {
        case .rlimitMode:
            try optionRlimitMode(op: op, objectID: objectID, value: &value)
        case .hugePages:
            try optionHugePages(op: op, objectID: objectID, value: &value)
        case .swMSIStart, .swMSISize:
            guard kernel.configuration.patches.contains(.iommufdSWMSIWindow) else { throw .EOPNOTSUPP }
            try optionSWMSI(option, op: op, objectID: objectID, value: &value)
        default:
            throw .EOPNOTSUPP
        }
    }

    /// `iommufd_option_rlimit_mode` (ioas.c): object_id must be 0 (EOPNOTSUPP); GET answers 1
    /// for per-process (`IOPT_PAGES_ACCOUNT_MM`) accounting; SET needs CAP_SYS_RESOURCE — the
    /// model's VMM process is taken to have it — and a file without objects (EBUSY), and only
    /// 0 or 1 (EINVAL). The mode is stored; the model's pinning does not account pages.
    func optionRlimitMode(op: OptionOp, objectID: UInt32, value: inout UInt64) throws(Errno) {
        guard objectID == 0 else { throw .EOPNOTSUPP }
        switch op {
        case .get:
            value = accountPerProcess ? 1 : 0
        case .set:
            guard objects.count == 0 else { throw .EBUSY }
            guard value <= 1 else { throw .EINVAL }
            accountPerProcess = value == 1
        }
    }

    /// `iommufd_ioas_option` → `iommufd_ioas_option_huge_pages`: the object must be an IOAS
    /// (ENOENT otherwise); GET answers `!disable_large_pages`; SET 1 enables, SET 0 disables —
    /// refused (EINVAL) by `iopt_disable_large_pages` once the IOAS has both a domain and a
    /// mapping ("Won't do it if domains already have pages mapped in them") — anything else is
    /// EINVAL. Stored only: the model's domains map what the driver chooses either way.
    func optionHugePages(op: OptionOp, objectID: UInt32, value: inout UInt64) throws(Errno) {
        let ioas = try ioas(objectID)
        switch op {
        case .get:
            value = ioas.iopt.largePagesDisabled ? 0 : 1
        case .set:
            switch value {
            case 1: ioas.iopt.largePagesDisabled = false
            case 0:
                if ioas.iopt.largePagesDisabled { return }
                guard ioas.iopt.domains.isEmpty || ioas.iopt.areas.isEmpty else { throw .EINVAL }
                ioas.iopt.largePagesDisabled = true
            default: throw .EINVAL
            }
        }
    }

    /// `iommufd_option_sw_msi` (Part-2 v2 4/7, `6c36de14b00a…1760487869`), checks in the patch's
    /// order: the object must be a device of this file (`iommufd_get_device`: ENOENT); a device
    /// already attached answers EBUSY to GET as well as SET ("Device cannot enforce the sw_msi
    /// window if already attached"); GET START is the stored start (PHYS_ADDR_MAX = unset),
    /// GET SIZE is in MiB. SET START then `iommufd_option_sw_msi_test(start, size)`; SET SIZE
    /// takes MiB (EINVAL above `SIZE_MAX >> 20`) and is tested only when non-zero (0 reverts to
    /// the driver's window). The test: start or size not 1 MiB aligned → EINVAL (so SIZE before
    /// START fails: PHYS_ADDR_MAX is unaligned, as the uAPI says "must set START first"); the
    /// window, at least 1 MiB, wrapping → EOVERFLOW; overlapping any of the device's reserved
    /// regions other than SW_MSI and DIRECT_RELAXABLE → EADDRINUSE.
    func optionSWMSI(_ option: IOMMUFDOption, op: OptionOp, objectID: UInt32, value: inout UInt64) throws(Errno) {
        let idev = try device(objectID)
        guard idev.hwpt == nil else { throw .EBUSY }
        switch op {
        case .get:
            value = option == .swMSIStart ? idev.swMSIOptionStart : idev.swMSIOptionSize / Self.swMSIWindowUnit
        case .set:
            if option == .swMSIStart {
                try swMSIWindowTest(idev, start: value, size: idev.swMSIOptionSize)
                idev.swMSIOptionStart = value
            } else {
                guard value <= UInt64.max >> 20 else { throw .EINVAL }
                let size = value << 20
                if size != 0 { try swMSIWindowTest(idev, start: idev.swMSIOptionStart, size: size) }
                idev.swMSIOptionSize = size
            }
        }
    }

    /// `iommufd_option_sw_msi_test(idev, start, size)`.
    func swMSIWindowTest(_ idev: IOMMUFDDevice, start: UInt64, size: UInt64) throws(Errno) {
        let mask = Self.swMSIWindowUnit - 1
        guard start & mask == 0, size & mask == 0 else { throw .EINVAL }
        let (last, overflow) = start.addingReportingOverflow(max(size, Self.swMSIWindowUnit) - 1)
        guard !overflow else { throw .EOVERFLOW }
        for region in kernel.iommu.reservedRegions(for: idev.device) where region.type != .swMSI && region.type != .directRelaxable {
            if region.start <= last, region.end >= start {
                throw kernel.refusals.refuse(.EADDRINUSE, in: "iommufd_option_sw_msi_test", for: "SW_MSI window \(KernelRefusal.window(start, last))",
                    because: "it overlaps the device's \(region.type.rawValue) region \(KernelRefusal.window(region.start, region.end))")
            }
        }
    }

    /// The SW_MSI window a device's attach enforces with `.iommufdSWMSIWindow`: the option's
    /// [start, start + size) when a size is set, else nil (the driver's region).
    func swMSIWindowOverride(_ idev: IOMMUFDDevice) -> (start: UInt64, size: UInt64)? {
        guard kernel.configuration.patches.contains(.iommufdSWMSIWindow), idev.swMSIOptionSize != 0 else { return nil }
        return (idev.swMSIOptionStart, idev.swMSIOptionSize)
    }
}
