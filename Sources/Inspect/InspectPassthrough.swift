import Firmware
import LinuxKernel
import PCI
import Scenario
import VMM

/// `inspect --passthrough BDF`: the seed's question on the user's machine. First what the
/// host allows (the checks VFIO and iommufd make before a VMM gets the device), then the
/// device passed through to a VM with an accelerated vSMMU and to one without a vIOMMU, under
/// each strategy, on the platform the machine's firmware describes.
public struct InspectPassthrough {
    /// One host-side check and its answer.
    public struct Check: Hashable, Sendable {
        public var name: String
        public var passed: Bool
        public var detail: String
    }

    public var device: String
    public var checks: [Check]
    /// The scenarios run (with and without a vSMMU) and their strategy runs.
    public var runs: [(scenario: ScenarioDescription, runs: [StrategyRun])]

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public init(snapshot: MachineSnapshot, prediction: InspectPrediction, device name: String,
                strategies: [Strategy]) throws(Failure) {
        guard let sysfs = snapshot.functions.first(where: { $0.name == name || $0.name.hasSuffix(name) && name.count >= 7 }) else {
            throw Failure(description: "--passthrough \(name): no such PCI function in \(snapshot.source) (functions: \(snapshot.functions.map(\.name).joined(separator: ", ")))")
        }
        device = sysfs.name
        guard let model = prediction.functions.first(where: { $0.name == sysfs.name }) else {
            throw Failure(description: "--passthrough \(sysfs.name): the model could not plug this function (see the notes)")
        }
        guard !model.isBridge, let config = sysfs.config else {
            throw Failure(description: "--passthrough \(sysfs.name): a bridge cannot be passed through (vfio-pci binds endpoints only: vfio_pci_probe refuses header type 1 functions)")
        }
        checks = Self.hostChecks(snapshot: snapshot, sysfs: sysfs, model: model)

        guard config.msix != nil || config.msi != nil else {
            throw Failure(description: "--passthrough \(sysfs.name): the function has neither MSI nor MSI-X; the strategies are about MSIs (INTx passthrough is not modelled in scenarios)")
        }
        let interrupts: DeviceDescription.Interrupts = config.msix != nil ? .msix : .msi
        let vectors = config.msix?.tableSize ?? config.msi?.capable ?? 1
        let bridge: DeviceDescription.Bridge? = sysfs.bus == 0 ? nil : .rootPort
        let rid = RequesterID(bus: sysfs.bus, device: sysfs.device, function: sysfs.function)
        var results: [(ScenarioDescription, [StrategyRun])] = []
        for viommu in [VMOptions.VIOMMU.acceleratedSMMUv3, .none] {
            var device = DeviceDescription(requesterID: rid, interrupts: interrupts, vectors: min(vectors, 64))
            device.hostBridge = bridge
            let scenario = ScenarioDescription(
                name: sysfs.name,
                summary: "\(sysfs.name) passed through to a VM \(viommu == .none ? "without a vIOMMU" : "with an accelerated vSMMU (guest DMA domain, nested)")",
                platform: .deviceTree(path: snapshot.source), host: HostOptions(kernel: prediction.configuration.version),
                vm: VMOptions(viommu: viommu), devices: [device], strategies: strategies, events: [], expectations: [])
            results.append((scenario, ScenarioRunner.runAll(scenario, platformTopology: prediction.machine.topology)))
        }
        runs = results
    }

    /// The host's preconditions, from the machine's files:
    /// - group viability (`vfio_group_viable` before v6.0, now `iommu_group_dma_owner_claimed`
    ///   with `driver_managed_dma`): every other member is unbound, bound to vfio-pci, or a
    ///   bridge bound to pcieport (which sets `driver_managed_dma`, Linux v5.19 commit
    ///   "PCI: portdrv: Set driver_managed_dma");
    /// - isolated MSI (`msi_device_has_isolated_msi`, v6.3): the GICv3 ITS's MSI domain sets
    ///   IRQ_DOMAIN_FLAG_ISOLATED_MSI (its `DeviceID` tags every write), so VFIO type1 and
    ///   iommufd do not need `allow_unsafe_interrupts`; a GICv2m frame does not;
    /// - the VM's RAM against the group's reserved regions: iommufd's
    ///   `iopt_table_enforce_dev_resv_regions` reserves them in the IOAS, so guest RAM mapped
    ///   over one fails `IOMMU_IOAS_MAP` with EINVAL (QEMU `virt`'s RAM starts at 0x4000_0000).
    static func hostChecks(snapshot: MachineSnapshot, sysfs: MachineSnapshot.PCIFunctionSysfs,
                           model: InspectPrediction.Function) -> [Check] {
        var checks: [Check] = []
        if let number = sysfs.iommuGroup, let group = snapshot.groups.first(where: { $0.number == number }) {
            let blockers = group.devices.filter { $0 != sysfs.name }.compactMap { member -> String? in
                guard let other = snapshot.functions.first(where: { $0.name == member }) else { return nil }
                switch other.driver {
                case nil, "vfio-pci"?: return nil
                case "pcieport"? where other.config?.isBridge == true: return nil
                case let driver?: return "\(member) (bound to \(driver))"
                }
            }
            checks.append(Check(name: "group viable", passed: blockers.isEmpty,
                                detail: blockers.isEmpty ? "group \(number): \(group.devices.joined(separator: " "))"
                                    : "group \(number) also holds \(blockers.joined(separator: ", ")): unbind it or bind it to vfio-pci first"))
            let ram = GuestMemoryMap.virt.ram
            let clash = group.reservedRegions.filter { $0.start <= ram.base &+ ram.size &- 1 && ram.base <= $0.end }
            checks.append(Check(name: "VM RAM clear of reserved regions", passed: clash.isEmpty,
                                detail: clash.isEmpty ? "QEMU virt RAM from 0x4000_0000 overlaps none of the group's reserved regions"
                                    : "the VM's RAM overlaps \(clash.map(\.description).joined(separator: "; ")): IOMMU_IOAS_MAP fails with EINVAL"))
        } else {
            checks.append(Check(name: "group viable", passed: false, detail: "no IOMMU group: VFIO needs one (vfio_group_find_or_alloc; noiommu mode aside)"))
        }
        let chips = Set(sysfs.msiIRQs.compactMap { snapshot.interrupts?.line(irq: $0.irq)?.chip }).sorted()
        if chips.isEmpty {
            checks.append(Check(name: "isolated MSI", passed: model.deviceID != nil,
                                detail: model.deviceID != nil ? "the model's MSI domain is the GICv3 ITS (DeviceID \(String(model.deviceID ?? 0, radix: 16))): IRQ_DOMAIN_FLAG_ISOLATED_MSI" : "no ITS DeviceID for this function"))
        } else {
            let its = chips.allSatisfy { $0.hasPrefix("ITS") }
            checks.append(Check(name: "isolated MSI", passed: its,
                                detail: its ? "the machine's MSIs go through \(chips.joined(separator: ", ")) (GICv3 ITS: IRQ_DOMAIN_FLAG_ISOLATED_MSI)"
                                    : "the machine's MSIs go through \(chips.joined(separator: ", ")), not an ITS: VFIO needs allow_unsafe_interrupts"))
        }
        return checks
    }
}
