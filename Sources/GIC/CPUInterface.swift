import Bus

/// One PE's GIC CPU interface, the system-register side (ICC_*_EL1) for LPIs and SPIs.
///
/// - ICC_IAR1_EL1 (`GICv3.acknowledge(cpu:)`): the highest-priority pending interrupt over the
///   redistributor's LPIs and the distributor's SPIs routed to this PE (`DistributorSPI.swift`)
///   whose priority is below ICC_PMR_EL1 and whose group priority is below the running
///   priority's; 1023 if none. Ties go to the lowest INTID (the architecture leaves the choice
///   among equal priorities IMPLEMENTATION DEFINED).
/// - LPIs have no active state: acknowledging one clears its pending bit (QEMU
///   `icc_activate_irq` clears the LPI's pending bit and sets nothing active), so it can become
///   pending again while its handler runs. An acknowledged SPI becomes active at the
///   distributor.
/// - ICC_CTLR_EL1.EOImode (`eoiMode`): 0 — ICC_EOIR1_EL1 drops the running priority and
///   deactivates the INTID written; 1 — ICC_EOIR1_EL1 only drops the priority and ICC_DIR_EL1
///   deactivates (IHI 0069 §4.1.1, "Priority drop and interrupt deactivation"). An LPI needs no
///   deactivation. A DIR write with EOImode = 0 is UNPREDICTABLE; the model ignores it and
///   counts it in `ignoredDeactivations`.
/// - Binary point: ICC_BPR1_EL1 = 0 (Linux `gic_cpu_sys_reg_init` writes 0), so the group
///   priority is bits [7:1]: a pending priority p preempts running priority r when
///   p >> 1 < r >> 1, i.e. p < (r & 0xFE). Priorities keep all 8 bits (ICC_CTLR_EL1.PRIbits
///   = 7, this model's choice). ICC_IGRPEN1_EL1 and SGIs/PPIs are not modelled.
public final class CPUInterface {
    public let cpu: Int

    /// ICC_PMR_EL1: only priorities strictly below it are signalled. Resets to 0 (everything
    /// masked) here; Linux writes 0xF0 (`DEFAULT_PMR_VALUE`) during CPU bring-up.
    public var priorityMask: UInt8 = 0

    /// ICC_CTLR_EL1.EOImode (bit 1): false — EOIR drops the priority and deactivates (the
    /// reset value); true — EOIR only drops the priority, ICC_DIR_EL1 deactivates.
    public var eoiMode = false

    /// One acknowledged interrupt.
    public struct Delivery: Hashable, Sendable, CustomStringConvertible {
        public var intid: INTID
        public var priority: UInt8
        public var description: String {
            "\(intid.rawValue < 8192 ? "SPI" : "LPI") \(intid.rawValue) (priority \(Hex.format(UInt64(priority), minDigits: 2)))"
        }
    }

    /// How many acknowledges `deliveries` keeps by default.
    public static let retainedDeliveries = 64
    /// Interrupts acknowledged on this PE, in order (tests and reports read it): `count` is
    /// every acknowledge so far (while `recordsDeliveries`), iteration yields the last
    /// `deliveryCapacity` of them, so a PE taking one interrupt after another for a whole run
    /// holds a fixed amount of memory (`BoundedLog`).
    public private(set) var deliveries = BoundedLog<Delivery>(capacity: CPUInterface.retainedDeliveries)
    /// How many acknowledges `deliveries` keeps (nil: all of them).
    public var deliveryCapacity: Int? {
        get { deliveries.capacity }
        set { deliveries.capacity = newValue }
    }
    /// Whether to append to `deliveries` (benchmarks turn it off).
    public var recordsDeliveries = true
    /// Active priorities, innermost last (ICC_AP1R<n>_EL1 as a stack).
    public private(set) var activeStack: [Delivery] = []

    public struct Counters: Hashable, Sendable {
        public var acknowledges = 0
        /// IAR reads that returned 1023.
        public var spuriousAcknowledges = 0
        public var endOfInterrupts = 0
        /// EOIs with nothing active (ignored), or whose INTID is not the innermost active one
        /// (GICv3 calls that UNPREDICTABLE; the model still drops the innermost priority).
        public var unmatchedEndOfInterrupts = 0
        /// Interrupts deactivated (EOIR with EOImode = 0 or DIR with EOImode = 1) that were
        /// active SPIs.
        public var deactivations = 0
        /// ICC_DIR_EL1 writes with EOImode = 0 (UNPREDICTABLE; ignored), or naming an SPI
        /// that is not active.
        public var ignoredDeactivations = 0
        public init() {}
    }

    public var counters = Counters()

    init(cpu: Int) { self.cpu = cpu }

    /// ICC_RPR_EL1: the priority of the innermost active interrupt, 0xFF when idle.
    public var runningPriority: UInt8 { activeStack.last?.priority ?? 0xFF }

    /// The threshold a pending priority must be below to be signalled: min(PMR, running
    /// priority), where "idle" lets any priority below PMR through.
    var signalThreshold: UInt16 {
        activeStack.isEmpty ? UInt16(priorityMask) : min(UInt16(priorityMask), UInt16(runningPriority & 0xFE))
    }

    func recordAcknowledge(_ delivery: Delivery) {
        counters.acknowledges &+= 1
        activeStack.append(delivery)
        if recordsDeliveries { deliveries.append(delivery) }
    }

    /// ICC_EOIR1_EL1: the priority drop. Returns whether the write also deactivates
    /// (EOImode = 0).
    @discardableResult
    func endOfInterrupt(_ intid: INTID) -> Bool {
        // ICC_EOIR1_EL1 ignores the special INTIDs 1020–1023.
        guard !(1020...1023).contains(intid.rawValue) else { return false }
        counters.endOfInterrupts &+= 1
        if let top = activeStack.popLast() {
            if top.intid != intid { counters.unmatchedEndOfInterrupts &+= 1 }
        } else {
            counters.unmatchedEndOfInterrupts &+= 1
        }
        return !eoiMode
    }

    public func clearDeliveries() { deliveries.removeAll() }

    /// The interface's register state as a VMM saves it (QEMU `kvm_arm_gicv3_get` reads
    /// ICC_PMR_EL1 and ICC_AP1R<n>_EL1 through KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS): the priority
    /// mask and the active priorities, innermost last.
    public struct SavedState: Hashable, Sendable {
        public var priorityMask: UInt8
        public var activePriorities: [Delivery]
    }

    public var savedState: SavedState { SavedState(priorityMask: priorityMask, activePriorities: activeStack) }

    /// Restores a saved state (`kvm_arm_gicv3_put` writing ICC_PMR_EL1 and ICC_AP1R<n>_EL1).
    public func restore(_ state: SavedState) {
        priorityMask = state.priorityMask
        activeStack = state.activePriorities
    }
}

extension CPUInterface {
    /// Takes `other`'s state (a forked world's copy).
    func copyState(of other: CPUInterface) {
        priorityMask = other.priorityMask
        eoiMode = other.eoiMode
        deliveries = other.deliveries
        recordsDeliveries = other.recordsDeliveries
        activeStack = other.activeStack
        counters = other.counters
    }
}
