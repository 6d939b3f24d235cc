import Bus

/// The nesting uAPI of iommufd (v6.15): IOMMU_VIOMMU_ALLOC, IOMMU_VDEVICE_ALLOC, IOMMU_HWPT_ALLOC
/// on a vIOMMU or a nest-parent HWPT, IOMMU_HWPT_INVALIDATE, IOMMU_VEVENTQ_ALLOC and the
/// vEVENTQ file's read. Checked against drivers/iommu/iommufd/viommu.c
/// (`iommufd_viommu_alloc_ioctl`, `iommufd_vdevice_alloc_ioctl`), hw_pagetable.c
/// (`iommufd_hwpt_alloc`, `iommufd_hwpt_nested_alloc`, `iommufd_viommu_alloc_hwpt_nested`,
/// `iommufd_hwpt_invalidate`) and eventq.c (`iommufd_veventq_alloc`, `iommufd_veventq_fops_read`);
/// the errno order below is theirs.
///
/// Releases: ARM SMMUv3 nesting through a vIOMMU is in v6.14 (vIOMMU/vDEVICE objects since
/// v6.13). IOMMU_VEVENTQ_ALLOC (e36ba5ab808e) and the vmaster that forwards a device's stage-1
/// events (`KernelBehaviour.nestedVMaster`, f0ea207ed781) arrived in v6.15. On v6.14 the model
/// forwards no event (no vmaster), as v6.14 did; it still answers IOMMU_VEVENTQ_ALLOC with an
/// empty queue where v6.14 answered ENOTTY — the one v6.14 difference docs/kernel-releases.md
/// lists as not drawn, since the queue can then never receive anything.
extension IOMMUFD {
    func viommu(_ id: UInt32) throws(Errno) -> IOMMUFDVIOMMU {
        guard let viommu = try objects.get(id, type: .viommu) as? IOMMUFDVIOMMU else { throw .ENOENT }
        return viommu
    }

    // MARK: IOMMU_VIOMMU_ALLOC

    /// `IOMMU_VIOMMU_ALLOC(flags, type, dev_id, hwpt_id)` → `out_viommu_id`.
    /// flags ≠ 0 or type DEFAULT → EOPNOTSUPP; unknown device → ENOENT; the driver cannot nest
    /// (`get_viommu_size` 0: no FEAT_NESTING, or neither a coherent master nor S2FWB) →
    /// EOPNOTSUPP; `hwpt_id` not a paging HWPT → ENOENT; not a nest parent → EINVAL; then the
    /// driver's `arm_vsmmu_alloc`/`arm_vsmmu_init` (parent of another SMMU → EINVAL). The vIOMMU
    /// holds its parent HWPT.
    public func viommuAlloc(deviceID: UInt32, hwptID: UInt32, type: IOMMUVIOMMUType = .armSMMUv3, flags: UInt32 = 0) throws(Errno) -> UInt32 {
        guard flags == 0, type != .default else { throw .EOPNOTSUPP }
        let idev = try device(deviceID)
        guard let driver = kernel.iommu.driver(for: idev.device) else {
            if let smmu = kernel.iommu.ops(for: idev.device) as? ArmSMMUDriver {
                // arm-smmu (SMMUv2): `arm_smmu_ops` have no `viommu_alloc`/`get_viommu_size`.
                throw kernel.refusals.refuse(.EOPNOTSUPP, in: "iommufd_viommu_alloc_ioctl", for: idev.device.name,
                                             because: "\(smmu.name) is an SMMUv2 driven by arm-smmu, which has no viommu_alloc: Linux has no nested translation for SMMUv2")
            }
            throw .EOPNOTSUPP
        }
        guard driver.viommuSupported(for: idev.device, type: type) else { throw .EOPNOTSUPP }
        guard let parent = try objects.get(hwptID, type: .hwptPaging) as? IOMMUFDHWPTPaging else { throw .ENOENT }
        guard parent.isNestParent else { throw .EINVAL }
        let vsmmu = try driver.vsmmuAlloc(parent: parent.domain, type: type)
        let viommu = IOMMUFDVIOMMU(viommuType: type, parent: parent, vsmmu: vsmmu)
        vsmmu.core = viommu
        _ = try objects.insert(viommu)
        parent.holders += 1
        kernel.log.log("iommufd", "viommu \(viommu.id): \(driver.name) on nest parent hwpt \(parent.id), vmid \(vsmmu.vmid.rawValue)")
        return viommu.id
    }

    // MARK: IOMMU_VDEVICE_ALLOC

    /// `IOMMU_VDEVICE_ALLOC(viommu_id, dev_id, virt_id)` → `out_vdevice_id`: the device's virtual
    /// ID in the VM (for ARM SMMUv3 the vSID the guest's commands and events use). virt_id above
    /// ULONG_MAX cannot happen on 64-bit; unknown vIOMMU or device → ENOENT; a device behind
    /// another physical IOMMU → EINVAL; a device that has a vDEVICE already, or a virt_id taken in
    /// this vIOMMU → EEXIST. The vDEVICE holds the vIOMMU and the device.
    public func vdeviceAlloc(viommuID: UInt32, deviceID: UInt32, virtualID: UInt64) throws(Errno) -> UInt32 {
        let viommu = try viommu(viommuID)
        let idev = try device(deviceID)
        guard kernel.iommu.driver(for: idev.device) === viommu.vsmmu.driver else { throw .EINVAL }
        guard idev.vdevice == nil else { throw .EEXIST }
        guard viommu.vdevices[virtualID] == nil else { throw .EEXIST }
        let vdev = IOMMUFDVDevice(viommu: viommu, idev: idev, virtualID: virtualID)
        _ = try objects.insert(vdev)
        viommu.vdevices[virtualID] = vdev
        viommu.holders += 1
        idev.holders += 1
        idev.vdevice = vdev
        return vdev.id
    }

    // MARK: IOMMU_HWPT_ALLOC for nested HWPTs

    /// `IOMMU_HWPT_ALLOC` with driver data given as 64-bit words (`struct iommu_hwpt_arm_smmuv3
    /// { __aligned_le64 ste[2]; }` for `.armSMMUv3`): on an IOAS as the byte form does; on a
    /// vIOMMU (`iommufd_viommu_alloc_hwpt_nested`) or a nest-parent paging HWPT
    /// (`iommufd_hwpt_nested_alloc`) a nested HWPT. Returns its id.
    public func hwptAlloc(deviceID: UInt32, ptID: UInt32, flags: HWPTAllocFlags = [], dataType: IOMMUHWPTDataType,
                          data: [UInt64]) throws(Errno) -> UInt32 {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(data.count * 8)
        for word in data { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(i * 8))) } }
        return try hwptAlloc(deviceID: deviceID, ptID: ptID, flags: flags, dataType: dataType.rawValue, data: bytes)
    }

    /// The nested branches of `iommufd_hwpt_alloc` (called from `hwptAlloc` once the device,
    /// the data type/length pairing and the pt object are checked):
    /// - on a vIOMMU: the device must sit behind the vIOMMU's SMMU (EINVAL); flags other than
    ///   FAULT_ID_VALID → EOPNOTSUPP (FAULT_ID_VALID itself is EOPNOTSUPP in this model, fault
    ///   objects are not modelled); no data → EOPNOTSUPP; then `arm_vsmmu_alloc_domain_nested`.
    /// - on a paging HWPT (`iommufd_hwpt_nested_alloc`): arm-smmu-v3 has no
    ///   `domain_alloc_nested` op (it nests only through a vIOMMU) → EOPNOTSUPP, checked before
    ///   the parent's auto-domain/nest-parent test.
    /// v6.15: the nested domain gets iommufd's cookie (`cookie_type = IOMMU_COOKIE_IOMMUFD`), so
    /// `iommu_dma_prepare_msi` reaches `iommufd_sw_msi`, which maps into the parent.
    func hwptNestedAlloc(idev: IOMMUFDDevice, target: IOMMUFDObject, flags: HWPTAllocFlags, dataType: UInt32,
                         data: [UInt8]) throws(Errno) -> UInt32 {
        if target is IOMMUFDHWPTPaging { throw .EOPNOTSUPP }
        guard let viommu = target as? IOMMUFDVIOMMU else { throw .EINVAL }
        guard kernel.iommu.driver(for: idev.device) === viommu.vsmmu.driver else { throw .EINVAL }
        guard flags.rawValue & ~HWPTAllocFlags.faultIDValid.rawValue == 0 else { throw .EOPNOTSUPP }
        guard !data.isEmpty else { throw .EOPNOTSUPP }
        if flags.contains(.faultIDValid) { throw .EOPNOTSUPP }
        // iommu_copy_struct_from_user(&arg, user_data, IOMMU_HWPT_DATA_ARM_SMMUV3, ste):
        // wrong type → EINVAL, shorter than ste[2] → EINVAL, longer with non-zero tail → E2BIG.
        guard dataType == IOMMUHWPTDataType.armSMMUv3.rawValue else { throw .EINVAL }
        guard data.count >= 16 else { throw .EINVAL }
        guard data[16...].allSatisfy({ $0 == 0 }) else { throw .E2BIG }
        var ste: [UInt64] = [0, 0]
        for i in 0..<16 { ste[i / 8] |= UInt64(data[i]) << UInt64((i % 8) * 8) }
        let domain = try viommu.vsmmu.allocDomainNested(flags: 0, ste: ste)
        let hwpt = IOMMUFDHWPTNested(domain: domain, parent: viommu.parent, viommu: viommu)
        if kernel.configuration.has(.nativeSWMSI) { domain.cookie = .iommufd(hwpt) }
        _ = try objects.insert(hwpt)
        viommu.holders += 1
        kernel.log.log("iommufd", "hwpt \(hwpt.id): nested domain \(domain.id) on viommu \(viommu.id) (parent hwpt \(viommu.parent.id))")
        return hwpt.id
    }

    // MARK: IOMMU_HWPT_INVALIDATE

    /// `IOMMU_HWPT_INVALIDATE(hwpt_id, data_type, entry_len, entry_num)`: `entryNum` goes in as
    /// the number of entries and comes back as the number handled, also when an error is
    /// thrown (the index of the failing entry). entries with a zero entry_len → EINVAL; unknown
    /// id → ENOENT; a nested HWPT whose domain has no `cache_invalidate_user` (arm-smmu-v3's
    /// nested domains have none: invalidation goes through the vIOMMU) → EOPNOTSUPP; a vIOMMU →
    /// its driver's `cache_invalidate`; any other object → EINVAL.
    public func hwptInvalidate(hwptID: UInt32, dataType: UInt32, entryLength: UInt32 = 16,
                               commands: [(UInt64, UInt64)], entryNum: inout UInt32) throws(Errno) {
        let count = Int(entryNum)
        entryNum = 0
        if count > 0 && entryLength == 0 { throw .EINVAL }
        let target = try objects.get(hwptID)
        if target is IOMMUFDHWPTNested { throw .EOPNOTSUPP }
        guard let viommu = target as? IOMMUFDVIOMMU else { throw .EINVAL }
        var done = 0
        defer { entryNum = UInt32(truncatingIfNeeded: done) }
        // iommu_copy_struct_from_full_user_array: type mismatch → EINVAL; an entry shorter than
        // the 16-byte command → EINVAL; entries beyond the user array fault the copy → EFAULT.
        guard dataType == Self.viommuInvalidateDataARMSMMUv3 else { throw .EINVAL }
        guard count == 0 || entryLength >= 16 else { throw .EINVAL }
        guard count <= commands.count else { throw .EFAULT }
        try viommu.vsmmu.cacheInvalidate(Array(commands.prefix(count)), done: &done)
    }

    /// IOMMU_HWPT_INVALIDATE on a vIOMMU with ARM SMMUv3 commands (the VMM's forwarding path):
    /// returns how many were handled; on error throws it (the failing index is the count
    /// `hwptInvalidate(hwptID:…entryNum:)` reports).
    @discardableResult
    public func hwptInvalidate(viommuID: UInt32, commands: [(UInt64, UInt64)]) throws(Errno) -> Int {
        var entryNum = UInt32(truncatingIfNeeded: commands.count)
        try hwptInvalidate(hwptID: viommuID, dataType: Self.viommuInvalidateDataARMSMMUv3, commands: commands, entryNum: &entryNum)
        return Int(entryNum)
    }

    // MARK: IOMMU_VEVENTQ_ALLOC / read

    /// `IOMMU_VEVENTQ_ALLOC(flags, viommu_id, type, veventq_depth)` → (`out_veventq_id`,
    /// `out_veventq_fd`). flags, __reserved or type DEFAULT → EOPNOTSUPP; depth 0 → EINVAL;
    /// unknown vIOMMU → ENOENT; a queue of that type on the vIOMMU already → EEXIST. The queue
    /// holds the vIOMMU.
    public func veventqAlloc(viommuID: UInt32, type: IOMMUVEventQueueType = .armSMMUv3, depth: UInt32 = 64,
                             flags: UInt32 = 0) throws(Errno) -> (id: UInt32, fd: Int32) {
        guard flags == 0, type != .default else { throw .EOPNOTSUPP }
        guard depth != 0 else { throw .EINVAL }
        let viommu = try viommu(viommuID)
        guard !viommu.veventQueues.contains(where: { $0.queueType == type }) else { throw .EEXIST }
        let fd = process.openOtherFile("[iommufd-viommu-event]")
        let queue = IOMMUFDVEventQueue(viommu: viommu, type: type, depth: depth, fd: fd)
        do throws(Errno) {
            _ = try objects.insert(queue)
        } catch {
            try? process.close(fd)
            throw error
        }
        viommu.veventQueues.append(queue)
        viommu.holders += 1
        return (queue.id, fd)
    }

    /// `read()` on a vEVENTQ file: the pending records, oldest first (see
    /// `IOMMUFDVEventQueue.read`). ENOENT for an id that is not a vEVENTQ.
    public func veventqRead(_ veventqID: UInt32, maxBytes: Int = .max) throws(Errno) -> [IOMMUFDVEvent] {
        guard let queue = try objects.get(veventqID, type: .veventq) as? IOMMUFDVEventQueue else { throw .ENOENT }
        return try queue.read(maxBytes: maxBytes)
    }
}

/// What IOMMU_GET_HW_INFO returns for an ARM SMMUv3 device: `struct iommu_hw_info` with
/// `out_data_type = IOMMU_HW_INFO_TYPE_ARM_SMMUV3` (2) and the data `struct
/// iommu_hw_info_arm_smmuv3 { __u32 flags; __u32 __reserved; __u32 idr[6]; __u32 iidr; __u32
/// aidr; }` — the physical SMMU's registers, raw. The uAPI header tells the VMM which IDR fields
/// it may derive its vSMMU's from; the kernel does not filter them.
public struct IOMMUHWInfoARMSMMUv3: Hashable, Sendable {
    /// IOMMU_HW_INFO_TYPE_ARM_SMMUV3.
    public static let dataType: UInt32 = 2
    public var flags: UInt32 = 0
    public var idr: [UInt32]
    public var iidr: UInt32
    public var aidr: UInt32
    /// `out_capabilities`: IOMMU_HW_CAP_DIRTY_TRACKING (bit 0) only with HTTU dirty support,
    /// which arm-smmu-v3 reports through `arm_smmu_capable(IOMMU_CAP_DIRTY_TRACKING)`; the
    /// model's SMMU driver does not do dirty tracking, so 0.
    public var capabilities: UInt64 = 0
    /// `out_max_pasid_log2`: the master's `ssid_bits` (0: no PASID for the model's functions).
    public var maxPASIDLog2: UInt8 = 0

    /// The struct as userspace holds it (also what a VMM test hands its checks).
    public init(idr: [UInt32], iidr: UInt32, aidr: UInt32) {
        self.idr = idr
        self.iidr = iidr
        self.aidr = aidr
    }
}

extension IOMMUFD {
    /// `IOMMU_GET_HW_INFO(dev_id)` (`iommufd_get_hw_info`): flags or __reserved → EOPNOTSUPP,
    /// unknown device → ENOENT, then the driver's `arm_smmu_hw_info`.
    public func getHWInfo(deviceID: UInt32, flags: UInt32 = 0) throws(Errno) -> IOMMUHWInfoARMSMMUv3 {
        guard flags == 0 else { throw .EOPNOTSUPP }
        let idev = try device(deviceID)
        guard let driver = kernel.iommu.driver(for: idev.device) else { throw .ENODEV }
        return try driver.hwInfo()
    }
}
