import Bus
import GIC

/// Where KVM's vgic-its keeps a vITS's translations (arch/arm64/kvm/vgic/vgic-its.c, read for
/// v6.15–v6.19, unchanged across them): `its->device_list` (`struct its_device`: DeviceID,
/// ITT address, num_eventid_bits, and its `itt_head` list of `struct its_ite`: EventID, LPI,
/// collection) and `its->collection_list` (`struct its_collection`: ICID, target vCPU or
/// COLLECTION_NOT_MAPPED), all in insertion order (`list_add_tail`). Commands build them; guest
/// memory is written only by KVM_DEV_ARM_ITS_SAVE_TABLES and, since v6.13, by two zeroing
/// writes: MAPD V=0 clears the device's DTE slot ("KVM: arm64: vgic-its: Clear DTE when MAPD
/// unmaps a device") and DISCARD clears the ITE slot ("Clear ITE when DISCARD frees an ITE").
///
/// The model's vITS (the GIC module's `ITS` with this as its `ITSEntryStorage`) executes the
/// commands; these lists apply KVM's list semantics to what it stores:
/// - MAPD V=1 on a mapped device frees it with all its ITEs and adds it again at the tail
///   (`vgic_its_cmd_handle_mapd` → `vgic_its_free_device`); V=0 frees it.
/// - MAPTI/MAPI naming an ICID with no collection yet adds one with COLLECTION_NOT_MAPPED
///   (`vgic_its_cmd_handle_mapi` → `vgic_its_alloc_collection`).
/// - MAPC V=1 retargets an existing collection in place or adds one; V=0 removes it
///   (`vgic_its_free_collection`).
///
/// Model differences, documented: MAPTI on an already mapped event overwrites it (the GIC
/// model's rule; KVM ignores it, "behavior is UNPREDICTABLE"), and ITEs keep their ICID when
/// MAPC V=0 removes the collection (KVM sets `ite->collection` to NULL).
public final class KVMITSLists: ITSEntryStorage {
    /// One `struct its_ite`.
    public struct Event: Hashable, Sendable {
        public var eventID: UInt32
        public var intid: UInt32
        public var icid: UInt16
    }

    /// One `struct its_device` with its `itt_head`.
    public struct Device: Hashable, Sendable {
        public var deviceID: UInt32
        public var ittAddress: UInt64
        public var eventIDBits: Int
        public var events: [Event]
    }

    /// One `struct its_collection`; `target` is a vCPU ID or KVMITSABI.collectionNotMapped.
    public struct Collection: Hashable, Sendable {
        public var icid: UInt16
        public var target: UInt32
        public var isMapped: Bool { target != KVMITSABI.collectionNotMapped }
    }

    /// `its->device_list`, in list order.
    public internal(set) var devices: [Device] = []
    /// `its->collection_list`, in list order.
    public internal(set) var collections: [Collection] = []
    unowned(safe) let guestBus: SystemBus
    /// Called after every command that changed a device, event or collection: KVM's GICv4
    /// follow-ups (`update_affinity` → `its_map_vlpi` for a moved forwarded LPI, `its_free_ite`
    /// → `its_unmap_vlpi` for a freed one; `KVMVGICv4.swift`).
    var onChange: (() -> Void)?

    init(guestBus: SystemBus) { self.guestBus = guestBus }

    /// `vgic_its_write_entry_lock` of a zero entry: fails (-EFAULT) outside guest RAM.
    func clearGuestEntry(_ address: PhysicalAddress) -> Bool {
        guard guestBus.isRAM(address, size: KVMITSABI.entrySize) else { return false }
        do { try guestBus.write(address, size: 8, value: 0, requester: .hardware) } catch { return false }
        return true
    }

    func deviceIndex(_ id: UInt32) -> Int? { devices.firstIndex { $0.deviceID == id } }
    func collectionIndex(_ icid: UInt16) -> Int? { collections.firstIndex { $0.icid == icid } }

    // MARK: ITSEntryStorage

    public func deviceEntry(_ device: UInt32) -> DeviceTableEntry? {
        guard let i = deviceIndex(device) else { return nil }
        let d = devices[i]
        return DeviceTableEntry(valid: true, size: UInt8(truncatingIfNeeded: d.eventIDBits - 1), ittAddress: PhysicalAddress(d.ittAddress))
    }

    public func setDeviceEntry(_ device: UInt32, _ entry: DeviceTableEntry, tableAddress: PhysicalAddress) -> Bool {
        defer { onChange?() }
        if let i = deviceIndex(device) { devices.remove(at: i) }
        guard entry.valid else { return clearGuestEntry(tableAddress) }
        devices.append(Device(deviceID: device, ittAddress: entry.ittAddress.rawValue, eventIDBits: Int(entry.size) + 1, events: []))
        return true
    }

    public func eventEntry(device: UInt32, event: UInt32) -> InterruptTranslationEntry? {
        guard let d = deviceIndex(device), let e = devices[d].events.first(where: { $0.eventID == event }) else { return nil }
        return InterruptTranslationEntry(physicalINTID: INTID(e.intid), collection: CollectionID(e.icid))
    }

    public func setEventEntry(device: UInt32, event: UInt32, _ entry: InterruptTranslationEntry, tableAddress: PhysicalAddress) -> Bool {
        defer { onChange?() }
        guard let d = deviceIndex(device) else { return entry.valid ? false : clearGuestEntry(tableAddress) }
        let existing = devices[d].events.firstIndex { $0.eventID == event }
        guard entry.valid else {
            if let existing { devices[d].events.remove(at: existing) }
            return clearGuestEntry(tableAddress)
        }
        let icid = entry.collection.rawValue
        if collectionIndex(icid) == nil { collections.append(Collection(icid: icid, target: KVMITSABI.collectionNotMapped)) }
        let value = Event(eventID: event, intid: entry.intid.rawValue, icid: icid)
        if let existing { devices[d].events[existing] = value } else { devices[d].events.append(value) }
        return true
    }

    public func collectionEntry(_ icid: UInt16) -> CollectionTableEntry? {
        guard let i = collectionIndex(icid) else { return nil }
        let c = collections[i]
        return CollectionTableEntry(valid: c.isMapped, target: c.isMapped ? .processor(Int(c.target)) : ITSTarget(rawValue: 0))
    }

    public func setCollectionEntry(_ icid: UInt16, _ entry: CollectionTableEntry, tableAddress: PhysicalAddress) -> Bool {
        defer { onChange?() }
        guard entry.valid else {
            if let i = collectionIndex(icid) { collections.remove(at: i) }
            return true
        }
        let target = UInt32(truncatingIfNeeded: entry.target.rawValue)
        if let i = collectionIndex(icid) { collections[i].target = target } else { collections.append(Collection(icid: icid, target: target)) }
        return true
    }

    /// `vgic_its_free_device_list` + `vgic_its_free_collection_list`.
    func removeAll() {
        devices.removeAll()
        collections.removeAll()
    }
}
