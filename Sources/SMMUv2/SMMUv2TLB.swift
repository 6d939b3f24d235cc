/// The SMMU's TLB: walk results cached per context bank, VMID, ASID and 4 KiB input page, so a
/// later transaction to the same page reads no descriptors until software invalidates the entry
/// (IHI 0062D §3.9 "TLB maintenance"). Small and deterministic: the oldest entry goes first.
struct SMMUv2TLB {
    struct Entry: Hashable {
        var bank: Int
        var vmid: UInt16
        /// The ASID (TTBRn[63:48]) for a stage-1 bank; 0 for stage 2.
        var asid: UInt16
        var page: UInt64
        var outputPage: UInt64
        /// Whether a write is allowed by the cached permissions.
        var writable: Bool
        var readable: Bool
    }

    let capacity: Int
    private(set) var entries: [Entry] = []

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var count: Int { entries.count }

    func lookup(bank: Int, vmid: UInt16, asid: UInt16, page: UInt64) -> Entry? {
        entries.first { $0.bank == bank && $0.vmid == vmid && $0.asid == asid && $0.page == page }
    }

    mutating func insert(_ entry: Entry) {
        entries.removeAll { $0.bank == entry.bank && $0.vmid == entry.vmid && $0.asid == entry.asid && $0.page == entry.page }
        if entries.count >= capacity { entries.removeFirst() }
        entries.append(entry)
    }

    mutating func invalidate(where matches: (Entry) -> Bool) {
        entries.removeAll(where: matches)
    }
}
