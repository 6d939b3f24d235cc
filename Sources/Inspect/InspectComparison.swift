import LinuxKernel
import PCI

/// The model's prediction next to what the machine shows, function by function, and every
/// place they differ. A difference is either a finding about the machine or the model's gap;
/// each carries the model's reason.
public struct InspectComparison {
    /// What the machine shows for one vector.
    public struct ObservedVector: Hashable, Sendable {
        public var irq: Int
        public var mode: String
        /// From `/proc/interrupts`: the chip and what its hwirq decodes to.
        public var chip: String?
        public var hwirq: PCIMSIHardwareIRQ?
        /// From configuration space, for MSI only (an MSI-X message is in the table, in a BAR).
        public var address: UInt64?
        public var data: UInt32?
    }

    public struct Row {
        public var name: String
        public var vendor: UInt16?
        public var device: UInt16?
        public var classCode: UInt32?
        public var driver: String?
        public var predicted: InspectPrediction.Function?
        public var machineGroup: Int?
        public var machineGroupType: String?
        public var machineRegions: [String]
        public var observed: [ObservedVector]
    }

    public struct Disagreement: Hashable, Sendable {
        public enum Kind: String, Hashable, Sendable {
            /// The machine differs from what the model predicts from the same inputs.
            case finding
            /// The model does not model what the machine shows (said which part).
            case modelGap = "model gap"
        }
        public var device: String
        public var what: String
        public var model: String
        public var machine: String
        public var kind: Kind
        public var reason: String
    }

    public var rows: [Row]
    public var disagreements: [Disagreement]

    public init(snapshot: MachineSnapshot, prediction: InspectPrediction) {
        var rows: [Row] = []
        var disagreements: [Disagreement] = []
        let predicted = Dictionary(prediction.functions.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let groups = Dictionary(snapshot.groups.map { ($0.number, $0) }, uniquingKeysWith: { a, _ in a })
        for sysfs in snapshot.functions {
            let model = predicted[sysfs.name]
            let group = sysfs.iommuGroup.flatMap { groups[$0] }
            var observed: [ObservedVector] = []
            for (k, entry) in sysfs.msiIRQs.enumerated() {
                var vector = ObservedVector(irq: entry.irq, mode: entry.mode)
                if let line = snapshot.interrupts?.line(irq: entry.irq) {
                    vector.chip = line.chip
                    vector.hwirq = line.hwirq.map { PCIMSIHardwareIRQ(hwirq: $0, chip: line.chip, device: sysfs.name) }
                }
                if entry.mode == "msi", let msi = sysfs.config?.msi, msi.enabled {
                    vector.address = msi.address
                    // Multiple Message: vector k's data is the base with its low bits set
                    // (PCI 3.0 §6.8.3.1), in the order msi_irqs lists them.
                    vector.data = UInt32(msi.data) | UInt32(k)
                }
                observed.append(vector)
            }
            let row = Row(name: sysfs.name, vendor: sysfs.vendor, device: sysfs.deviceID, classCode: sysfs.classCode,
                          driver: sysfs.driver, predicted: model, machineGroup: sysfs.iommuGroup,
                          machineGroupType: group?.type, machineRegions: group?.reservedRegions.map(\.description) ?? [],
                          observed: observed)
            rows.append(row)
            disagreements += Self.compare(row, sysfs: sysfs, machineMembers: group?.devices.sorted() ?? [],
                                          numbersComparable: prediction.configuration.has(.iommuProbeAtDeviceAdd))
        }
        self.rows = rows
        self.disagreements = disagreements
    }

    /// Compares one function. Group numbers are compared only when the release probes IOMMUs
    /// at `device_add` (`iommuProbeAtDeviceAdd`); before it they follow the order drivers
    /// bound (built-in drivers, then modules as they were loaded), which sysfs does not
    /// record, so only the groups' members are compared.
    static func compare(_ row: Row, sysfs: MachineSnapshot.PCIFunctionSysfs, machineMembers: [String],
                        numbersComparable: Bool) -> [Disagreement] {
        var out: [Disagreement] = []
        func add(_ what: String, _ model: String, _ machine: String, _ kind: Disagreement.Kind, _ reason: String) {
            out.append(Disagreement(device: row.name, what: what, model: model, machine: machine, kind: kind, reason: reason))
        }
        guard let model = row.predicted else {
            add("function", "absent", "present", .modelGap, "the model could not plug this function (see the notes)")
            return out
        }
        if (model.group == nil) != (row.machineGroup == nil) {
            add("iommu group", model.group.map(String.init) ?? "none", row.machineGroup.map(String.init) ?? "none", .finding,
                numbersComparable ? "iommu_probe_device at device_add gives every function behind an IOMMU a group"
                    : "before v6.15 (bcb81ac6ae3c) a function gets its group when a driver first binds (pci_dma_configure), so a driverless one has none")
        } else if model.groupMembers != machineMembers {
            add("iommu group members", model.groupMembers.joined(separator: " "), machineMembers.joined(separator: " "), .finding,
                "pci_device_group: a function shares the group of an upstream DMA alias (a PCIe-to-PCI bridge), of a bridge on the path without ACS enabled (pci_acs_path_enabled with SV, RR, CR, UF), or of a sibling function without ACS")
        } else if numbersComparable, model.group != row.machineGroup {
            add("iommu group number", model.group.map(String.init) ?? "none", row.machineGroup.map(String.init) ?? "none", .finding,
                "iommu_group_alloc numbers groups in iommu_probe_device order, which from v6.15 is device_add order")
        }
        if model.group != nil || row.machineGroup != nil {
            if model.groupType != row.machineGroupType {
                add("default domain type", model.groupType ?? "none", row.machineGroupType ?? "none", .finding,
                    "iommu_get_def_domain_type: the command line (iommu.passthrough, iommu.strict) over the build's IOMMU_DEFAULT_* choice, per-device quirks aside")
            }
            if model.reservedRegions != row.machineRegions {
                add("reserved regions", model.reservedRegions.joined(separator: "; "), row.machineRegions.joined(separator: "; "), .finding,
                    "iommu_get_group_resv_regions: the SMMU driver's SW_MSI window (arm_smmu_get_resv_regions → iommu_dma_get_resv_regions) plus IORT RMRs and DT reserved-memory with iommu-addresses")
            }
        }
        if let machineACS = sysfs.config?.acs?.control, let modelACS = model.acsControl, machineACS != modelACS {
            add("ACS control", Self.hex(UInt64(modelACS)), Self.hex(UInt64(machineACS)), .finding,
                "pci_enable_acs sets SV, RR, CR and UF as the ACS capability allows, only once pci_request_acs ran (IORT parsing on ACPI; of_iommu_configure on a device tree)")
        }
        if model.isBridge {
            if !sysfs.msiIRQs.isEmpty {
                add("vectors", "none", "\(sysfs.msiIRQs.count) (\(sysfs.msiIRQs[0].mode))", .modelGap,
                    "bridges' own interrupts (pcieport's PME, AER and hotplug services, pcie_port_enable_irq_vec) are not modelled")
            }
            return out
        }
        let machineMode: String? = sysfs.msiIRQs.first.map { $0.mode == "msix" ? "MSI-X" : "MSI" }
        if model.mode != machineMode || model.vectors.count != sysfs.msiIRQs.count {
            add("vectors", "\(model.vectors.count) \(model.mode ?? "")".trimmingSpaces, "\(sysfs.msiIRQs.count) \(machineMode ?? "")".trimmingSpaces,
                .finding, model.bindError ?? "the model's driver asked for exactly what msi_irqs shows")
        }
        for (k, seen) in row.observed.enumerated() where k < model.vectors.count {
            let predicted = model.vectors[k]
            if let hw = seen.hwirq {
                if hw.index != predicted.index {
                    add("vector \(k) index", String(predicted.index), String(hw.index), .finding, "msi_index from the hwirq (pci_msi_domain_calc_hwirq / pci_device_domain_set_desc)")
                }
                if let rid = hw.requesterID, rid != model.requesterID.rawValue {
                    add("vector \(k) requester ID", model.requesterID.description, RequesterID(rid).description, .finding, "pci_dev_id in the hwirq is the function's own bus/devfn")
                }
            }
            if let address = seen.address, address != predicted.address {
                add("vector \(k) address", Self.hex(predicted.address), Self.hex(address), .finding,
                    "the MSI doorbell: GITS_TRANSLATER's IOVA from iommu_dma_prepare_msi (an MSI page in a DMA domain, the physical address in an identity domain)")
            }
            if let data = seen.data, data != predicted.data {
                add("vector \(k) data", Self.hex(UInt64(predicted.data)), Self.hex(UInt64(data)), .finding, "the EventID its_alloc_device_irq gave the vector")
            }
        }
        return out
    }

    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

}
