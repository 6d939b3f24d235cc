import Bus

extension IOMMUSubsystem {
    /// `iommu_release_device` (the IOMMU bus notifier's BUS_NOTIFY_REMOVED_DEVICE, from
    /// `device_del` when a PCI function is removed) → `__iommu_group_remove_device` →
    /// `iommu_deinit_device`, for arm-smmu-v3:
    /// 1. the device leaves its group (`group->devices`);
    /// 2. the driver puts its STEs back to what `arm_smmu_init_strtab` set — identity (bypass
    ///    STE) for a device whose firmware asked for a 1:1 mapping (`dev->iommu->require_direct`,
    ///    an RMR), blocked (abort STE) otherwise — with CFGI_STE + CMD_SYNC through the normal
    ///    STE writer (v6.15 `arm_smmu_release_device`; later kernels reach the same STEs through
    ///    `ops->release_domain` = the blocked domain, with the core substituting identity for
    ///    require_direct: Nicolin Chen's "iommu/arm-smmu-v3: Use release_domain"), then
    ///    `arm_smmu_remove_master` takes its StreamIDs out of the stream tree;
    /// 3. the last device out of a group frees the group's default domain (its cookie, then
    ///    `arm_smmu_domain_free_paging`: ASID/VMID released) and the group has no domain;
    /// 4. `dev->iommu_group = NULL`, `dev_iommu_free`: the device has no IOMMU state left.
    /// Linux then drops the group (its number returns to the ida); the model keeps the empty
    /// group object in `groups` so that group numbers, which it hands out by count, stay unique.
    /// A device without an IOMMU is left as it is.
    public func releaseDevice(_ device: Device) {
        guard let fwspec = device.iommu else { return }
        let group = fwspec.group
        group?.devices.removeAll { $0 === device }
        if let driver = driver(for: device), let master = fwspec.driverData as? ArmSMMUv3Master {
            let requireDirect = state(of: device)?.requireDirect ?? false
            do { try driver.attach(requireDirect ? driver.identityDomain : driver.blockedDomain, to: device) } catch {
                kernel.log.log(device.name, "release: STE not reset: \(error)")
            }
            for sid in master.streamIDs where driver.streams[sid.rawValue] === master { driver.streams[sid.rawValue] = nil }
            fwspec.driverData = nil
        } else if let driver = ops(for: device) as? ArmSMMUDriver {
            // arm-smmu: `arm_smmu_release_device` → `arm_smmu_master_free_smes`.
            driver.releaseDevice(device)
        }
        if let group, group.devices.isEmpty {
            if let domain = group.defaultDomain, domain.operations != nil {
                putCookie(domain)
                (domain.driver as? ArmSMMUv3Driver)?.freePagingDomain(domain)
                (domain.driver as? ArmSMMUDriver)?.freePagingDomain(domain)
            }
            group.defaultDomain = nil
            group.domain = nil
            group.blockingDomain = nil
        }
        deviceStates[ObjectIdentifier(device)] = nil
        fwspec.group = nil
        device.iommu = nil
        kernel.log.log(device.name, "Removing from iommu group \(group?.id ?? -1)")
    }
}
