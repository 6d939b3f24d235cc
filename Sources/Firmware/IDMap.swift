import Bus

/// An `iommu-map` or `msi-map` of a PCI host bridge (DT bindings `pci-iommu.yaml`,
/// `pci-msi.yaml`): how a Requester ID becomes a StreamID at an IOMMU or a DeviceID at an MSI
/// controller (docs/hardware.md §Requester ID mapping).
///
/// Each entry is (id-base, phandle, out-base, length). The out-base is an iommu- or
/// msi-specifier, so its width is the target's `#iommu-cells` / `#msi-cells`. Linux's
/// `of_map_id` read it as exactly one cell until the 2025 series "of: Respect #{iommu,msi}-cells
/// in maps" (R. Murphy, posted to the lists; not verified as merged), which reads the target's
/// cells and keeps one quirk for trees in the field; this reader does the same:
/// - width = the target's cells property; when the target lacks it, or the phandle does not
///   resolve, 1 (the classic reading: NXP LS1028A's ITS has no `#msi-cells` yet its `msi-map`
///   has 4-cell entries, and the ITS binding fixes `#msi-cells` at 1);
/// - when the first entry's target has 2 cells and the whole map reads as 4-cell entries that
///   all name that target with length 1, it is read as 4-cell entries (`of_check_bad_map`;
///   the Qualcomm MMU-500 maps in the fixtures are exactly this).
public struct IDMap: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        case iommu = "iommu-map"
        case msi = "msi-map"

        /// The property that holds the mask (`iommu-map-mask`, `msi-map-mask`).
        public var maskProperty: String { rawValue + "-mask" }
        /// The target's property that gives the specifier width.
        public var cellsProperty: String { self == .iommu ? "#iommu-cells" : "#msi-cells" }
    }

    public var kind: Kind
    /// The mask applied to the RID before matching; all ones when the DT has no mask property.
    public var mask: UInt32
    public var entries: [IDMapEntry]
    /// The `of_check_bad_map` reading was applied (4-cell entries for a 2-cell target).
    public var readAsLegacyOneCellEntries: Bool

    public init(kind: Kind, mask: UInt32 = 0xFFFF_FFFF, entries: [IDMapEntry], readAsLegacyOneCellEntries: Bool = false) {
        self.kind = kind
        self.mask = mask
        self.entries = entries
        self.readAsLegacyOneCellEntries = readAsLegacyOneCellEntries
    }

    /// What a lookup of one ID found.
    public enum Lookup: Hashable, Sendable {
        /// Entry `entry` matched: the ID goes to `target` with this specifier.
        case mapped(entry: Int, target: DeviceTreeTarget, specifier: [UInt32])
        /// No entry covers the masked ID. Linux then passes the ID through unchanged with no
        /// target ("bypass"): an MSI keeps its RID as DeviceID, a DMA master gets no IOMMU.
        case noMatch
        /// An entry's id-base has bits outside the mask, which Linux rejects (-EFAULT) before
        /// looking further.
        case maskIgnoresBase(entry: Int)
        /// A range longer than one ID with a multi-cell specifier, which Linux refuses
        /// (-EINVAL): it cannot know which cell the offset applies to.
        case unsupportedMultiCellRange(entry: Int)
    }

    /// Looks `id` up the way `of_map_id` does: mask the ID, walk the entries in order, first
    /// match wins; the offset within the entry is added to each specifier cell (32-bit wrap,
    /// as the kernel's u32 arithmetic).
    public func lookup(_ id: UInt32) -> Lookup {
        let masked = id & mask
        for (index, entry) in entries.enumerated() {
            if entry.idBase & ~mask != 0 { return .maskIgnoresBase(entry: index) }
            guard masked >= entry.idBase else { continue }
            let offset = masked &- entry.idBase
            guard offset < entry.length else { continue }
            if entry.length > 1 && entry.outputBase.count > 1 { return .unsupportedMultiCellRange(entry: index) }
            return .mapped(entry: index, target: entry.target, specifier: entry.outputBase.map { $0 &+ offset })
        }
        return .noMatch
    }

    /// The single-cell output for `id` and its target, or nil when the lookup does not map it
    /// to exactly one cell (StreamIDs and DeviceIDs are one cell).
    public func translate(_ id: UInt32) -> (target: DeviceTreeTarget, id: UInt32)? {
        guard case .mapped(_, let target, let specifier) = lookup(id), specifier.count == 1,
              let first = specifier.first else { return nil }
        return (target, first)
    }
}

/// One (id-base, phandle, out-base, length) entry.
public struct IDMapEntry: Hashable, Sendable, CustomStringConvertible {
    public var idBase: UInt32
    public var phandle: UInt32
    public var target: DeviceTreeTarget
    /// The specifier for `idBase`: as many cells as the target's `#…-cells` (see `IDMap`).
    public var outputBase: [UInt32]
    public var length: UInt32

    public init(idBase: UInt32, phandle: UInt32, target: DeviceTreeTarget, outputBase: [UInt32], length: UInt32) {
        self.idBase = idBase
        self.phandle = phandle
        self.target = target
        self.outputBase = outputBase
        self.length = length
    }

    public var description: String {
        let out = outputBase.map { Hex.format(UInt64($0), minDigits: 1) }.joined(separator: " ")
        return "<\(Hex.format(UInt64(idBase), minDigits: 1)) \(target) \(out) \(Hex.format(UInt64(length), minDigits: 1))>"
    }
}
