import Bus

/// drivers/iommu/iommufd: one instance per open /dev/iommu (`struct iommufd_ctx`,
/// `iommufd_fops_open`). It owns an object table (IOAS, HWPT, device ids), the per-iommu-group
/// state of the devices bound to it, and the file-wide table of software-managed MSI doorbell
/// pages (`sw_msi_list`, v6.15).
///
/// The user-visible ioctls are methods named after them (`ioasAlloc` = IOMMU_IOAS_ALLOC …); the
/// kernel-internal API VFIO uses for its cdev path (`iommufd_device_bind`, `…_attach`,
/// `…_replace`, `…_detach`, `…_unbind`) is in IOMMUFDDeviceAttach.swift. Opening the file loads
/// the module, which registers `iommufd_sw_msi` with the IOMMU core.
public final class IOMMUFD {
    unowned(safe) let kernel: LinuxKernel
    /// The process that opened the file: its memory is what IOMMU_IOAS_MAP pins
    /// (`ictx->account` / `current->mm`). Set it before mapping when a VMM process exists.
    public var process: UserProcess
    /// `ictx->objects`.
    public internal(set) var objects = IOMMUFDObjectTable()
    /// `ictx->groups`: one `iommufd_group` per iommu group with a bound device, by group id.
    var groups: [Int: IOMMUFDGroup] = [:]
    /// `ictx->sw_msi_list` / `sw_msi_id`.
    public internal(set) var swMSITable: IOMMUFDSWMSITable
    /// `ictx->account_mode == IOPT_PAGES_ACCOUNT_MM` (IOMMU_OPTION_RLIMIT_MODE 1).
    public internal(set) var accountPerProcess = false

    init(kernel: LinuxKernel) {
        self.kernel = kernel
        self.swMSITable = IOMMUFDSWMSITable(pageSize: kernel.pageSize)
        self.process = UserProcess(kernel: kernel)
        IOMMUFD.register(with: kernel)
    }

    /// A forked context on the kernel's copy: its process and SW_MSI table are the copies, and
    /// nothing is registered (the copied IOMMU core carries the SW_MSI hook already).
    init(kernel: LinuxKernel, process: UserProcess, swMSITable: IOMMUFDSWMSITable) {
        self.kernel = kernel
        self.process = process
        self.swMSITable = swMSITable
    }

    /// The last reference gone is the file's release (`iommufd_fops_release` destroys every
    /// object the file holds). The objects point at each other as Linux's do (a group's device
    /// list and each device's group, a group's HWPT, a paging domain's iommufd cookie naming its
    /// HWPT, a vIOMMU's vDEVICEs and vEVENTQs); those links are cut here so the objects go with
    /// the file instead of keeping one another alive. Only references are dropped: nothing is
    /// detached or unmapped in the kernel, whose own last reference is normally going too.
    deinit {
        for group in groups.values {
            group.hwpt = nil
            group.attachedDevices.removeAll()
        }
        for object in objects.objects.values {
            if let hwpt = object as? IOMMUFDHWPT, case .iommufd(let owner) = hwpt.domain.cookie, owner === hwpt {
                hwpt.domain.cookie = .none
            }
            if let viommu = object as? IOMMUFDVIOMMU {
                viommu.vdevices.removeAll()
                viommu.veventQueues.removeAll()
            }
        }
    }

    /// Module load: `iommu_dma_prepare_msi` reaches `iommufd_sw_msi` for IOMMUFD-cookie domains.
    static func register(with kernel: LinuxKernel) {
        guard kernel.iommu.iommufdSWMSI == nil else { return }
        kernel.iommu.iommufdSWMSI = swMSIHook(kernel: kernel)
    }

    /// The hook `register(with:)` installs: `iommufd_sw_msi` on `kernel`. A forked IOMMU core
    /// installs the same on its own kernel.
    static func swMSIHook(kernel: LinuxKernel) -> (IOMMUDomain, MSIDescriptor, UInt64) throws(Errno) -> Void {
        { [unowned kernel] (domain: IOMMUDomain, descriptor: MSIDescriptor, msiAddress: UInt64) throws(Errno) in
            try IOMMUFD.swMSI(kernel: kernel, domain: domain, descriptor: descriptor, msiAddress: msiAddress)
        }
    }

    // MARK: uAPI flags (include/uapi/linux/iommufd.h)

    /// `enum iommufd_ioas_map_flags`.
    public struct IOASMapFlags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let fixedIOVA = IOASMapFlags(rawValue: 1 << 0)
        public static let writeable = IOASMapFlags(rawValue: 1 << 1)
        public static let readable = IOASMapFlags(rawValue: 1 << 2)
    }

    /// `enum iommufd_hwpt_alloc_flags`.
    public struct HWPTAllocFlags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let nestParent = HWPTAllocFlags(rawValue: 1 << 0)
        public static let dirtyTracking = HWPTAllocFlags(rawValue: 1 << 1)
        public static let faultIDValid = HWPTAllocFlags(rawValue: 1 << 2)
        public static let pasid = HWPTAllocFlags(rawValue: 1 << 3)
    }

    /// `IOMMU_HWPT_DATA_NONE`; `IOMMUHWPTDataType.armSMMUv3` (= 2) for nested HWPTs.
    public static let hwptDataNone: UInt32 = 0

    // MARK: lookups

    func ioas(_ id: UInt32) throws(Errno) -> IOMMUFDIOAS {
        guard let ioas = try objects.get(id, type: .ioas) as? IOMMUFDIOAS else { throw .ENOENT }
        return ioas
    }

    func device(_ id: UInt32) throws(Errno) -> IOMMUFDDevice {
        guard let device = try objects.get(id, type: .device) as? IOMMUFDDevice else { throw .ENOENT }
        return device
    }

    /// The object with an id, of any type (`IOMMUFD_OBJ_ANY`).
    public func object(_ id: UInt32) -> IOMMUFDObject? { try? objects.get(id) }

    // MARK: IOMMU_IOAS_ALLOC / IOMMU_IOAS_MAP / IOMMU_IOAS_UNMAP (ioas.c)

    /// `IOMMU_IOAS_ALLOC` (`iommufd_ioas_alloc_ioctl`): a new, empty IOAS; returns its id.
    public func ioasAlloc(flags: UInt32 = 0) throws(Errno) -> UInt32 {
        guard flags == 0 else { throw .EOPNOTSUPP }
        return try objects.insert(IOMMUFDIOAS(process: process))
    }

    /// `IOMMU_IOAS_MAP` (`iommufd_ioas_map`): map the process's [userVA, userVA+length) into
    /// the IOAS at `iova` (with FIXED_IOVA) or at an IOVA the kernel picks; returns the IOVA.
    ///
    /// Errnos in the kernel's order: unknown flag bits → EOPNOTSUPP; iova or length ≥ ULONG_MAX →
    /// EOVERFLOW; neither READABLE nor WRITEABLE → EINVAL; unknown or non-IOAS id → ENOENT; then
    /// `iopt_map_user_pages`: zero length → EINVAL, length or fixed IOVA not aligned to the
    /// IOAS's page size → EINVAL, a fixed range touching a reserved IOVA → EINVAL, overlapping an
    /// existing mapping → EEXIST, no room → ENOSPC, unbacked user memory (with a domain
    /// attached) → EFAULT.
    public func ioasMap(ioasID: UInt32, flags: IOASMapFlags, userVA: UInt64, length: UInt64, iova: UInt64 = 0) throws(Errno) -> UInt64 {
        guard flags.rawValue & ~(IOASMapFlags.fixedIOVA.rawValue | IOASMapFlags.writeable.rawValue | IOASMapFlags.readable.rawValue) == 0 else {
            throw .EOPNOTSUPP
        }
        guard iova < UInt64.max, length < UInt64.max else { throw .EOVERFLOW }
        guard flags.contains(.writeable) || flags.contains(.readable) else { throw .EINVAL }
        let ioas = try ioas(ioasID)
        var protection: IOMMUProtection = []
        if flags.contains(.writeable) { protection.insert(.write) }
        if flags.contains(.readable) { protection.insert(.read) }
        return try ioas.iopt.mapUserPages(iova: flags.contains(.fixedIOVA) ? iova : nil, userVA: userVA,
                                          length: length, protection: protection)
    }

    /// `IOMMU_IOAS_UNMAP` (`iommufd_ioas_unmap`): iova 0 with length U64_MAX unmaps everything;
    /// else the range must cover whole mappings (ENOENT for a mapping that sticks out). Returns
    /// the bytes unmapped.
    public func ioasUnmap(ioasID: UInt32, iova: UInt64, length: UInt64) throws(Errno) -> UInt64 {
        let ioas = try ioas(ioasID)
        if iova == 0, length == UInt64.max { return try ioas.iopt.unmapAll() }
        guard iova < UInt64.max, length < UInt64.max else { throw .EOVERFLOW }
        return try ioas.iopt.unmap(iova: iova, length: length)
    }

    // MARK: IOMMU_HWPT_ALLOC (hw_pagetable.c)

    /// `IOMMU_HWPT_ALLOC` for a paging HWPT on an IOAS (`iommufd_hwpt_alloc` →
    /// `iommufd_hwpt_paging_alloc` with `immediate_attach` false). With NEST_PARENT the driver
    /// builds a stage-2 domain that nested HWPTs (`IOMMUFDHWPTNested`) use as their parent. Returns the
    /// HWPT id.
    ///
    /// EOPNOTSUPP for a non-zero `reserved`, for unknown flags, for DIRTY_TRACKING (the modelled
    /// SMMU does not report IOMMU_CAP_DIRTY_TRACKING) and for FAULT_ID_VALID (fault objects are
    /// not modelled); EINVAL for DATA_NONE with a data length, or data without a type; ENOENT
    /// for an unknown device or pt id; EINVAL when the pt id is neither an IOAS, a paging HWPT
    /// nor a vIOMMU. A vIOMMU (or paging HWPT) pt id goes to `hwptNestedAlloc`.
    public func hwptAlloc(deviceID: UInt32, ptID: UInt32, flags: HWPTAllocFlags = [], dataType: UInt32 = hwptDataNone,
                          data: [UInt8] = [], reserved: UInt32 = 0) throws(Errno) -> UInt32 {
        guard reserved == 0 else { throw .EOPNOTSUPP }
        if (dataType == Self.hwptDataNone && !data.isEmpty) || (dataType != Self.hwptDataNone && data.isEmpty) { throw .EINVAL }
        let idev = try device(deviceID)
        let target = try objects.get(ptID)
        guard let ioas = target as? IOMMUFDIOAS else {
            // Nested HWPTs: on a vIOMMU or a nest-parent paging HWPT (IOMMUFDVIOMMU.swift).
            return try hwptNestedAlloc(idev: idev, target: target, flags: flags, dataType: dataType, data: data)
        }
        guard dataType == Self.hwptDataNone else { throw .EINVAL }
        let hwpt = try hwptPagingAlloc(ioas: ioas, idev: idev, flags: flags, autoDomain: false)
        return hwpt.id
    }

    /// `iommufd_hwpt_paging_alloc(ictx, ioas, idev, flags, immediate_attach=false)`: the driver's
    /// paging domain with iommufd's cookie (`IOMMU_COOKIE_IOMMUFD`, `domain->iommufd_hwpt`),
    /// mirroring the IOAS (`iopt_table_add_domain`). The HWPT holds its IOAS.
    func hwptPagingAlloc(ioas: IOMMUFDIOAS, idev: IOMMUFDDevice, flags: HWPTAllocFlags, autoDomain: Bool) throws(Errno) -> IOMMUFDHWPTPaging {
        let valid: HWPTAllocFlags = [.nestParent, .dirtyTracking, .faultIDValid, .pasid]
        guard flags.rawValue & ~valid.rawValue == 0 else { throw .EOPNOTSUPP }
        if flags.contains(.dirtyTracking) || flags.contains(.faultIDValid) { throw .EOPNOTSUPP }
        var domainFlags: DomainAllocationFlags = []
        if flags.contains(.nestParent) { domainFlags.insert(.nestParent) }
        let domain = try kernel.iommu.allocateDomain(for: idev.device, flags: domainFlags)
        if flags.contains(.nestParent) { domain.isNestParent = true }
        let hwpt = IOMMUFDHWPTPaging(domain: domain, ioas: ioas, isAutoDomain: autoDomain, isNestParent: flags.contains(.nestParent))
        // v6.15 ("iommufd: Implement sw_msi support natively"): the domain carries iommufd's
        // cookie. Before, iommufd left the cookie to `iommu_get_msi_cookie` at attach time.
        if kernel.configuration.has(.nativeSWMSI) { domain.cookie = .iommufd(hwpt) }
        let id = try objects.insert(hwpt)
        do throws(Errno) {
            try ioas.iopt.addDomain(domain)
        } catch {
            objects.forget(hwpt)
            domain.cookie = .none
            throw error
        }
        _ = id
        ioas.holders += 1
        ioas.hwpts.append(hwpt)
        kernel.log.log("iommufd", "hwpt \(hwpt.id): \(domain.type.rawValue) domain \(domain.id) on ioas \(ioas.id)\(hwpt.isNestParent ? " (nest parent)" : "")")
        return hwpt
    }

    /// Frees a paging HWPT (`iommufd_hwpt_paging_destroy`): out of its IOAS, domain freed.
    func destroyHWPT(_ hwpt: IOMMUFDHWPTPaging) {
        hwpt.ioas.iopt.removeDomain(hwpt.domain)
        hwpt.ioas.hwpts.removeAll { $0 === hwpt }
        hwpt.ioas.holders -= 1
        kernel.iommu.putCookie(hwpt.domain)
        hwpt.domain.cookie = .none
        objects.forget(hwpt)
    }

    // MARK: IOMMU_DESTROY (main.c)

    /// `IOMMU_DESTROY` (`iommufd_destroy`): ENOENT for an unknown id, EBUSY while the object is
    /// in use (an IOAS with HWPTs, a HWPT with attached devices, a device VFIO holds).
    public func destroy(_ id: UInt32) throws(Errno) {
        guard let object = try? objects.get(id) else { throw .ENOENT }
        guard object.holders == 0 else { throw .EBUSY }
        if let hwpt = object as? IOMMUFDHWPTPaging {
            destroyHWPT(hwpt)
        } else {
            let removed = try objects.remove(id)
            removed.destroy()
        }
    }
}
