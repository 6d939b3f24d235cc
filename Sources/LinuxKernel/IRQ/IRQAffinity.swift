/// `struct irq_affinity` (include/linux/interrupt.h): what a driver passes with
/// `PCI_IRQ_AFFINITY` to `pci_alloc_irq_vectors_affinity`. `pre_vectors` at the start and
/// `post_vectors` at the end are not spread (an NVMe admin queue is one `pre_vectors`); the
/// vectors between them are spread over the CPUs and become *managed* interrupts.
///
/// No `calc_sets`: the generic `default_calc_sets` (one set of every spread vector) is what a
/// driver without its own gets. (NVMe's `nvme_calc_irq_sets` with no read queues is one set too;
/// it differs only in that `irq_calc_affinity_vectors` does not cap a driver with `calc_sets` at
/// the CPU count, which NVMe does itself with `nvme_max_io_queues`.)
public struct IRQAffinity: Hashable, Sendable {
    public var preVectors: Int
    public var postVectors: Int

    public init(preVectors: Int = 0, postVectors: Int = 0) {
        self.preVectors = preVectors
        self.postVectors = postVectors
    }
}

/// `struct irq_affinity_desc`: one vector's CPU mask and whether it is managed.
public struct IRQAffinityMask: Hashable, Sendable {
    /// The CPUs, ascending; `irq_default_affinity` (every CPU) for vectors that are not spread.
    public var cpus: [Int]
    /// `is_managed`: the kernel, not user space, owns its affinity.
    public var isManaged: Bool

    public init(cpus: [Int], isManaged: Bool) {
        self.cpus = cpus
        self.isManaged = isManaged
    }
}

extension IRQAffinity {
    /// `irq_calc_affinity_vectors(minvec, maxvec, affd)` (kernel/irq/affinity.c): 0 when the
    /// reserved vectors exceed `minvec`; otherwise the reserved ones plus
    /// min(possible CPUs, the rest) (no `calc_sets`: `cpumask_weight(cpu_possible_mask)`).
    public func vectors(min minvec: Int, max maxvec: Int, possibleCPUs: Int) -> Int {
        let reserved = preVectors + postVectors
        guard reserved <= minvec, maxvec >= reserved else { return 0 }
        return reserved + Swift.min(possibleCPUs, maxvec - reserved)
    }

    /// `irq_create_affinity_masks(nvecs, affd)`: nil when nothing is left to spread ("Nothing
    /// to assign?"); otherwise `pre_vectors` masks of every CPU, the spread vectors' masks from
    /// `group_cpus_evenly`, every CPU again for the vectors the spread did not fill and for the
    /// `post_vectors`, and `is_managed` on the vectors between pre and post.
    public func masks(count nvecs: Int, cpus: Int) -> [IRQAffinityMask]? {
        guard nvecs > 0, cpus > 0 else { return nil }
        let spread = nvecs > preVectors + postVectors ? nvecs - preVectors - postVectors : 0
        guard spread > 0 else { return nil }
        let all = Array(0..<cpus)
        var masks = Array(repeating: IRQAffinityMask(cpus: all, isManaged: false), count: nvecs)
        let groups = Self.groupCPUsEvenly(spread, cpus: cpus)
        for (j, group) in groups.enumerated() where preVectors + j < nvecs { masks[preVectors + j].cpus = group }
        for i in preVectors..<(nvecs - postVectors) { masks[i].isManaged = true }
        return masks
    }

    /// `group_cpus_evenly(numgrps)` (lib/group_cpus.c) on one NUMA node whose CPUs are all
    /// present and have no SMT siblings (a guest's vCPUs, a host without `numa` nodes): the
    /// node gets min(numgrps, CPUs) groups (`alloc_nodes_groups`); each takes CPUs/groups CPUs
    /// in ascending order, the first (CPUs mod groups) one more ("Account for extra groups to
    /// compensate rounding errors"). Groups beyond the CPU count stay empty (the second pass,
    /// over possible-but-not-present CPUs, has none) — which `irq_calc_affinity_vectors` never
    /// asks for without `calc_sets`.
    public static func groupCPUsEvenly(_ numgrps: Int, cpus: Int) -> [[Int]] {
        guard numgrps > 0, cpus > 0 else { return [] }
        let groups = min(numgrps, cpus)
        var extra = cpus - groups * (cpus / groups)
        var result: [[Int]] = []
        var next = 0
        for _ in 0..<groups {
            var size = cpus / groups
            if extra > 0 {
                size += 1
                extra -= 1
            }
            result.append(Array(next..<min(next + size, cpus)))
            next += size
        }
        while result.count < numgrps { result.append([]) }
        return result
    }
}
