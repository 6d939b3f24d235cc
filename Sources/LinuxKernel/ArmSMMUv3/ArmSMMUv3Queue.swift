import Bus

/// `struct arm_smmu_ll_queue` plus the queue's memory (`struct arm_smmu_queue`): PROD and
/// CONS as the driver shadows them, each an index of `shift` bits with the wrap bit above it
/// and, for the event queue, the overflow flag in bit 31 (`Q_IDX`, `Q_WRP`, `Q_OVF`).
struct ArmSMMUv3Queue {
    /// `q->base_dma`, naturally aligned to the queue size.
    let base: PhysicalAddress
    /// `llq.max_n_shift`.
    let shift: Int
    /// Entry size in bytes (16 commands, 32 events).
    let entryBytes: UInt64
    var prod: UInt32 = 0
    var cons: UInt32 = 0

    static let overflowFlag: UInt32 = 1 << 31

    var entries: UInt32 { 1 << UInt32(shift) }
    func index(_ p: UInt32) -> UInt32 { p & (entries &- 1) }
    func wrap(_ p: UInt32) -> UInt32 { p & entries }

    /// `queue_inc_prod_n`: advance by n, keeping OVF.
    func advanced(_ p: UInt32, by n: UInt32 = 1) -> UInt32 {
        let moved = ((p & (entries | (entries &- 1))) &+ n) & (entries | (entries &- 1))
        return (p & Self.overflowFlag) | moved
    }

    /// `queue_has_space`.
    func hasSpace(_ n: UInt32) -> Bool {
        let p = index(prod), c = index(cons)
        let space = wrap(prod) == wrap(cons) ? entries &- (p &- c) : c &- p
        return space >= n
    }

    /// `queue_empty`.
    var isEmpty: Bool { index(prod) == index(cons) && wrap(prod) == wrap(cons) }

    /// `queue_consumed`: CONS has moved past `p`.
    func consumed(_ p: UInt32) -> Bool {
        (wrap(cons) == wrap(p) && index(cons) > index(p)) || (wrap(cons) != wrap(p) && index(cons) <= index(p))
    }

    /// `Q_ENT`: the address of slot `p`.
    func slot(_ p: UInt32) -> PhysicalAddress {
        PhysicalAddress(base.rawValue &+ UInt64(index(p)) &* entryBytes)
    }

    /// The *_BASE register value: RA/WA (bit 62), ADDR[51:5], LOG2SIZE[4:0] (`Q_BASE_RWA`,
    /// `Q_BASE_ADDR_MASK`, `Q_BASE_LOG2SIZE`).
    var baseRegister: UInt64 {
        (1 << 62) | base.rawValue.keepingBits(51, 5) | UInt64(shift & 0x1F)
    }
}
