/// A driver's static identity and blocked domains (`arm_smmu_identity_domain` and
/// `arm_smmu_blocked_domain` in arm-smmu-v3.c, `arm_smmu_identity_domain` and
/// `arm_smmu_blocked_domain` in arm-smmu.c since v6.9's domain rework): one object each, made on
/// first use, so each takes the kernel's next object id when first asked for. Kept as explicit
/// optional storage so a forked driver copies exactly the ones the original made.
struct StaticIOMMUDomains {
    var identity: IOMMUDomain?
    var blocked: IOMMUDomain?

    /// The driver's domain of `type` (`.identity` or `.blocked`), made now if it was not yet.
    mutating func domain(_ type: IOMMUDomainType, of driver: any IOMMUDriver, kernel: LinuxKernel) -> IOMMUDomain {
        precondition(type == .identity || type == .blocked, "a static IOMMU domain is identity or blocked")
        if let made = type == .identity ? identity : blocked { return made }
        let made = IOMMUDomain(type: type, driver: driver, operations: nil, pageSizeBitmap: 0, id: kernel.makeObjectID())
        if type == .identity { identity = made } else { blocked = made }
        return made
    }
}
