extension IOMMUSubsystem {
    /// `__iommu_device_set_domain(group, dev, new_domain, flags)`: a device whose firmware
    /// requires a direct mapping refuses a blocked domain ("Firmware has requested this device
    /// have a 1:1 IOMMU mapping, rejecting configuring the device without a 1:1 mapping.
    /// Contact your platform vendor.", -EINVAL); else the driver's `attach_dev`.
    func setDeviceDomain(group: IOMMUGroup, device: Device, domain: IOMMUDomain) throws(Errno) {
        if state(of: device)?.requireDirect == true, domain.type == .blocked || domain === group.blockingDomain {
            kernel.log.log(device.name, "Firmware has requested this device have a 1:1 IOMMU mapping, rejecting configuring the device without a 1:1 mapping. Contact your platform vendor.")
            throw .EINVAL
        }
        guard let driver = ops(for: device) else { throw .ENODEV }
        try driver.attach(domain, to: device)
    }

    /// `__iommu_group_set_domain_internal(group, new_domain, 0)`: attach every device; if one
    /// fails, put the ones already moved back on the group's old domain and fail.
    func setGroupDomain(_ group: IOMMUGroup, _ domain: IOMMUDomain) throws(Errno) {
        if group.domain === domain { return }
        for (index, device) in group.devices.enumerated() {
            do {
                try setDeviceDomain(group: group, device: device, domain: domain)
            } catch {
                if let old = group.domain {
                    for earlier in group.devices.prefix(index) {
                        try? setDeviceDomain(group: group, device: earlier, domain: old)
                    }
                }
                throw error
            }
        }
        group.domain = domain
    }

    /// `domain->owner == dev_iommu_ops(dev)`: a domain is only for devices of the same driver
    /// instance.
    func domainMatches(_ domain: IOMMUDomain, _ group: IOMMUGroup) -> Bool {
        guard let device = group.devices.first, let driver = ops(for: device) else { return false }
        return domain.driver === driver
    }

    /// `iommu_attach_group(domain, group)` → `__iommu_attach_group`: -EBUSY when the group is
    /// already attached to a domain other than its default or blocking domain (even the same
    /// one: a user must detach first); -EINVAL for a domain of another IOMMU instance.
    public func attachGroup(_ domain: IOMMUDomain, to group: IOMMUGroup) throws(Errno) {
        if let current = group.domain, current !== group.defaultDomain, current !== group.blockingDomain {
            throw .EBUSY
        }
        guard domainMatches(domain, group) else { throw .EINVAL }
        try setGroupDomain(group, domain)
    }

    /// `iommu_detach_group(domain, group)` → `__iommu_group_set_core_domain`: back to the
    /// blocking domain while a user owns the group, else to the default domain, whatever
    /// `domain` is (Linux does not look at it). Cannot fail.
    public func detachGroup(_ domain: IOMMUDomain, from group: IOMMUGroup) {
        let core = group.owner != nil ? (group.blockingDomain ?? group.defaultDomain) : group.defaultDomain
        guard let target = core else { return }
        try? setGroupDomain(group, target)
    }

    /// `iommu_group_replace_domain(group, new_domain)`: switch a group that a user owns
    /// straight from one domain to another without passing through blocking (iommufd's
    /// replace). -EINVAL for a domain of another IOMMU.
    public func replaceGroupDomain(_ group: IOMMUGroup, with domain: IOMMUDomain) throws(Errno) {
        guard domainMatches(domain, group) else { throw .EINVAL }
        try setGroupDomain(group, domain)
    }

    /// `iommu_attach_device(domain, dev)`: only for a device alone in its group (-EINVAL).
    public func attachDevice(_ domain: IOMMUDomain, _ device: Device) throws(Errno) {
        guard let group = group(of: device) else { throw .ENODEV }
        guard group.devices.count == 1 else { throw .EINVAL }
        try attachGroup(domain, to: group)
    }

    /// `iommu_detach_device(domain, dev)`.
    public func detachDevice(_ domain: IOMMUDomain, _ device: Device) {
        guard let group = group(of: device), group.devices.count == 1 else { return }
        detachGroup(domain, from: group)
    }

    /// `iommu_paging_domain_alloc_flags(dev, flags)` (VFIO type1, iommufd HWPT paging): a new
    /// UNMANAGED domain from the device's IOMMU, without a cookie.
    public func allocateDomain(for device: Device, flags: DomainAllocationFlags = []) throws(Errno) -> IOMMUDomain {
        guard let driver = ops(for: device) else { throw .ENODEV }
        let domain = try driver.allocatePagingDomain(for: device, flags: flags)
        domain.type = .unmanaged
        return domain
    }

    /// `iommu_group_claim_dma_owner(group, owner)` (VFIO groups): -EPERM if anyone owns the
    /// group already ("Only a single owner may exist for a group"); the group moves to its
    /// blocking domain (`__iommu_take_dma_ownership`, which refuses -EBUSY when the group is
    /// not on its default domain).
    public func claimDMAOwner(_ group: IOMMUGroup, owner: AnyObject) throws(Errno) {
        guard group.ownerCount == 0 else { throw .EPERM }
        try takeDMAOwnership(group, owner: owner)
    }

    /// `iommu_device_claim_dma_owner(dev, owner)` (VFIO cdev / iommufd): several claims by the
    /// same owner nest; another owner gets -EPERM.
    public func claimDMAOwner(device: Device, owner: AnyObject) throws(Errno) {
        guard let group = group(of: device) else { throw .ENODEV }
        if group.ownerCount > 0 {
            guard group.owner == ObjectIdentifier(owner) else { throw .EPERM }
            group.ownerCount += 1
            return
        }
        try takeDMAOwnership(group, owner: owner)
    }

    func takeDMAOwnership(_ group: IOMMUGroup, owner: AnyObject) throws(Errno) {
        if let current = group.domain, current !== group.defaultDomain { throw .EBUSY }
        if group.blockingDomain == nil {
            group.blockingDomain = try allocateGroupDomain(group, type: .blocked)
        }
        if let blocking = group.blockingDomain { try setGroupDomain(group, blocking) }
        group.owner = ObjectIdentifier(owner)
        group.ownerCount = 1
    }

    /// `iommu_group_release_dma_owner` → `__iommu_release_dma_ownership`: every claim goes at
    /// once and the group returns to its default domain.
    public func releaseDMAOwner(_ group: IOMMUGroup) {
        guard group.ownerCount > 0 else { return }
        group.ownerCount = 0
        group.owner = nil
        if let defaultDomain = group.defaultDomain { try? setGroupDomain(group, defaultDomain) }
    }

    /// `iommu_device_release_dma_owner(dev)`: drops one claim of a device-level owner; the last
    /// one releases the group.
    public func releaseDMAOwner(device: Device) {
        guard let group = group(of: device), group.ownerCount > 0 else { return }
        if group.ownerCount > 1 {
            group.ownerCount -= 1
        } else {
            releaseDMAOwner(group)
        }
    }

    /// `iommu_group_has_isolated_msi(group)`: every device's MSI domain isolates MSIs
    /// (`msi_device_has_isolated_msi`: the GICv3 ITS domain sets IRQ_DOMAIN_FLAG_ISOLATED_MSI
    /// because it checks the DeviceID; GICv2m and MBI do not, and neither does an ITS behind a
    /// SynQuacer / TI K3 pre-ITS, whose quirk clears the flag: there the DeviceID comes from the
    /// address written, which any device can pick). A PCI function's MSI parent is
    /// found the way `of_msi_map_get_device_domain` does: the host bridge's `msi-map` for the
    /// RID, else its `msi-parent`. On ACPI it is the IORT's (`iort_get_device_domain`, through
    /// `PCISubsystem.msiDomain(of:)`): IORT ID mappings reach only ITS groups, so any MSI
    /// domain found there isolates.
    public func groupHasIsolatedMSI(_ group: IOMMUGroup) -> Bool {
        group.devices.allSatisfy { deviceHasIsolatedMSI($0) }
    }

    func deviceHasIsolatedMSI(_ device: Device) -> Bool {
        guard let pci = device.pci, pci.hostBridge >= 0, pci.hostBridge < kernel.topology.pcieHostBridges.count else { return false }
        if kernel.topology.iort != nil {
            guard let domain = try? kernel.pci.msiDomain(of: pci) else { return false }
            if domain.its < 0 { return false }   // GICv2m / MBI: no IRQ_DOMAIN_FLAG_ISOLATED_MSI
            return kernel.itsDrivers.indices.contains(domain.its) ? kernel.itsDrivers[domain.its].isolatedMSI : true
        }
        let bridge = kernel.topology.pcieHostBridges[pci.hostBridge]
        if let map = bridge.msiMap {
            if case .mapped(_, let target, _) = map.lookup(UInt32(pci.requesterID.rawValue)) {
                if case .its(let i) = target { return itsDomainIsolates(i) }
                return false
            }
        }
        if let parent = bridge.msiParent.first, case .its(let i) = parent.target { return itsDomainIsolates(i) }
        return false
    }

    /// IRQ_DOMAIN_FLAG_ISOLATED_MSI of the MSI domain of the description's ITS `index`: its
    /// driver's flag (cleared by the pre-ITS quirk); set for an ITS no driver probed, as before.
    func itsDomainIsolates(_ index: Int) -> Bool {
        guard kernel.topology.its.indices.contains(index) else { return true }
        let path = kernel.topology.its[index].path
        return kernel.itsDrivers.first(where: { $0.node.path == path })?.isolatedMSI ?? true
    }
}
