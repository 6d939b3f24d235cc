/// A device-tree `iommu-map` or `msi-map` with its `-map-mask` (DT bindings
/// `pci/pci-iommu.txt`, `pci/pci-msi.txt`): how a root complex derives the sideband ID an IOMMU
/// (StreamID) or MSI controller (DeviceID) sees from a Requester ID.
///
/// Semantics are those of Linux `of_map_id` (drivers/of/base.c), read for this model:
/// - `masked = rid & mask` (mask defaults to 0xffffffff).
/// - Entries are tried in order. An entry whose `rid-base` has bits outside the mask makes the
///   whole map invalid ("%s-mask ignores id-base", -EFAULT) at the point it is reached.
/// - The first entry with `rid-base ≤ masked < rid-base + length` maps to
///   `masked − rid-base + out-base` (32-bit wrapping arithmetic, as in C). The range check is
///   done in 64 bits here so a map whose base + length passes 2^32 cannot wrap into a false match.
/// - No match: `of_map_id` logs "no %s translation for id" and returns the ID untranslated with
///   no target. Callers differ: for `iommu-map` the device then has no IOMMU (`of_iommu_xlate`
///   finds no IOMMU node, -ENODEV); for `msi-map` `of_msi_map_id` returns the RID as DeviceID
///   but `of_msi_map_get_device_domain` finds no MSI domain, so Linux gives the device no MSIs.
///   `RootComplex` turns these into hardware behaviour (see there).
/// - Property absent: `of_map_id` with a target requested returns -ENODEV; with only an ID
///   requested, "no map implies no translation" (identity). See `RootComplex` for its use.
public struct RequesterIDMap: Hashable, Sendable {
    /// One `(rid-base, phandle, out-base, length)` tuple. `target` stands for the phandle: an
    /// index the platform gives the IOMMU or MSI controller.
    public struct Entry: Hashable, Sendable {
        public var ridBase: UInt32
        public var target: UInt32
        public var outputBase: UInt32
        public var length: UInt32

        public init(ridBase: UInt32, target: UInt32 = 0, outputBase: UInt32, length: UInt32) {
            self.ridBase = ridBase
            self.target = target
            self.outputBase = outputBase
            self.length = length
        }
    }

    public enum Lookup: Hashable, Sendable {
        /// Entry `entry` matched: the output ID and its target.
        case mapped(id: UInt32, target: UInt32, entry: Int)
        /// No entry matched `maskedRID`.
        case noMatch(maskedRID: UInt32)
        /// Entry `entry` has a `rid-base` outside the mask (Linux rejects the map, -EFAULT).
        case invalidEntry(entry: Int)

        public var id: UInt32? {
            if case .mapped(let id, _, _) = self { return id }
            return nil
        }
    }

    public var entries: [Entry]
    public var mask: UInt32

    public init(entries: [Entry], mask: UInt32 = 0xFFFF_FFFF) {
        self.entries = entries
        self.mask = mask
    }

    /// `<0 &target 0 0x10000>`: every RID maps to itself (QEMU `virt`'s iommu-map and msi-map).
    public static func identity(target: UInt32 = 0) -> RequesterIDMap {
        RequesterIDMap(entries: [Entry(ridBase: 0, target: target, outputBase: 0, length: 0x1_0000)])
    }

    public func lookup(_ rid: UInt32) -> Lookup {
        let masked = rid & mask
        for (index, entry) in entries.enumerated() {
            if entry.ridBase & ~mask != 0 { return .invalidEntry(entry: index) }
            guard masked >= entry.ridBase, UInt64(masked) < UInt64(entry.ridBase) + UInt64(entry.length) else { continue }
            return .mapped(id: masked &- entry.ridBase &+ entry.outputBase, target: entry.target, entry: index)
        }
        return .noMatch(maskedRID: masked)
    }

    public func lookup(_ rid: RequesterID) -> Lookup { lookup(UInt32(rid.rawValue)) }
}
