import Testing

/// Tests whose outcome needs the guest kernel model to turn an IORT RMR node into an
/// IOMMU_RESV_DIRECT region (Linux `iort_iommu_get_resv_regions`, written on the Linux model's
/// ACPI branch). The VMM's ACPI guest carries the strategies' RMR in its IORT only; until both
/// branches are merged the guest sees the node but reserves nothing, so these rmr-identity
/// expectations (4/4, the 1:1 window) do not hold yet. Enable after the merge by making this
/// trait `.enabled(if: true)`.
extension Trait where Self == ConditionTrait {
    static var pendingLinuxIORTRMR: Self { .disabled("needs the Linux IORT RMR path") }
}
