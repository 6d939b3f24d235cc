import Bus
import GIC

// KVM_DEV_ARM_ITS_SAVE_TABLES and KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES (source side of a
// migration), as arch/arm64/kvm/vgic/vgic-its.c and vgic-v3.c do them in v6.15 and v6.19 (the
// functions are the same in v6.14; the entry helpers `vgic_its_{read,write}_entry_lock` date
// from v6.13).

extension KVMVGIC {
    /// `kvm_read_guest_lock` / `kvm_write_guest_lock` of guest RAM: -EFAULT when the bytes are
    /// not in a memory slot (the vGIC's own MMIO frames are not memory).
    func readGuest(_ address: UInt64, size: Int) throws(Errno) -> UInt64 {
        let a = PhysicalAddress(address)
        guard address < SystemBus.physicalAddressLimit, guestBus.isRAM(a, size: UInt64(size)) else { throw .EFAULT }
        do { return try guestBus.read(a, size: size, requester: .hardware) } catch { throw .EFAULT }
    }

    func writeGuest(_ address: UInt64, size: Int, value: UInt64) throws(Errno) {
        let a = PhysicalAddress(address)
        guard address < SystemBus.physicalAddressLimit, guestBus.isRAM(a, size: UInt64(size)) else { throw .EFAULT }
        do { try guestBus.write(a, size: size, value: value, requester: .hardware) } catch { throw .EFAULT }
    }

    /// `kvm_is_visible_gfn` of the page holding `address`.
    func isVisible(_ address: UInt64) -> Bool {
        address < SystemBus.physicalAddressLimit && guestBus.isRAM(PhysicalAddress(address & ~0xFFF), size: 0x1000)
    }

    /// `vgic_its_check_id`: the guest-RAM address of entry `id` in the table `baser` describes,
    /// or nil when the ID is out of range (DeviceID > VITS_MAX_DEVID for the device table; ICID
    /// ≥ 2^16 for the collection table, GITS_TYPER.CIL being 0), beyond the table, behind an
    /// invalid or unreadable level-1 entry, or not in guest RAM.
    ///
    /// KVM's GITS_BASER always holds 64 KiB pages (`vgic_sanitise_its_baser`) and its decode
    /// uses SZ_64K (`GITS_BASER_ADDR_48_to_52`, `GITS_BASER_NR_PAGES(baser) * SZ_64K`, level-2
    /// pages of SZ_64K, L1 address bits [51:16]); the model's vITS keeps the page size the guest
    /// wrote, so the register's own page size is used here — the same decode whenever the
    /// register holds what KVM would hold.
    public func checkID(_ raw: UInt64, _ id: UInt32) -> UInt64? {
        let baser = GITSBaser(rawValue: raw)
        switch baser.type {
        case GITSBaser.TableType.devices: guard id < UInt32(1) << KVMITSABI.deviceIDBits else { return nil }
        case GITSBaser.TableType.collections: guard id < 1 << 16 else { return nil }
        default: return nil
        }
        let esz = baser.entrySize
        let tableBytes = baser.pageCount &* baser.pageSize
        let base = baser.physicalAddress.rawValue
        let address: UInt64
        if !baser.indirect {
            guard UInt64(id) < tableBytes / esz else { return nil }
            address = base &+ UInt64(id) &* esz
        } else {
            let perPage = baser.pageSize / esz
            let index = UInt64(id) / perPage
            guard index < tableBytes / 8, let l1 = try? readGuest(base &+ index &* 8, size: 8), l1.bit(63) else { return nil }
            address = l1.keepingBits(51, 16) &+ (UInt64(id) % perPage) &* esz
        }
        return isVisible(address) ? address : nil
    }

    /// KVM_DEV_ARM_ITS_SAVE_TABLES (`vgic_its_ctrl` → `vgic_its_save_tables_v0`): the device
    /// table with every ITT, then the collection table, written into guest RAM in the ABI rev 0
    /// formats (`KVMITSABI`).
    ///
    /// `vgic_its_save_device_tables` (nothing when GITS_BASER0.Valid=0): sorts the device list
    /// by DeviceID (`list_sort`, so the list keeps that order), and for each device finds its
    /// DTE slot (`vgic_its_check_id`, else -EINVAL), writes its ITT — the ITE list sorted by
    /// EventID, each ITE at ITT + EventID × 8 (`vgic_its_save_itt`) — then its DTE. The
    /// collection table (`vgic_its_save_collection_table`, nothing when GITS_BASER1.Valid=0):
    /// one CTE per collection in list order from the table base, then an invalid (zero) entry
    /// unless the table is exactly full. Writes outside guest RAM fail with -EFAULT. (-EACCES
    /// for a GICv4-forwarded LPI does not arise: the vITS exposes no GICv4.)
    public func saveITSTables() throws(Errno) {
        guard let its, let lists = itsLists else { throw .ENXIO }
        let deviceBaser = its.baser[0]
        if deviceBaser.bit(63) {
            lists.devices.sort { $0.deviceID < $1.deviceID }
            for index in lists.devices.indices {
                lists.devices[index].events.sort { $0.eventID < $1.eventID }
                let device = lists.devices[index]
                guard let slot = checkID(deviceBaser, device.deviceID) else { throw .EINVAL }
                for (k, event) in device.events.enumerated() {
                    let next = k + 1 < device.events.count
                        ? min(device.events[k + 1].eventID &- event.eventID, KVMITSABI.maxEventIDOffset) : 0
                    let entry = KVMITSTranslationEntry(next: next, pINTID: event.intid, icid: event.icid)
                    try writeGuest(device.ittAddress &+ UInt64(event.eventID) &* KVMITSABI.entrySize, size: 8, value: entry.rawValue)
                }
                let next = index + 1 < lists.devices.count
                    ? min(lists.devices[index + 1].deviceID &- device.deviceID, KVMITSABI.maxDeviceIDOffset) : 0
                let dte = KVMITSDeviceEntry(valid: true, next: next, ittAddress: device.ittAddress,
                                            size: UInt8(truncatingIfNeeded: device.eventIDBits - 1))
                try writeGuest(slot, size: 8, value: dte.rawValue)
            }
        }
        let collectionBaser = GITSBaser(rawValue: its.baser[1])
        guard collectionBaser.valid else { return }
        var address = collectionBaser.physicalAddress.rawValue
        let maxSize = collectionBaser.pageCount &* collectionBaser.pageSize
        var filled: UInt64 = 0
        for collection in lists.collections {
            let cte = KVMITSCollectionEntry(valid: true, target: collection.target, icid: collection.icid)
            try writeGuest(address, size: 8, value: cte.rawValue)
            address &+= KVMITSABI.entrySize
            filled &+= KVMITSABI.entrySize
        }
        if filled == maxSize { return }
        try writeGuest(address, size: 8, value: 0)
    }

    /// The vITS's LPIs as KVM holds them (`dist->lpi_xa`, one `vgic_irq` per LPI that an ITE
    /// maps): INTID → target vCPU, nil while the ITE's collection is not mapped
    /// (`vgic_add_lpi` with no vCPU). Ascending INTID, the order `xa_for_each` visits.
    func lpiTargets() -> [(intid: UInt32, vcpu: Int?)] {
        guard let lists = itsLists else { return [] }
        var targets: [UInt32: Int?] = [:]
        for device in lists.devices {
            for event in device.events {
                let collection = lists.collections.first { $0.icid == event.icid }
                targets[event.intid] = collection.flatMap { $0.isMapped ? Int($0.target) : nil }
            }
        }
        return targets.keys.sorted().map { ($0, targets[$0] ?? nil) }
    }

    /// KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES (`vgic_v3_save_pending_tables`): for every LPI with
    /// a target vCPU, the bit INTID of that vCPU's pending table (GICR_PENDBASER) is made to
    /// say whether the LPI is pending — read the byte, write it back only if the bit differs.
    /// -EFAULT when the byte is not in guest RAM.
    ///
    /// The model's redistributors already write their pending bits through to the table on
    /// every change (QEMU's behaviour; KVM keeps them in `vgic_irq.pending_latch`), so this
    /// normally finds every bit right and writes nothing.
    public func savePendingTables() throws(Errno) {
        for (intid, vcpu) in lpiTargets() {
            guard let vcpu, vcpu < gic.redistributors.count else { continue }
            let rd = gic.redistributors[vcpu]
            let address = rd.pendbaser.physicalAddress.rawValue &+ UInt64(intid / 8)
            let byte = try readGuest(address, size: 1)
            let mask = UInt64(1) << UInt64(intid % 8)
            let pending = rd.isPending(INTID(intid))
            guard (byte & mask != 0) != pending else { continue }
            try writeGuest(address, size: 1, value: pending ? byte | mask : byte & ~mask)
        }
    }
}
