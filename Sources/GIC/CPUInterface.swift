import Bus

/// One PE's GIC CPU interface, the system-register side (ICC_*_EL1) as far as LPIs need it.
///
/// - ICC_IAR1_EL1 (`GICv3.acknowledge(cpu:)`): the highest-priority pending enabled LPI whose
///   priority is below both ICC_PMR_EL1 and the running priority; 1023 if none.
/// - LPIs have no active state: acknowledging one clears its pending bit (QEMU
///   `icc_activate_irq` clears the LPI's pending bit and sets nothing active), so it can become
///   pending again while its handler runs.
/// - ICC_EOIR1_EL1 (`GICv3.endOfInterrupt(cpu:intid:)`): priority drop of the highest active
///   priority (EOImode=0; an LPI needs no deactivation).
/// - Binary point: preemption compares full priorities. That equals ICC_BPR1_EL1=0 (group
///   priority bits [7:1]) for LPI priorities, whose bits [1:0] are always 0. Groups, ICC_IGRPEN1
///   and SGIs/PPIs/SPIs are not modelled.
public final class CPUInterface {
    public let cpu: Int

    /// ICC_PMR_EL1: only priorities strictly below it are signalled. Resets to 0 (everything
    /// masked) here; Linux writes 0xF0 (`DEFAULT_PMR_VALUE`) during CPU bring-up.
    public var priorityMask: UInt8 = 0

    /// One acknowledged interrupt.
    public struct Delivery: Hashable, Sendable, CustomStringConvertible {
        public var intid: INTID
        public var priority: UInt8
        public var description: String { "LPI \(intid.rawValue) (priority \(Hex.format(UInt64(priority), minDigits: 2)))" }
    }

    /// Interrupts acknowledged on this PE, in order (tests and reports read it).
    public private(set) var deliveries: [Delivery] = []
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
        public init() {}
    }

    public var counters = Counters()

    init(cpu: Int) { self.cpu = cpu }

    /// ICC_RPR_EL1: the priority of the innermost active interrupt, 0xFF when idle.
    public var runningPriority: UInt8 { activeStack.last?.priority ?? 0xFF }

    /// The threshold a pending priority must be below to be signalled: min(PMR, running
    /// priority), where "idle" lets any priority below PMR through.
    var signalThreshold: UInt16 {
        activeStack.isEmpty ? UInt16(priorityMask) : min(UInt16(priorityMask), UInt16(runningPriority))
    }

    func recordAcknowledge(_ delivery: Delivery) {
        counters.acknowledges &+= 1
        activeStack.append(delivery)
        if recordsDeliveries { deliveries.append(delivery) }
    }

    func endOfInterrupt(_ intid: INTID) {
        // ICC_EOIR1_EL1 ignores the special INTIDs 1020–1023.
        guard !(1020...1023).contains(intid.rawValue) else { return }
        counters.endOfInterrupts &+= 1
        guard let top = activeStack.popLast() else {
            counters.unmatchedEndOfInterrupts &+= 1
            return
        }
        if top.intid != intid { counters.unmatchedEndOfInterrupts &+= 1 }
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
