import Bus

/// The host's IOMMU view of one device, as sysfs and debugfs would let an engineer read it:
/// `/sys/kernel/iommu_groups/N/{devices,type,reserved_regions}`, the domain attached now, the
/// fwspec StreamIDs, and the doorbell pages dma-iommu mapped in the device's domain. For
/// reports and the CLI; it reads state only.
public struct IOMMUDeviceView: Hashable, Sendable, CustomStringConvertible {
    public var device: String
    /// Nil when no IOMMU translates the device (dma-direct, physical doorbells).
    public var smmu: String?
    public var streamIDs: [UInt32]
    public var group: Int?
    public var groupDevices: [String]
    /// `/sys/kernel/iommu_groups/N/type` (`iommu_group_show_type`): the type of the group's
    /// DEFAULT domain ("blocked", "identity", "unmanaged", "DMA", "DMA-FQ"; "unknown" without
    /// one), not of the domain attached now: while VFIO or iommufd owns the group and has
    /// attached its own unmanaged domain the file still names the default domain.
    public var groupType: String?
    /// The type of the domain attached now (`group->domain`, which debugfs shows and sysfs does
    /// not): the default domain, or an owner's unmanaged/nested domain, or a blocking domain.
    public var domainType: String?
    public var domainID: Int?
    public var isDefaultDomain: Bool
    public var cookie: String?
    public var reservedRegions: [String]
    /// (IOVA, physical) of each MSI page on the domain's cookie, newest first.
    public var msiPages: [MSIPageView]

    public struct MSIPageView: Hashable, Sendable {
        public var iova: UInt64
        public var physical: UInt64
    }

    public var description: String {
        var lines = ["device \(device)"]
        guard let smmu, let group else {
            lines.append("  no IOMMU: DMA addresses and MSI doorbells are physical")
            return lines.joined(separator: "\n")
        }
        lines.append("  iommu \(smmu), StreamIDs " + streamIDs.map { Hex.format(UInt64($0), minDigits: 1) }.joined(separator: ", "))
        lines.append("  group \(group): " + groupDevices.joined(separator: " "))
        lines.append("  group type \(groupType ?? "unknown") (/sys/kernel/iommu_groups/\(group)/type: the default domain)")
        lines.append("  domain \(domainType ?? "none")\(domainID.map { " #\($0)" } ?? "")\(isDefaultDomain ? " (default)" : "")" + (cookie.map { ", cookie \($0)" } ?? ""))
        for region in reservedRegions { lines.append("  reserved \(region)") }
        for page in msiPages {
            lines.append("  msi page iova \(Hex.format(page.iova)) -> \(Hex.format(page.physical))" + (page.iova == page.physical ? " (hardware MSI region, untranslated)" : ""))
        }
        return lines.joined(separator: "\n")
    }
}

extension IOMMUSubsystem {
    /// The IOMMU view of `device` (see `IOMMUDeviceView`).
    public func view(of device: Device) -> IOMMUDeviceView {
        let group = group(of: device)
        let domain = group?.domain
        var pages: [IOMMUDMAMSIPage] = []
        switch domain?.cookie {
        case .dmaIOVA(let cookie)?: pages = cookie.msiPages
        case .dmaMSI(let cookie)?: pages = cookie.msiPages
        default: break
        }
        return IOMMUDeviceView(
            device: device.name,
            smmu: ops(for: device)?.name,
            streamIDs: device.iommu?.streamIDs.map(\.rawValue) ?? [],
            group: group?.id,
            groupDevices: group?.devices.map(\.name) ?? [],
            groupType: group.map { groupTypeName($0) },
            domainType: domain?.type.rawValue,
            domainID: domain?.id,
            isDefaultDomain: domain != nil && domain === group?.defaultDomain,
            cookie: domain.map { $0.cookieType.rawValue },
            reservedRegions: group.map { reservedRegions(group: $0).map(\.description) } ?? [],
            msiPages: pages.map { IOMMUDeviceView.MSIPageView(iova: $0.iova, physical: $0.physical) })
    }
}
