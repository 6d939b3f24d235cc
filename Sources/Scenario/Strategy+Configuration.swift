import LinuxKernel
import VMM

extension Strategy {
    /// The host kernel a strategy runs on. `legacy` is v6.14 (before iommufd's native sw_msi);
    /// every proposed fix is written against the current upstream base, v6.15 with Part-1, and
    /// adds its own patches (STRATEGY-CONTRACT: the patch sets per strategy).
    func hostKernel(_ options: HostOptions) -> KernelConfiguration {
        KernelConfiguration(version: self == .legacy ? .v6_14 : .v6_15, pageSize: options.pageSize, patches: hostPatches)
    }

    /// The out-of-tree patches each strategy needs in the host (KernelPatches' doc comments
    /// name their origin): the RFC's uAPI and irqchip plumbing, Nicolin's VFIO override, the
    /// Part-2 window option, and the Part-3 explicit doorbell mapping and per-vector IOVAs.
    public var hostPatches: KernelPatches {
        switch self {
        case .legacy, .rmrIdentity: []
        case .irqchipRelay: [.vfioMSIIOVAPrepare, .irqchipMSIIOVA, .iommufdIOASMapMSI]
        case .vfioOverride: [.vfioMSIIOVAPrepare, .vfioMSIOverride, .iommufdIOASMapMSI]
        case .swMSIWindow: [.iommufdSWMSIWindow]
        case .vitsDirect: [.vfioMSIIOVAPrepare, .iommufdMSIIOVA, .iommufdIOASMapMSI]
        }
    }

    /// The VMM's configuration: the VM shape from the scenario, the MSI plan from the strategy.
    func vmmConfiguration(_ vm: VMOptions) -> VirtualMachineMonitor.Configuration {
        .init(vcpuCount: vm.vcpus, viommu: vm.viommu == .none ? .none : .acceleratedSMMUv3,
              guestKernel: KernelConfiguration(defaultDomain: vm.guestDomain, pageSize: vm.guestPageSize))
    }
}
