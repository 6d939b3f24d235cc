/// A VMM's own copy of its KVM GSI routing table (QEMU's `KVMState.irq_routes`), kept so that a
/// change of one route costs O(1) and the commit O(changed routes).
///
/// QEMU commits its whole list on every change (`kvm_irqchip_commit_routes` →
/// KVM_SET_GSI_ROUTING), and KVM replaces its table whole (`kvm_set_irq_routing`). Replaying
/// that literally is O(routes) per vector, so MSI-X setup of n vectors would be O(n²). The
/// table records which GSIs changed since its last commit that KVM accepted, and how many of
/// its entries KVM would refuse, so that `KVMVirtualMachine.setGSIRouting(_:)` can give exactly
/// the answer and the resulting table of a whole-table KVM_SET_GSI_ROUTING while touching only
/// the changed entries.
public struct KVMRouteTable: Sendable {
    /// The routes, by GSI (keyed lookups only; never iterated for output).
    public private(set) var entries: [UInt32: KVMMSIRoute] = [:]
    /// GSIs set or removed since the last commit KVM accepted.
    var changed: Set<UInt32> = []
    /// Entries `kvm_set_routing_entry` would refuse (GSI ≥ KVM_MAX_IRQ_ROUTES, unknown flags).
    private(set) var refusedEntries = 0
    /// The VM routing generation this table's last accepted commit produced: when the VM's table
    /// has been replaced by someone else since, the next commit sends everything.
    var committedGeneration: UInt64?

    public init() {}

    public var count: Int { entries.count }

    /// Sets (or, with nil, removes) the route of `gsi`.
    public mutating func set(_ gsi: UInt32, _ route: KVMMSIRoute?) {
        if let old = entries[gsi], !Self.isAccepted(old) { refusedEntries -= 1 }
        if let route {
            precondition(route.gsi == gsi, "a route is keyed by its own GSI")
            entries[gsi] = route
            if !Self.isAccepted(route) { refusedEntries += 1 }
        } else {
            entries[gsi] = nil
        }
        changed.insert(gsi)
    }

    /// Whether KVM would take `route` as one entry (`kvm_set_irq_routing`'s per-entry checks).
    static func isAccepted(_ route: KVMMSIRoute) -> Bool {
        route.gsi < KVMConstants.maxIRQRoutes && route.flags & ~KVMConstants.msiValidDevID == 0
    }

    /// Whether the whole table would be refused.
    var isRefused: Bool { entries.count > Int(KVMConstants.maxIRQRoutes) || refusedEntries > 0 }
}
