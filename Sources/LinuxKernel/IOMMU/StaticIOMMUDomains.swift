/// A driver's static identity and blocked domains (the file-scope `static struct iommu_domain`
/// objects `arm_smmu_identity_domain` and `arm_smmu_blocked_domain` of arm-smmu-v3.c, and the
/// identity and blocked domains arm-smmu.c's driver model hands out the same way): one object
/// each per driver. The model makes each on first use, so it takes the kernel's next object id
/// then. Kept as explicit optional storage so a forked driver copies exactly the ones the original made.
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
