import Bus
import GIC

// KVM_DEV_ARM_ITS_RESTORE_TABLES (destination side of a migration): `vgic_its_restore_tables_v0`
// and its helpers in arch/arm64/kvm/vgic/vgic-its.c, the same in v6.14, v6.15 and v6.19.
// Errors as Documentation/virt/kvm/devices/arm-vgic-its.rst lists them: -EINVAL for inconsistent
// restored data, -EFAULT for an invalid guest RAM access, -EEXIST for a collection given twice.

extension KVMVGIC {
    /// KVM_DEV_ARM_ITS_RESTORE_TABLES: the collection table, then the device table with every
    /// ITT, read from guest RAM into the vITS's lists. GITS_BASER<n>, GITS_IIDR and the
    /// redistributors must have been restored first (the documented "ITS Restore Sequence");
    /// a table whose GITS_BASER is not Valid is skipped.
    ///
    /// On failure the lists restored so far are freed, as KVM frees them
    /// (`vgic_its_free_collection_list`, `vgic_its_free_device_list`), and the errno is thrown.
    public func restoreITSTables() throws(Errno) {
        guard let its, let lists = itsLists else { throw .ENXIO }
        do {
            try restoreCollectionTable(its: its, lists: lists)
        } catch {
            lists.collections.removeAll()
            throw error
        }
        do {
            try restoreDeviceTables(its: its, lists: lists)
        } catch {
            lists.removeAll()
            throw error
        }
        its.invalidateAllCaches()
    }

    /// `vgic_its_restore_collection_table`: CTEs from the table base until an invalid one or the
    /// end of the table ((Size+1) pages).
    func restoreCollectionTable(its: ITS, lists: KVMITSLists) throws(Errno) {
        let raw = its.baser[1]
        let baser = GITSBaser(rawValue: raw)
        guard baser.valid else { return }
        var address = baser.physicalAddress.rawValue
        let maxSize = baser.pageCount &* baser.pageSize
        var read: UInt64 = 0
        while read < maxSize {
            guard try restoreCollectionEntry(address, baser: raw, lists: lists) else { return }
            address &+= KVMITSABI.entrySize
            read &+= KVMITSABI.entrySize
        }
    }

    /// `vgic_its_restore_cte`: false for an invalid entry (the end of the table). -EINVAL for a
    /// mapped target that names no vCPU (`kvm_get_vcpu_by_id`) or an ICID the collection table
    /// cannot hold (`vgic_its_check_id`), -EEXIST for an ICID already restored.
    func restoreCollectionEntry(_ address: UInt64, baser: UInt64, lists: KVMITSLists) throws(Errno) -> Bool {
        let cte = KVMITSCollectionEntry(rawValue: try readGuest(address, size: 8))
        guard cte.valid else { return false }
        if cte.target != KVMITSABI.collectionNotMapped, Int(cte.target) >= vcpuCount { throw .EINVAL }
        guard lists.collectionIndex(cte.icid) == nil else { throw .EEXIST }
        guard checkID(baser, UInt32(cte.icid)) != nil else { throw .EINVAL }
        lists.collections.append(.init(icid: cte.icid, target: cte.target))
        return true
    }

    /// `vgic_its_restore_device_tables`: a flat table is scanned as DTEs; an indirect one as
    /// level-1 entries, each Valid one (bit 63) naming a level-2 page (bits [51:16]) scanned as
    /// DTEs from ID index × entries-per-page (`handle_l1_dte`).
    func restoreDeviceTables(its: ITS, lists: KVMITSLists) throws(Errno) {
        let raw = its.baser[0]
        let baser = GITSBaser(rawValue: raw)
        guard baser.valid else { return }
        let base = baser.physicalAddress.rawValue
        let size = baser.pageCount &* baser.pageSize
        let dteSize = KVMITSABI.entrySize
        if baser.indirect {
            let perPage = baser.pageSize / dteSize
            _ = try scanTable(base: base, size: size, entrySize: 8, startID: 0) { (id, entry) throws(Errno) -> Int64 in
                guard entry.bit(63) else { return 1 }
                return try self.scanTable(base: entry.keepingBits(51, 16), size: baser.pageSize, entrySize: dteSize,
                                          startID: UInt64(id) &* perPage) { (id, entry) throws(Errno) -> Int64 in
                    try self.restoreDeviceEntry(id: id, entry, baser: raw, lists: lists)
                }
            }
        } else {
            _ = try scanTable(base: base, size: size, entrySize: dteSize, startID: 0) { (id, entry) throws(Errno) -> Int64 in
                try self.restoreDeviceEntry(id: id, entry, baser: raw, lists: lists)
            }
        }
    }

    /// `scan_its_table`: reads an entry (-EFAULT outside guest RAM), asks `body` for the ID offset
    /// to the next one (≤ 0 ends the scan with that value), and stops with 1 when the next entry
    /// would lie beyond `size` bytes. `size` passes through KVM's `int size` parameter: a
    /// `size_t` beyond 2^31 is truncated to 32 bits and the result sign-extended into the
    /// unsigned remaining length, as the C conversion does (an ITT of 2^32 EventIDs gives 0,
    /// so only its first entry is read).
    func scanTable(base: UInt64, size: UInt64, entrySize: UInt64, startID: UInt64,
                   _ body: (UInt32, UInt64) throws(Errno) -> Int64) throws(Errno) -> Int64 {
        var length = UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: size)))
        var id = startID
        var address = base
        while true {
            let entry = try readGuest(address, size: Int(entrySize))
            let next = try body(UInt32(truncatingIfNeeded: id), entry)
            if next <= 0 { return next }
            let byteOffset = UInt64(next) &* entrySize
            if byteOffset >= length { break }
            id &+= UInt64(next)
            address &+= byteOffset
            length &-= byteOffset
        }
        return 1
    }

    /// `vgic_its_restore_dte`: an invalid DTE → 1 (scan the next slot); a valid one needs a
    /// DeviceID its table can hold (-EINVAL), then the device is added and its ITT restored (on
    /// failure the device is freed again and the error returned); the result is `next`.
    /// Not checked, as in KVM: Size against VITS_TYPER_IDBITS (MAPD checks it; a restored DTE
    /// may carry up to 32 EventID bits) and duplicate DeviceIDs.
    func restoreDeviceEntry(id: UInt32, _ raw: UInt64, baser: UInt64, lists: KVMITSLists) throws(Errno) -> Int64 {
        let dte = KVMITSDeviceEntry(rawValue: raw)
        guard dte.valid else { return 1 }
        guard checkID(baser, id) != nil else { throw .EINVAL }
        lists.devices.append(.init(deviceID: id, ittAddress: dte.ittAddress, eventIDBits: dte.eventIDBits, events: []))
        let index = lists.devices.count - 1
        do {
            try restoreITT(deviceIndex: index, lists: lists)
        } catch {
            lists.devices.remove(at: index)
            throw error
        }
        return Int64(dte.next)
    }

    /// `vgic_its_restore_itt`: ITEs from the ITT, 2^num_eventid_bits entries at most.
    func restoreITT(deviceIndex: Int, lists: KVMITSLists) throws(Errno) {
        let device = lists.devices[deviceIndex]
        let maxSize = device.eventIDBits >= 61 ? UInt64.max : (UInt64(1) << UInt64(device.eventIDBits)) &* KVMITSABI.entrySize
        _ = try scanTable(base: device.ittAddress, size: maxSize, entrySize: KVMITSABI.entrySize, startID: 0) { (event, raw) throws(Errno) -> Int64 in
            try self.restoreTranslationEntry(event: event, raw, deviceIndex: deviceIndex, lists: lists)
        }
    }

    /// `vgic_its_restore_ite`, in KVM's order: pINTID 0 → 1 (an invalid entry: scan on);
    /// pINTID < 8192 → -EINVAL; EventID + next ≥ 2^num_eventid_bits → -EINVAL; an ICID with no
    /// restored collection → -EINVAL; `vgic_its_check_event_id` (EventID in range, its ITT slot
    /// in guest RAM) → -EINVAL; then the ITE is added and `vgic_add_lpi` creates the LPI, which
    /// reads its configuration byte (`update_lpi_config`: GICR_PROPBASER + INTID − 8192) and,
    /// when its collection is mapped, its pending bit in the target vCPU's pending table
    /// (`vgic_v3_lpi_sync_pending_status`: a set bit makes the LPI pending and is cleared in
    /// guest RAM, "clear consumed data") — -EFAULT when either byte is not in guest RAM, the
    /// ITE then being freed. The result is the ITE's `next`.
    func restoreTranslationEntry(event: UInt32, _ raw: UInt64, deviceIndex: Int, lists: KVMITSLists) throws(Errno) -> Int64 {
        let ite = KVMITSTranslationEntry(rawValue: raw)
        guard ite.valid else { return 1 }
        guard ite.pINTID >= 8192 else { throw .EINVAL }
        let device = lists.devices[deviceIndex]
        let span: UInt64 = device.eventIDBits >= 64 ? .max : UInt64(1) << UInt64(device.eventIDBits)
        guard UInt64(event) &+ UInt64(ite.next) < span else { throw .EINVAL }
        guard let collection = lists.collections.first(where: { $0.icid == ite.icid }) else { throw .EINVAL }
        guard UInt64(event) < span, isVisible(device.ittAddress &+ UInt64(event) &* KVMITSABI.entrySize) else { throw .EINVAL }
        // vgic_add_lpi: update_lpi_config, then vgic_v3_lpi_sync_pending_status.
        let propbase = gic.redistributors.first?.propbaser.physicalAddress.rawValue ?? 0
        _ = try readGuest(propbase &+ UInt64(ite.pINTID - 8192), size: 1)
        if collection.isMapped, Int(collection.target) < gic.redistributors.count {
            let rd = gic.redistributors[Int(collection.target)]
            let address = rd.pendbaser.physicalAddress.rawValue &+ UInt64(ite.pINTID / 8)
            let byte = try readGuest(address, size: 1)
            let mask = UInt64(1) << UInt64(ite.pINTID % 8)
            if byte & mask != 0 {
                rd.setPending(INTID(ite.pINTID))
                try writeGuest(address, size: 1, value: byte & ~mask)
            }
        }
        lists.devices[deviceIndex].events.append(.init(eventID: event, intid: ite.pINTID, icid: ite.icid))
        return Int64(ite.next)
    }
}
