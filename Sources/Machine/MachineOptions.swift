import Bus
import GIC
import SMMUv3

/// Choices a platform description does not make: what the SMMU and ITS implement (their ID
/// registers are not in a device tree) and platform quirks.
public struct MachineOptions: Hashable, Sendable {
    /// The SMMUv3 implementation behind every `arm,smmu-v3` node.
    public var smmu: SMMUConfiguration = .default
    /// The ITS implementation; `cpuCount` and `version` are taken from the description.
    public var gic: GICConfiguration = .qemuVirt
    /// Mark every ITS as not translated by the SMMU: device writes to its GITS_TRANSLATER page
    /// reach the ITS without going through the SMMU. Real platforms of this shape exist (Linux
    /// declares one: the ACPI HiSilicon Hi161x SMMUv3 model in drivers/acpi/arm64/iort.c, whose
    /// ITS doorbell gets an IOMMU_RESV_MSI region); a device tree cannot say it, so it is an
    /// option here, and `Topology.untranslatedITSBases` can name single ITSs.
    public var untranslatedITS: Bool = false

    public init() {}
}
