import Bus

/// What translations cost the SMMU, counted from the journal's records rather than from the
/// translator's running counters: every structure read of a configuration lookup (L1STD and STE,
/// IHI0070 §3.3.2, §5.1, §5.2; L1CD and CD, §5.3, §5.4), every translation-table descriptor read
/// per stage and level, and the TLB lookups. A fold over entries, so it can be computed for
/// exactly the transactions a journal followed, including lookups that failed (a read of an
/// ILLEGAL STE or CD, an L1CD with V=0, a TLB hit whose permissions fault): the SMMU paid for
/// those reads too. The same numbers as the matching `SMMUCounters` difference.
public struct TranslationCost: Hashable, Sendable {
    /// One stage and level of a walk, for `descriptorReads`.
    public struct WalkLevel: Hashable, Sendable, Comparable {
        public var stage: Int
        public var level: Int

        public init(stage: Int, level: Int) {
            self.stage = stage
            self.level = level
        }

        public static func < (a: WalkLevel, b: WalkLevel) -> Bool {
            (a.stage, a.level) < (b.stage, b.level)
        }
    }

    /// Level-1 stream table descriptor reads (two-level stream tables).
    public var l1stdReads = 0
    public var steReads = 0
    /// Level-1 CD reads (two-level CD tables).
    public var l1cdReads = 0
    public var cdReads = 0
    /// Descriptor reads per stage and level.
    public var descriptorReads: [WalkLevel: Int] = [:]
    public var tlbHits = 0
    public var tlbMisses = 0

    public init() {}

    /// The cost of every SMMU record in `entries` (records of other layers are ignored).
    public init(journal entries: some Sequence<JournalEntry>) {
        for entry in entries { add(entry) }
    }

    /// Counts one entry if it is an SMMU read or TLB lookup.
    public mutating func add(_ entry: JournalEntry) {
        switch entry {
        case .l1stdRead: l1stdReads += 1
        case .steRead: steReads += 1
        case .l1cdRead: l1cdReads += 1
        case .cdRead: cdReads += 1
        case .walkRead(let stage, let level, _, _):
            descriptorReads[WalkLevel(stage: stage, level: level), default: 0] += 1
        case .tlb(let hit, _, _, _):
            if hit { tlbHits += 1 } else { tlbMisses += 1 }
        default:
            break
        }
    }

    /// Stream table reads: L1STD and STE (`SMMUCounters.steFetches`).
    public var streamTableReads: Int { l1stdReads + steReads }
    /// CD table reads: L1CD and CD (`SMMUCounters.cdFetches`).
    public var contextDescriptorReads: Int { l1cdReads + cdReads }

    /// Descriptor reads of one stage, all levels.
    public func descriptorReads(stage: Int) -> Int {
        descriptorReads.reduce(0) { $1.key.stage == stage ? $0 + $1.value : $0 }
    }

    /// Every read the SMMU issued (`SMMUCounters.totalReads`).
    public var totalReads: Int {
        streamTableReads + contextDescriptorReads + descriptorReads.values.reduce(0, +)
    }

    /// "S1 L0 ×1, S2 L1 ×4": the descriptor reads per stage and level, in walk order of stage
    /// then level (not the dictionary's order).
    public var perLevelText: String {
        descriptorReads.keys.sorted().map { "S\($0.stage) L\($0.level) ×\(descriptorReads[$0] ?? 0)" }.joined(separator: ", ")
    }
}
