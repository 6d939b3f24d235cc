import Bus

/// `/sys/kernel/iommu_groups/N/type`: reading it (`iommu_group_show_type`) and writing it
/// (`iommu_group_store_type`), which changes a group's default domain at run time, and the
/// driver core's claim on the default domain that decides whether a write is allowed
/// (`iommu_device_use_default_domain` / `iommu_device_unuse_default_domain`).
///
/// Checked against torvalds/linux drivers/iommu/iommu.c (the v6.6+ form, after Jason
/// Gunthorpe's "Consolidate the default domain setup to one function" series):
/// - `iommu_group_store_type` accepts "identity", "DMA", "DMA-FQ" and "auto" (`sysfs_streq`:
///   one trailing newline ignored), else -EINVAL; -EINVAL without a default domain;
///   DMA → DMA-FQ is done in place (`iommu_dma_init_fq`, then the type changes), even with a
///   driver bound; every other change needs a non-empty group with `owner_cnt == 0` (no
///   driver using the DMA API, no VFIO/iommufd owner), else -EPERM, then
///   `iommu_setup_default_domain(group, req_type)` and, per device, `iommu_setup_dma_ops`
///   (Robin Murphy's "Centralise iommu_setup_dma_ops()" form, seen in patch text; the stored
///   v6.6-era file calls `iommu_group_do_probe_finalize`, which did the same on arm64).
/// - The original rule, `device_is_bound(dev)` → -EBUSY "Device is still bound to driver",
///   was replaced when Lu Baolu's DMA-ownership series made a bound DMA-API driver count in
///   `owner_cnt` (`pci_dma_configure` → `iommu_device_use_default_domain`); since then the
///   answer is -EPERM (the release where that landed, v5.19 by our reading, is not checked
///   against a tag).
/// - `CAP_SYS_ADMIN`/`CAP_SYS_RAWIO` (-EACCES) are not modelled: the writer is root.
extension IOMMUSubsystem {
    /// `iommu_group_show_type`: the DEFAULT domain's type (`group->default_domain->type`:
    /// "blocked", "identity", "unmanaged", "DMA", "DMA-FQ"), "unknown" without a default domain
    /// or for a type it has no case for (nested here; SVA/platform in Linux). It never reads
    /// `group->domain`, so a group VFIO or iommufd has attached its own unmanaged domain to still
    /// shows its default domain's type. "auto" is only a value `iommu_group_store_type`
    /// accepts, never shown. The same function (the `sysfs_emit(buf, "%s\n", type)` form of Lu
    /// Baolu's "iommu: Use sysfs_emit() for sysfs show", March 2023, before v6.4, through a tree
    /// newer than v6.19) in v6.14, v6.15 and v6.19. sysfs adds the newline; this returns the
    /// word alone.
    public func groupTypeName(_ group: IOMMUGroup) -> String {
        guard let domain = group.defaultDomain else { return "unknown" }
        switch domain.type {
        case .blocked, .identity, .unmanaged, .dma, .dmaFQ: return domain.type.rawValue
        case .nested: return "unknown"
        }
    }

    /// `echo <value> > /sys/kernel/iommu_groups/N/type` → `iommu_group_store_type`. The value
    /// is compared as `sysfs_streq` does (exact, but a single trailing newline on the written
    /// string is ignored): "identity", "DMA", "DMA-FQ", "auto"; anything else -EINVAL.
    public func setGroupType(_ group: IOMMUGroup, _ value: String) throws(Errno) {
        let word = value.hasSuffix("\n") ? String(value.dropLast()) : value
        switch word {
        case "identity": try setGroupType(group, IOMMUDomainType.identity)
        case "DMA": try setGroupType(group, IOMMUDomainType.dma)
        case "DMA-FQ": try setGroupType(group, IOMMUDomainType.dmaFQ)
        case "auto": try setGroupType(group, nil)
        default: throw .EINVAL
        }
    }

    /// `iommu_group_store_type` with the parsed type (nil = "auto": `req_type` 0, the
    /// kernel's configured default). Types sysfs cannot request are -EINVAL. See the file
    /// comment for the rules; on success the group's devices have the new default domain
    /// attached (for arm-smmu-v3 that is `arm_smmu_attach_dev` / `_identity`: the STE — and
    /// for a DMA domain the CD — rewritten with CFGI + CMD_SYNC, which on a guest go to the
    /// vSMMU) and `iommu_setup_dma_ops` has run for each.
    public func setGroupType(_ group: IOMMUGroup, _ type: IOMMUDomainType?) throws(Errno) {
        if let type, type != .identity, type != .dma, type != .dmaFQ { throw .EINVAL }
        guard let current = group.defaultDomain else { throw .EINVAL }
        // "We can bring up a flush queue without tearing down the domain."
        if type == .dmaFQ, current.type == .dma {
            try initFlushQueue(current)
            current.type = .dmaFQ
            return
        }
        // "Otherwise, ensure that device exists and no driver is bound."
        guard !group.devices.isEmpty, group.ownerCount == 0 else { throw .EPERM }
        try setupDefaultDomain(group, target: type)
        for device in group.devices { setupDMAOps(device) }
    }

    /// `iommu_dma_init_fq(domain)`: nothing to do when the cookie has its flush queue already;
    /// else the queue is created (arm-smmu-v3 has IOMMU_CAP_DEFERRED_FLUSH) and unmaps of the
    /// domain are lazy from now on (`cookie->fq_domain` set). -EINVAL for a domain without a
    /// DMA cookie (Linux dereferences the IOVA cookie; a DMA domain always has one).
    func initFlushQueue(_ domain: IOMMUDomain) throws(Errno) {
        guard case .dmaIOVA(let cookie) = domain.cookie else { throw .EINVAL }
        if cookie.flushQueue != nil { return }
        guard let ops = domain.operations else { throw .EINVAL }
        cookie.flushQueue = DMAFlushQueue(iovad: cookie.iovad) { ops.flushIOTLBAll() }
    }

    /// `iommu_setup_default_domain(group, target_type)` for a group that has a default domain
    /// already (the sysfs path; probe uses `setupDefaultDomain(_:)`):
    /// 1. `iommu_get_default_domain_type`: a driver-forced type (`def_domain_type`) that
    ///    differs from the target → -EINVAL;
    /// 2. `iommu_group_alloc_default_domain`: the current default domain when it already has
    ///    the requested type (`__iommu_group_alloc_default_domain`), so the write changes
    ///    nothing; "auto" tries the configured type, then DMA;
    /// 3. direct mappings for every device (`iommu_create_device_direct_mappings`);
    /// 4. `group->default_domain = dom`, then `__iommu_group_set_domain(group, dom)`; if the
    ///    attach fails, the new domain is freed and the old one restored as default
    ///    (`err_restore_def_domain`);
    /// 5. the old default domain is freed (`iommu_domain_free`: its ASID/VMID and cookie).
    func setupDefaultDomain(_ group: IOMMUGroup, target: IOMMUDomainType?) throws(Errno) {
        let old = group.defaultDomain
        let forced = requestedDefaultDomainType(group)
        var requested = forced
        if let target {
            if let forced, forced != target { throw .EINVAL }
            requested = target
        }
        let domain: IOMMUDomain
        if let requested {
            domain = try allocateDefaultDomain(group, type: requested)
        } else {
            do {
                domain = try allocateDefaultDomain(group, type: configuredDefaultDomainType)
            } catch {
                guard configuredDefaultDomainType != .dma else { throw error }
                domain = try allocateDefaultDomain(group, type: .dma)
                kernel.log.log("iommu", "Failed to allocate default IOMMU domain of type \(configuredDefaultDomainType.rawValue) for group \(group.id) - Falling back to IOMMU_DOMAIN_DMA")
            }
        }
        if domain === old { return }
        var directFailed = false
        for device in group.devices {
            do { try createDirectMappings(domain, device: device) } catch { directFailed = true }
        }
        if directFailed {
            kernel.log.log("iommu", "IOMMU driver was not able to establish FW requested direct mapping.")
        }
        group.defaultDomain = domain
        do {
            try setGroupDomain(group, domain)
            if directFailed {
                for device in group.devices { try createDirectMappings(domain, device: device) }
            }
        } catch {
            if let old {
                if group.domain === domain { try? setGroupDomain(group, old) }
                group.defaultDomain = old
            }
            freeDomain(domain)
            throw error
        }
        if let old { freeDomain(old) }
    }

    /// `__iommu_group_alloc_default_domain(group, req_type)`: the current default domain if it
    /// has that type, else a new one (`allocateGroupDomain`).
    func allocateDefaultDomain(_ group: IOMMUGroup, type: IOMMUDomainType) throws(Errno) -> IOMMUDomain {
        if let current = group.defaultDomain, current.type == type { return current }
        return try allocateGroupDomain(group, type: type)
    }

    /// `iommu_domain_free(domain)`: `iommu_put_dma_cookie` / `iommu_put_msi_cookie` (the MSI
    /// pages and the IOVA space go with the domain), then the driver's `free` — for an
    /// arm-smmu-v3 paging domain `arm_smmu_domain_free_paging` (TLBI by ASID/VMID + SYNC, the
    /// ASID/VMID released). The static identity and blocked domains have no `free`.
    public func freeDomain(_ domain: IOMMUDomain) {
        guard domain.isPaging else { return }
        putCookie(domain)
        (domain.driver as? ArmSMMUv3Driver)?.freePagingDomain(domain)
    }

    /// `iommu_device_use_default_domain(dev)`, called by the driver core before a driver that
    /// uses the DMA API probes (`pci_dma_configure` unless `driver_managed_dma`): a group
    /// someone claimed already may only gain another such user while it sits on its default
    /// domain and has no DMA owner (VFIO, iommufd) — else -EBUSY; then `owner_cnt++`. No group
    /// (no IOMMU) → 0.
    public func useDefaultDomain(_ device: Device) throws(Errno) {
        guard let group = group(of: device) else { return }
        if group.ownerCount != 0 {
            guard group.domain === group.defaultDomain, group.owner == nil else { throw .EBUSY }
        }
        group.ownerCount += 1
    }

    /// `iommu_device_unuse_default_domain(dev)` (`pci_dma_cleanup` at unbind): `owner_cnt--`
    /// (Linux WARNs and does nothing when it is already 0). The domain and the STE are not
    /// touched: the device stays on its default domain with whatever mappings the driver
    /// left in it.
    public func unuseDefaultDomain(_ device: Device) {
        guard let group = group(of: device) else { return }
        if group.ownerCount == 0 {
            kernel.log.log(device.name, "WARNING: iommu_device_unuse_default_domain with owner_cnt 0")
            return
        }
        group.ownerCount -= 1
    }

    /// The group whose sysfs directory is `/sys/kernel/iommu_groups/<id>`.
    public func group(id: Int) -> IOMMUGroup? { groups.first { $0.id == id } }
}
