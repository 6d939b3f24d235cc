import Bus

/// The uAPI enums of nesting (include/uapi/linux/iommufd.h, v6.15): `enum iommu_viommu_type`,
/// `enum iommu_hwpt_data_type`, `enum iommu_hwpt_invalidate_data_type`,
/// `enum iommu_veventq_type`, `enum iommu_veventq_flag`.
public enum IOMMUVIOMMUType: UInt32, Hashable, Sendable {
    /// IOMMU_VIOMMU_TYPE_DEFAULT: refused by IOMMU_VIOMMU_ALLOC (EOPNOTSUPP).
    case `default` = 0
    /// IOMMU_VIOMMU_TYPE_ARM_SMMUV3.
    case armSMMUv3 = 1
}

/// `enum iommu_hwpt_data_type`.
public enum IOMMUHWPTDataType: UInt32, Hashable, Sendable {
    case none = 0
    case vtdS1 = 1
    /// IOMMU_HWPT_DATA_ARM_SMMUV3: `struct iommu_hwpt_arm_smmuv3 { __aligned_le64 ste[2]; }`.
    case armSMMUv3 = 2
}

/// `enum iommu_veventq_type`.
public enum IOMMUVEventQueueType: UInt32, Hashable, Sendable {
    case `default` = 0
    /// IOMMU_VEVENTQ_TYPE_ARM_SMMUV3: records are `struct iommu_vevent_arm_smmuv3 { __aligned_le64
    /// evt[4]; }`, the SMMU's event record with the StreamID replaced by the virtual one.
    case armSMMUv3 = 1
}

extension IOMMUFD {
    /// IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0, IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 = 1
    /// (`enum iommu_hwpt_invalidate_data_type`); an entry is `struct
    /// iommu_viommu_arm_smmuv3_invalidate { __aligned_le64 cmd[2]; }` (16 bytes).
    public static let viommuInvalidateDataARMSMMUv3: UInt32 = 1
    /// IOMMU_VEVENTQ_FLAG_LOST_EVENTS.
    public static let veventqFlagLostEvents: UInt32 = 1 << 0
}

/// `struct iommufd_viommu` with the ARM driver's `struct arm_vsmmu` behind it: a slice of the
/// physical SMMU given to one VM — the nest-parent stage 2 (whose VMID tags everything the VM's
/// devices do), the VM's virtual StreamIDs (`vdevs`) and its event queues.
public final class IOMMUFDVIOMMU: IOMMUFDObject {
    public let viommuType: IOMMUVIOMMUType
    /// `viommu->hwpt`: the nest-parent paging HWPT (held while the vIOMMU lives).
    public let parent: IOMMUFDHWPTPaging
    /// The driver's object (`struct arm_vsmmu`).
    public let vsmmu: ArmVSMMU
    /// `viommu->vdevs`: virtual ID → vDEVICE. Keyed lookups only.
    public internal(set) var vdevices: [UInt64: IOMMUFDVDevice] = [:]
    /// `viommu->veventqs`, in creation order.
    public internal(set) var veventQueues: [IOMMUFDVEventQueue] = []

    init(viommuType: IOMMUVIOMMUType, parent: IOMMUFDHWPTPaging, vsmmu: ArmVSMMU) {
        self.viommuType = viommuType
        self.parent = parent
        self.vsmmu = vsmmu
        super.init(type: .viommu)
    }

    /// `iommufd_viommu_destroy`: drops the parent HWPT.
    override func destroy() {
        parent.holders -= 1
    }

    /// `iommufd_viommu_find_dev(viommu, vdev_id)`.
    func findDevice(virtualID: UInt64) -> Device? { vdevices[virtualID]?.idev.device }

    /// `iommufd_viommu_get_vdev_id(viommu, dev)`: the virtual ID of the device's vDEVICE, or nil.
    func virtualID(of device: Device) -> UInt64? {
        vdevices.keys.sorted().first { vdevices[$0]?.idev.device === device }
    }

    /// `iommufd_viommu_report_event(viommu, type, data, len)` (driver.c, v6.15): the first event
    /// queue of that type gets the record; none → -EOPNOTSUPP (the driver then dumps the event
    /// itself). A full queue (`num_events == depth`) queues the lost-events header instead.
    func reportEvent(type: IOMMUVEventQueueType, data: [UInt64]) throws(Errno) {
        guard let queue = veventQueues.first(where: { $0.queueType == type }) else { throw .EOPNOTSUPP }
        queue.report(data)
    }
}

/// `struct iommufd_vdevice`: one device's virtual ID (for ARM SMMUv3, its virtual StreamID)
/// inside a vIOMMU.
public final class IOMMUFDVDevice: IOMMUFDObject {
    public unowned(safe) let viommu: IOMMUFDVIOMMU
    public let idev: IOMMUFDDevice
    /// `virt_id`.
    public let virtualID: UInt64

    init(viommu: IOMMUFDVIOMMU, idev: IOMMUFDDevice, virtualID: UInt64) {
        self.viommu = viommu
        self.idev = idev
        self.virtualID = virtualID
        super.init(type: .vdevice)
    }

    /// `iommufd_vdevice_destroy` → `iommufd_vdevice_abort`: out of the vIOMMU's table, the
    /// vIOMMU released, `idev->vdev` cleared.
    override func destroy() {
        if viommu.vdevices[virtualID] === self { viommu.vdevices[virtualID] = nil }
        viommu.holders -= 1
        idev.holders -= 1
        idev.vdevice = nil
    }
}

/// `struct iommufd_hwpt_nested`: a user-owned stage 1 (IOMMU_DOMAIN_NESTED) on a nest-parent
/// stage 2; for ARM SMMUv3 the domain carries the guest's STE words.
public final class IOMMUFDHWPTNested: IOMMUFDHWPT {
    /// `hwpt_nested->parent`.
    public let parent: IOMMUFDHWPTPaging
    /// `hwpt_nested->viommu` (nil when allocated directly on the parent HWPT).
    public let viommu: IOMMUFDVIOMMU?

    init(domain: IOMMUDomain, parent: IOMMUFDHWPTPaging, viommu: IOMMUFDVIOMMU?) {
        self.parent = parent
        self.viommu = viommu
        super.init(type: .hwptNested, domain: domain)
    }

    /// `find_hwpt_paging`: a nested HWPT's mappings and sw_msi pages live in its parent.
    override var pagingParent: IOMMUFDHWPTPaging? { parent }

    /// `iommufd_hwpt_nested_destroy`: the vIOMMU (or the parent) is released.
    /// `iommufd_hwpt_nested_destroy`: `iommu_domain_free` takes the domain, and its iommufd
    /// cookie (v6.15 native sw_msi) with it; a domain still naming this HWPT would keep both
    /// (and the vIOMMU) alive after IOMMU_DESTROY.
    override func destroy() {
        if let viommu { viommu.holders -= 1 } else { parent.holders -= 1 }
        if case .iommufd(let owner) = domain.cookie, owner === self { domain.cookie = .none }
    }
}

/// One record read from a vEVENTQ file: `struct iommufd_vevent_header { __u32 flags; __u32
/// sequence; }` followed by the type's data (none for the lost-events header).
public struct IOMMUFDVEvent: Hashable, Sendable {
    public var flags: UInt32
    public var sequence: UInt32
    public var data: [UInt64]
    public var lostEvents: Bool { flags & IOMMUFD.veventqFlagLostEvents != 0 }
}

/// `struct iommufd_veventq` (eventq.c, v6.15): a queue of vIOMMU events the VMM reads from an
/// anonymous file. Sequence numbers count every queued header modulo 2^31 (`& INT_MAX`); when
/// `depth` records wait unread, further events are dropped and one LOST_EVENTS header (moved to
/// the tail, its sequence refreshed each time) marks the gap (`iommufd_vevent_handler`).
public final class IOMMUFDVEventQueue: IOMMUFDObject {
    public unowned(safe) let viommu: IOMMUFDVIOMMU
    public let queueType: IOMMUVEventQueueType
    public let depth: UInt32
    /// `out_veventq_fd`: the file descriptor number the VMM polls (modelled as an id).
    public let fd: Int32
    var pending: [IOMMUFDVEvent] = []
    /// `veventq->sequence`.
    public private(set) var sequence: UInt32 = 0
    /// `veventq->num_events`: real records waiting (the lost-events header not counted).
    public private(set) var eventCount: UInt32 = 0

    init(viommu: IOMMUFDVIOMMU, type: IOMMUVEventQueueType, depth: UInt32, fd: Int32) {
        self.viommu = viommu
        self.queueType = type
        self.depth = depth
        self.fd = fd
        super.init(type: .veventq)
    }

    /// `iommufd_viommu_report_event` + `iommufd_vevent_handler`.
    func report(_ data: [UInt64]) {
        // The lost-events header leaves the tail when anything new is queued.
        if let last = pending.last, last.lostEvents { pending.removeLast() }
        let lost = eventCount == depth
        let event = IOMMUFDVEvent(flags: lost ? IOMMUFD.veventqFlagLostEvents : 0, sequence: sequence, data: lost ? [] : data)
        if !lost { eventCount += 1 }
        pending.append(event)
        sequence = (sequence &+ 1) & 0x7FFF_FFFF
    }

    /// `iommufd_veventq_fops_read`: every whole record that fits in `maxBytes`, oldest first. A
    /// record is the 8-byte header plus its data (none for the lost-events header); the first
    /// that does not fit is put back (`iommufd_veventq_deliver_restore`) and the read returns
    /// what it copied — 0 bytes, not an error, when not even the first fits (rc stays 0).
    /// (v6.15 compared `sizeof(hdr)`, a pointer, instead of `sizeof(*hdr)`; both are 8 on arm64.)
    public func read(maxBytes: Int = .max) throws(Errno) -> [IOMMUFDVEvent] {
        var out: [IOMMUFDVEvent] = []
        var used = 0
        while let first = pending.first {
            let size = 8 + first.data.count * 8
            if used + size > maxBytes { break }
            used += size
            out.append(first)
            pending.removeFirst()
            if !first.lostEvents { eventCount -= 1 }
        }
        return out
    }

    /// Records waiting (for poll).
    public var pendingCount: Int { pending.count }

    /// A forked queue's pending events, sequence and count: the fork reads what the original
    /// would (`IOMMUFD+Clone.swift`).
    func copyEvents(of other: IOMMUFDVEventQueue) {
        pending = other.pending
        sequence = other.sequence
        eventCount = other.eventCount
    }

    /// `iommufd_veventq_destroy`: pending records dropped, the vIOMMU released.
    override func destroy() {
        pending.removeAll()
        viommu.veventQueues.removeAll { $0 === self }
        viommu.holders -= 1
    }
}
