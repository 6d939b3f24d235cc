import Bus
import Firmware
import LinuxKernel
import VMM

extension World {
    /// Where a guest device's reserved regions came from, in the order they arose: the guest
    /// firmware the VMM wrote (QEMU 11 `virt`: ACPI tables with an IORT when the vSMMU is
    /// accelerated, the device tree otherwise), the RMR nodes of that IORT, and what the guest
    /// kernel made of them (`iommu_get_resv_regions` → `arm_smmu_get_resv_regions` →
    /// `iort_iommu_get_resv_regions`; DIRECT regions are then mapped 1:1 by
    /// `iommu_create_device_direct_mappings`). One line each, for `doorbell trace`.
    public func guestFirmwareLines(device: Int) -> [String] {
        var lines: [String] = []
        let acpi = vmm.configuration.resolvedFirmware == .acpi
        if acpi, let iort = vmm.guestTopology.iort {
            let rmrs = iort.nodes.filter { if case .rmr = $0.kind { true } else { false } }
            lines.append("guest firmware: ACPI tables (IORT revision \(iort.header.revision), \(iort.nodes.count) nodes, \(rmrs.count) RMR)")
            for node in rmrs {
                guard case .rmr(let rmr) = node.kind else { continue }
                let ids = node.mappings.map { "input \(Hex.format(UInt64($0.inputBase), minDigits: 1)) count \($0.count) → StreamID \(Hex.format(UInt64($0.outputBase), minDigits: 1))\($0.isSingleMapping ? " (single)" : "")" }
                let ranges = rmr.ranges.map { "\(Hex.format($0.base)) + \(Hex.format($0.length, minDigits: 1))" }
                lines.append("  IORT RMR node at \(Hex.format(UInt64(node.offset), minDigits: 1)) (revision \(node.revision), flags \(Hex.format(UInt64(rmr.flags), minDigits: 1))): \(ids.joined(separator: ", ")); range \(ranges.joined(separator: ", "))")
            }
            let preserve = vmm.guestTopology.pcieHostBridges.first?.preserveBootConfiguration ?? false
            lines.append("  host bridge _DSM function 5 (preserve_config): \(preserve ? "set" : "not set")")
        } else {
            lines.append("guest firmware: device tree (QEMU virt's: no RMR, no reserved IOVA window)")
        }
        guard guestDevices.indices.contains(device) else { return lines }
        let g = guestDevices[device]
        let regions = guest.iommu.reservedRegions(for: g.device).filter { $0.type == .direct || $0.type == .directRelaxable }
        let source = acpi ? "iort_iommu_get_resv_regions" : "iommu_get_resv_regions"
        if regions.isEmpty {
            lines.append("guest kernel: \(source) gives \(g.name) no direct region, so its DMA domain maps nothing 1:1")
        }
        for region in regions {
            let end = region.start &+ (region.length &- 1)
            lines.append("guest kernel: \(source) → IOMMU_RESV_\(region.type == .direct ? "DIRECT" : "DIRECT_RELAXABLE") [\(Hex.format(region.start))–\(Hex.format(end))] prot \(Self.protectionText(region.protection)) for \(g.name); iommu_create_device_direct_mappings maps it 1:1 in the DMA domain")
        }
        return lines
    }

    static func protectionText(_ p: IOMMUProtection) -> String {
        let names: [(IOMMUProtection, String)] = [(.read, "READ"), (.write, "WRITE"), (.cache, "CACHE"), (.noExec, "NOEXEC"), (.mmio, "MMIO"), (.priv, "PRIV")]
        let set = names.filter { p.contains($0.0) }.map(\.1)
        return set.isEmpty ? "0" : set.joined(separator: "|")
    }
}
