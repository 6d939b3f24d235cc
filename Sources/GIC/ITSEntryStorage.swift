import Bus

/// Where an ITS keeps its device, interrupt-translation and collection entries when they do not
/// live in the tables that GITS_BASER<n> and MAPD's ITT_addr name.
///
/// A hardware ITS (and QEMU's emulated one) stores them in those tables in memory, in the
/// IMPLEMENTATION DEFINED formats of `DeviceTableEntry`, `InterruptTranslationEntry` and
/// `CollectionTableEntry`; that is what an `ITS` does when it has no storage. An emulated ITS
/// may keep them elsewhere instead — KVM's vgic-its keeps them in kernel lists
/// (`its->device_list`, each device's `itt_head`, `its->collection_list`) and writes guest
/// memory only when asked to save them — and it then passes such a storage. The ITS still
/// computes the table address of every entry (so range checks and indirect level-1 walks are
/// those of the tables), reads and writes the entries here in the formats above, and keeps its
/// own caches in front.
///
/// A write returns false when it faulted (the ITS then treats the command as a memory fault).
public protocol ITSEntryStorage: AnyObject {
    /// The valid DTE of `device`, or nil when the device is not mapped.
    func deviceEntry(_ device: UInt32) -> DeviceTableEntry?
    /// MAPD: `entry` (valid or not) for `device`, whose table slot is `tableAddress`.
    func setDeviceEntry(_ device: UInt32, _ entry: DeviceTableEntry, tableAddress: PhysicalAddress) -> Bool
    /// The valid ITE of (`device`, `event`), or nil.
    func eventEntry(device: UInt32, event: UInt32) -> InterruptTranslationEntry?
    /// MAPTI/MAPI/MOVI (valid) and DISCARD (invalid): `entry` for (`device`, `event`), whose ITT
    /// slot is `tableAddress`.
    func setEventEntry(device: UInt32, event: UInt32, _ entry: InterruptTranslationEntry, tableAddress: PhysicalAddress) -> Bool
    /// The CTE of `icid`, or nil when the collection does not exist.
    func collectionEntry(_ icid: UInt16) -> CollectionTableEntry?
    /// MAPC: `entry` (valid or not) for `icid`, whose table slot is `tableAddress`.
    func setCollectionEntry(_ icid: UInt16, _ entry: CollectionTableEntry, tableAddress: PhysicalAddress) -> Bool
}
