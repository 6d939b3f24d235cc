import Bus
import PCI

extension IOMMUSubsystem {
    /// `iommu_probe_device` → `__iommu_probe_device`, with `of_iommu_configure` first:
    /// firmware IDs, the driver's `probe_device`, the group (`device_group` →
    /// `pci_device_group`), then either the group's current domain (a later device joins what
    /// the group already uses) or, for the first device, `iommu_setup_default_domain`; finally
    /// `iommu_setup_dma_ops` (dma-iommu for DMA domains).
    ///
    /// A device the firmware gives no IOMMU, or whose probe fails, stays without one and uses
    /// dma-direct, as Linux carries on without the IOMMU; the reason is logged.
    public func probeDevice(_ device: Device) throws(Errno) {
        guard device.iommu == nil else { return }
        logSubsystemInit()
        let fwspec: DeviceIOMMU
        switch configure(device) {
        case .failure(let reason):
            kernel.log.log("iommu", "\(device.name): no IOMMU (\(reason))")
            return
        case .success(let spec):
            fwspec = spec
        }
        device.iommu = fwspec
        guard let driver = ops(for: device) else {
            device.iommu = nil
            return
        }
        let state = IOMMUDeviceState()
        state.device = device
        deviceStates[ObjectIdentifier(device)] = state
        do {
            try driver.probeDevice(device)
        } catch {
            kernel.log.log("iommu", "\(device.name): probe_device failed: \(error)")
            device.iommu = nil
            deviceStates[ObjectIdentifier(device)] = nil
            return
        }
        let group = deviceGroup(device)
        group.devices.append(device)
        fwspec.group = group
        kernel.log.log(device.name, "Adding to iommu group \(group.id)")
        state.requireDirect = reservedRegions(for: device).contains { $0.type == .direct }

        do {
            if let defaultDomain = group.defaultDomain {
                try createDirectMappings(defaultDomain, device: device)
            }
            if let current = group.domain {
                try setDeviceDomain(group: group, device: device, domain: current)
            } else {
                try setupDefaultDomain(group)
            }
        } catch {
            kernel.log.log("iommu", "\(device.name): failed to set up a domain: \(error)")
            group.devices.removeAll { $0 === device }
            device.iommu = nil
            deviceStates[ObjectIdentifier(device)] = nil
            if group.devices.isEmpty { groups.removeAll { $0 === group } }
            return
        }
        setupDMAOps(device)
    }

    /// `iommu_group_get_for_dev` → `arm_smmu_device_group` → `pci_device_group` for PCI
    /// functions (drivers/iommu/iommu.c), in its order:
    /// 1. `pci_for_each_dma_alias` with `get_pci_alias_or_group`: the first device that
    ///    produces one of our DMA aliases (an upstream PCIe-to-PCI or conventional bridge) and
    ///    already has a group gives it; the last such device is the point of minimum
    ///    granularity;
    /// 2. from there up to the root bus, every bridge without ACS (`pci_acs_path_enabled`)
    ///    widens the group: the nearest one that has a group gives it;
    /// 3. a multifunction device without ACS shares the group of a sibling function
    ///    (`get_pci_function_alias_group`);
    /// 4. else a new group, numbered in creation order.
    /// ACS is read from bridges that have the capability (`PCISubsystem.acsEnabled`, enabled as
    /// `pci_enable_acs` does); endpoints' ACS is not modelled, so `pci_acs_enabled` is false for
    /// every multifunction device, as Linux finds it without one.
    /// `pci_get_alias_group` (quirk aliases in `dma_alias_mask`) has nothing to find here.
    /// One addition from the model's contract: a device sharing a StreamID on the same IOMMU
    /// with a grouped device joins that group (arm-smmu-v3 refuses such a master before
    /// grouping, so this only matters for drivers that accept one).
    func deviceGroup(_ device: Device) -> IOMMUGroup {
        if let pci = device.pci {
            var granularity = pci
            for bridge in upstreamBridges(of: pci) where producesDMAAlias(bridge) {
                if let group = bridge.device.iommu?.group { return group }
                granularity = bridge
            }
            // pci_acs_path_enabled(bus->self, NULL, REQ_ACS_FLAGS): the first bridge with ACS
            // stops the widening.
            let path = upstreamBridges(of: granularity)
            for (i, bridge) in path.enumerated() {
                if path[i...].allSatisfy(kernel.pci.acsEnabled) { break }
                if let group = bridge.device.iommu?.group { return group }
            }
            if granularity.isMultifunction {
                for other in kernel.pci.devices where other !== granularity && other.isMultifunction
                    && other.hostBridge == granularity.hostBridge
                    && other.requesterID.bus == granularity.requesterID.bus
                    && other.requesterID.device == granularity.requesterID.device {
                    if let group = other.device.iommu?.group { return group }
                }
            }
        }
        let mySIDs = Set(device.iommu?.streamIDs.map(\.rawValue) ?? [])
        for group in groups {
            for other in group.devices where other !== device {
                if let otherIOMMU = other.iommu, otherIOMMU.iommuIndex == device.iommu?.iommuIndex,
                   !mySIDs.isDisjoint(with: otherIOMMU.streamIDs.map(\.rawValue)) { return group }
            }
        }
        let group = IOMMUGroup(id: groups.count)
        groups.append(group)
        return group
    }

    /// `bus->self` up to the root bus, nearest first.
    func upstreamBridges(of pci: PCIDevice) -> [PCIDevice] {
        var chain: [PCIDevice] = []
        var bridge = pci.upstreamBridge
        while let b = bridge, chain.count < 256 {
            chain.append(b)
            bridge = b.upstreamBridge
        }
        return chain
    }

    /// Whether `pci_for_each_dma_alias` calls back for this upstream bridge: a PCIe-to-PCI
    /// bridge (subordinate bus, devfn 0), a PCI-to-PCIe bridge or a conventional bridge (its
    /// own RID); root ports and switch ports do not alias.
    func producesDMAAlias(_ bridge: PCIDevice) -> Bool {
        guard let type = bridge.expressPortType else { return true }
        return type == 0x7 || type == 0x8
    }

    /// `iommu_def_domain_type` from the command line (`iommu_subsys_init`): passthrough →
    /// IDENTITY, `iommu.strict=0` → DMA_FQ, else DMA.
    var configuredDefaultDomainType: IOMMUDomainType {
        switch kernel.configuration.defaultDomain {
        case .identity: .identity
        case .dmaLazy: .dmaFQ
        case .dmaStrict: .dma
        }
    }

    /// `iommu_get_default_domain_type(group, target_type)` with `iommu_get_def_domain_type`
    /// per device: the driver's forced type, if any; conflicting forced types resolve to
    /// IDENTITY ("IDENTITY takes precedence") or the first one; nil = no preference.
    func requestedDefaultDomainType(_ group: IOMMUGroup) -> IOMMUDomainType? {
        var type: IOMMUDomainType?
        for device in group.devices {
            guard let driver = ops(for: device), let forced = driver.defaultDomainType(for: device) else { continue }
            if type == nil || type == forced { type = forced; continue }
            kernel.log.log("iommu", "\(device.name): IOMMU driver error, requesting conflicting def_domain_type")
            if forced == .identity { type = forced }
        }
        return type
    }

    /// `__iommu_group_domain_alloc` / `__iommu_paging_domain_alloc_flags`: IDENTITY is the
    /// driver's static identity domain; a paging type is a new domain from
    /// `domain_alloc_paging_flags` whose type the core then sets (`iommu_domain_init`); DMA
    /// types also get their dma-iommu cookie (`iommu_get_dma_cookie`).
    func allocateGroupDomain(_ group: IOMMUGroup, type: IOMMUDomainType) throws(Errno) -> IOMMUDomain {
        guard let device = group.devices.first, let driver = ops(for: device) else { throw .ENODEV }
        switch type {
        case .identity: return driver.identityDomain
        case .blocked: return driver.blockedDomain
        case .dma, .dmaFQ, .unmanaged:
            let domain = try driver.allocatePagingDomain(for: device, flags: [])
            domain.type = type
            if type != .unmanaged { try getDMACookie(domain) }
            return domain
        case .nested:
            throw .EOPNOTSUPP
        }
    }

    /// `iommu_setup_default_domain(group, 0)` for a new group: the requested type (or the
    /// configured default, falling back to DMA when that cannot be allocated:
    /// `iommu_group_alloc_default_domain`), direct mappings for every device of a DMA domain,
    /// then attach the whole group (`__iommu_group_set_domain_internal`).
    func setupDefaultDomain(_ group: IOMMUGroup) throws(Errno) {
        let domain: IOMMUDomain
        if let requested = requestedDefaultDomainType(group) {
            domain = try allocateGroupDomain(group, type: requested)
        } else {
            do {
                domain = try allocateGroupDomain(group, type: configuredDefaultDomainType)
            } catch {
                guard configuredDefaultDomainType != .dma else { throw error }
                domain = try allocateGroupDomain(group, type: .dma)
                kernel.log.log("iommu", "Failed to allocate default IOMMU domain of type \(configuredDefaultDomainType.rawValue) for group \(group.id) - Falling back to IOMMU_DOMAIN_DMA")
            }
        }
        if domain.type == .dma || domain.type == .dmaFQ {
            for device in group.devices { try createDirectMappings(domain, device: device) }
        }
        group.defaultDomain = domain
        try setGroupDomain(group, domain)
    }

    /// `iommu_subsys_init`'s two lines, once, before the first device: the default domain type
    /// (`iommu_domain_type_str`) and the invalidation policy.
    func logSubsystemInit() {
        guard !loggedSubsystemInit else { return }
        loggedSubsystemInit = true
        let type: String
        switch kernel.configuration.defaultDomain {
        case .identity: type = "Passthrough"
        case .dmaStrict, .dmaLazy: type = "Translated"
        }
        kernel.log.log("iommu", "Default domain type: \(type)")
        if kernel.configuration.defaultDomain != .identity {
            kernel.log.log("iommu", "DMA domain TLB invalidation policy: \(kernel.configuration.defaultDomain == .dmaLazy ? "lazy" : "strict") mode")
        }
    }

    /// `iommu_create_device_direct_mappings(domain, dev)`: every DIRECT and DIRECT_RELAXABLE
    /// region mapped 1:1 (granule-aligned outwards-in: start rounded up, end rounded up) into a
    /// DMA domain, skipping pages already mapped; then one `flush_iotlb_all`.
    func createDirectMappings(_ domain: IOMMUDomain, device: Device) throws(Errno) {
        try createDirectMappings(domain, regions: reservedRegions(for: device))
    }

    func createDirectMappings(_ domain: IOMMUDomain, regions: [ReservedRegion]) throws(Errno) {
        guard domain.type == .dma || domain.type == .dmaFQ, let pageSize = Self.minimumPageSize(domain) else { return }
        for region in regions where region.type == .direct || region.type == .directRelaxable {
            let start = (region.start &+ pageSize &- 1) & ~(pageSize &- 1)
            let (rawEnd, overflow) = region.start.addingReportingOverflow(region.length)
            guard !overflow else { continue }
            let end = (rawEnd &+ pageSize &- 1) & ~(pageSize &- 1)
            var mapSize: UInt64 = 0
            var address = start
            while address <= end {
                if address != end, iovaToPhys(domain, address) == nil {
                    mapSize &+= pageSize
                } else if mapSize > 0 {
                    try map(domain, iova: address &- mapSize, physical: address &- mapSize, size: mapSize, protection: region.protection)
                    mapSize = 0
                }
                if address == end { break }
                address &+= pageSize
            }
        }
        if !regions.isEmpty { domain.operations?.flushIOTLBAll() }
    }

    /// `iommu_setup_dma_ops(dev)`: a PCI device tries 32-bit IOVAs first unless
    /// `iommu.forcedac`; a DMA domain makes the DMA API go through dma-iommu, whose IOVA space
    /// the first device initialises (`iommu_dma_init_domain`). If that fails, Linux warns
    /// "Failed to set up IOMMU for device %s; retaining platform DMA ops".
    func setupDMAOps(_ device: Device) {
        guard let state = state(of: device) else { return }
        state.pci32BitWorkaround = device.pci != nil && !forceDAC
        guard let domain = domain(for: device), domain.type == .dma || domain.type == .dmaFQ else {
            state.usesDMAIOMMU = false
            return
        }
        state.usesDMAIOMMU = true
        do {
            try initDMADomain(domain, device: device)
        } catch {
            kernel.log.log("iommu", "Failed to set up IOMMU for device \(device.name); retaining platform DMA ops")
            state.usesDMAIOMMU = false
        }
    }
}
