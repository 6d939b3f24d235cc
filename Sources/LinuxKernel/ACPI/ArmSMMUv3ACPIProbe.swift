import Firmware
import SMMUv3

/// `ARM_SMMU_OPT_*` (arm-smmu-v3.h) the model acts on.
public struct ArmSMMUv3Options: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `ARM_SMMU_OPT_SKIP_PREFETCH`: never issue CMD_PREFETCH_CONFIG. The model's driver issues
    /// no prefetch commands at all, so the option changes nothing here.
    public static let skipPrefetch = ArmSMMUv3Options(rawValue: 1 << 0)
    /// `ARM_SMMU_OPT_PAGE0_REGS_ONLY`: page 1 is not implemented; the queue PROD/CONS registers
    /// of page 1 are reached at their page-0 offsets (`arm_smmu_page1_fixup`).
    public static let page0RegistersOnly = ArmSMMUv3Options(rawValue: 1 << 1)
}

extension ArmSMMUv3Driver {
    /// `arm_smmu_device_acpi_probe` → `acpi_smmu_get_options` for an SMMU read from an IORT
    /// SMMUv3 node (DEN 0049E.f §3.1.1.7 Model): Cavium CN99xx → PAGE0_REGS_ONLY, HiSilicon
    /// Hi161x → SKIP_PREFETCH; empty on a device tree (where `arm_smmu_device_dt_probe` would
    /// read `cavium,cn9900-broken-page1-regspace` / `hisilicon,broken-prefetch-cmd`, properties
    /// the topology does not record).
    ///
    /// The node's other probe-time flags: COHACC override → ARM_SMMU_FEAT_COHERENCY reaches the
    /// driver through `SMMUv3Description.dmaCoherent` (set from the flag); the HTTU override
    /// (ARM_SMMU_FEAT_HA/HD) is not modelled, since the driver does not use hardware
    /// access/dirty flag updates.
    public var options: ArmSMMUv3Options {
        guard let n = node.iortNode, let iort = kernel.topology.iort, iort.nodes.indices.contains(n),
              case .smmuV3(let smmu) = iort.nodes[n].kind else { return [] }
        switch smmu.model {
        case IORTSMMUv3.Model.caviumCN99xx: return .page0RegistersOnly
        case IORTSMMUv3.Model.hisiliconHi161x: return .skipPrefetch
        default: return []
        }
    }

    /// EVENTQ_PROD after `arm_smmu_page1_fixup`.
    var eventQueueProdRegister: UInt64 {
        options.contains(.page0RegistersOnly) ? SMMURegisterOffset.eventqProdPage0Alias : SMMURegisterOffset.eventqProd
    }

    /// EVENTQ_CONS after `arm_smmu_page1_fixup`.
    var eventQueueConsRegister: UInt64 {
        options.contains(.page0RegistersOnly) ? SMMURegisterOffset.eventqConsPage0Alias : SMMURegisterOffset.eventqCons
    }
}
