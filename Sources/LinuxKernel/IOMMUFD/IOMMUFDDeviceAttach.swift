import Bus

/// The kernel-internal iommufd device API (drivers/iommu/iommufd/device.c, v6.15) that VFIO's
/// cdev path calls, and the native sw_msi (drivers/iommu/iommufd/driver.c).
extension IOMMUFD {
    /// `iommufd_get_group(ictx, dev)`: the file's state for the device's iommu group, created
    /// with `sw_msi_start = PHYS_ADDR_MAX`.
    func igroup(for group: IOMMUGroup) -> IOMMUFDGroup {
        if let existing = groups[group.id] { return existing }
        let created = IOMMUFDGroup(group: group)
        groups[group.id] = created
        return created
    }

    /// `iommufd_device_bind(ictx, dev, &id)`: ENODEV without an iommu group; EPERM when the group
    /// cannot isolate MSIs (`iommu_group_has_isolated_msi`) unless iommufd's
    /// `allow_unsafe_interrupts` module parameter is set (verified in device.c:
    /// `module_param(allow_unsafe_interrupts, …)`, "Allow IOMMUFD to bind to devices even if the
    /// platform cannot isolate the MSI interrupt window"); then `iommu_device_claim_dma_owner`
    /// (EPERM if another owner holds the group), which moves the group to its blocking domain.
    /// The new device object is held by its caller (VFIO) until `unbind`.
    public func bind(_ device: Device) throws(Errno) -> IOMMUFDDevice {
        guard let group = kernel.iommu.group(of: device) else { throw .ENODEV }
        let igroup = igroup(for: group)
        if !kernel.iommu.groupHasIsolatedMSI(group) {
            guard kernel.configuration.allowUnsafeInterrupts else {
                if igroup.attachedDevices.isEmpty, !hasBoundDevice(in: igroup) { groups[group.id] = nil }
                throw .EPERM
            }
            kernel.log.log(device.name, "MSI interrupts are not secure, they cannot be isolated by the platform. Check that platform features like interrupt remapping are enabled. Use the \"allow_unsafe_interrupts\" module parameter to override")
        }
        try kernel.iommu.claimDMAOwner(device: device, owner: self)
        let idev = IOMMUFDDevice(device: device, igroup: igroup)
        do throws(Errno) {
            _ = try objects.insert(idev)
        } catch {
            kernel.iommu.releaseDMAOwner(group)
            throw error
        }
        idev.holders = 1
        return idev
    }

    func hasBoundDevice(in igroup: IOMMUFDGroup) -> Bool {
        objects.objects.values.contains { ($0 as? IOMMUFDDevice)?.igroup === igroup }
    }

    /// `iommufd_device_unbind(idev)`: detaches if still attached, releases DMA ownership and
    /// destroys the device object.
    public func unbind(_ idev: IOMMUFDDevice) {
        if idev.hwpt != nil { detach(idev) }
        kernel.iommu.releaseDMAOwner(idev.igroup.group)
        idev.holders = 0
        objects.forget(idev)
    }

    // MARK: attach / replace / detach

    /// `iommufd_device_attach(idev, IOMMU_NO_PASID, &pt_id)` (`iommufd_device_change_pt` with
    /// `iommufd_device_do_attach`): `ptID` names a paging HWPT, or an IOAS — then an existing
    /// auto domain of that IOAS is reused or a new one created (`iommufd_device_auto_get_domain`)
    /// and `ptID` is updated to the HWPT's id. ENOENT for an unknown id, EINVAL for an id of
    /// another type or when the group is already attached to a different HWPT (replace is the
    /// way to switch).
    public func attach(_ idev: IOMMUFDDevice, ptID: inout UInt32) throws(Errno) {
        let target = try objects.get(ptID)
        if let hwpt = target as? IOMMUFDHWPT {
            try hwptAttach(hwpt, idev)
        } else if let ioas = target as? IOMMUFDIOAS {
            ptID = try autoGetDomain(idev, ioas: ioas, replacing: false)
        } else {
            throw .EINVAL
        }
    }

    /// `iommufd_device_replace(idev, IOMMU_NO_PASID, &pt_id)`: move an attached group to another
    /// HWPT (or IOAS auto domain) without passing through the blocking domain
    /// (`iommu_group_replace_domain`). EINVAL when the group is not attached yet. Every sw_msi
    /// page the group's MSIs use is installed in the new domain first
    /// (`iommufd_group_setup_msi`), so programmed MSI addresses stay valid.
    public func replace(_ idev: IOMMUFDDevice, ptID: inout UInt32) throws(Errno) {
        let target = try objects.get(ptID)
        if let hwpt = target as? IOMMUFDHWPT {
            try hwptReplace(hwpt, idev)
        } else if let ioas = target as? IOMMUFDIOAS {
            ptID = try autoGetDomain(idev, ioas: ioas, replacing: true)
        } else {
            throw .EINVAL
        }
    }

    /// `iommufd_device_detach(idev, IOMMU_NO_PASID)`: the last device of the group detaches the
    /// domain (`iommu_detach_group_handle`: back to the blocking domain while owned); the
    /// device's reserved IOVAs are released; an auto domain without devices is destroyed.
    public func detach(_ idev: IOMMUFDDevice) {
        let igroup = idev.igroup
        guard let hwpt = igroup.hwpt, igroup.attachedDevices.contains(where: { $0 === idev }) else { return }
        igroup.attachedDevices.removeAll { $0 === idev }
        if igroup.attachedDevices.isEmpty {
            kernel.iommu.detachGroup(hwpt.domain, from: igroup.group)
            igroup.hwpt = nil
        }
        if let paging = hwpt.pagingParent { paging.ioas.iopt.removeReserved(owner: idev.device) }
        hwpt.holders -= 1
        if let paging = hwpt as? IOMMUFDHWPTPaging, paging.isAutoDomain, paging.holders == 0 {
            destroyHWPT(paging)
        }
    }

    /// `iommufd_device_auto_get_domain`: try the IOAS's auto domains in order (a domain the
    /// device's IOMMU cannot use answers EINVAL and the next is tried), else allocate one.
    func autoGetDomain(_ idev: IOMMUFDDevice, ioas: IOMMUFDIOAS, replacing: Bool) throws(Errno) -> UInt32 {
        for hwpt in ioas.hwpts where hwpt.isAutoDomain {
            do throws(Errno) {
                if replacing { try hwptReplace(hwpt, idev) } else { try hwptAttach(hwpt, idev) }
                return hwpt.id
            } catch .EINVAL {
                continue
            }
        }
        let hwpt = try hwptPagingAlloc(ioas: ioas, idev: idev, flags: [], autoDomain: true)
        do throws(Errno) {
            if replacing { try hwptReplace(hwpt, idev) } else { try hwptAttach(hwpt, idev) }
        } catch {
            destroyHWPT(hwpt)
            throw error
        }
        return hwpt.id
    }

    /// `iommufd_hw_pagetable_attach(hwpt, idev, IOMMU_NO_PASID)`.
    func hwptAttach(_ hwpt: IOMMUFDHWPT, _ idev: IOMMUFDDevice) throws(Errno) {
        let igroup = idev.igroup
        if let current = igroup.hwpt, current !== hwpt { throw .EINVAL }
        if igroup.attachedDevices.contains(where: { $0 === idev }) { throw .EINVAL }
        let first = igroup.attachedDevices.isEmpty
        try attachReservedIOVA(idev, hwpt: hwpt, firstInGroup: first)
        if first {
            do throws(Errno) {
                try kernel.iommu.attachGroup(hwpt.domain, to: igroup.group)
            } catch {
                if let paging = hwpt.pagingParent { paging.ioas.iopt.removeReserved(owner: idev.device) }
                throw error
            }
            igroup.hwpt = hwpt
        }
        igroup.attachedDevices.append(idev)
        hwpt.holders += 1
    }

    /// `iommufd_device_attach_reserved_iova`: the device's reserved regions go into the IOAS
    /// (recording the group's SW_MSI base); the first device of the group also installs the
    /// group's required sw_msi pages (`iommufd_group_setup_msi`).
    ///
    /// `.iommufdSWMSIWindow`: a window the VMM set with IOMMU_OPTION_SW_MSI_START/SIZE replaces
    /// the SW_MSI region here and becomes the SW_MSI base `iommufd_sw_msi` maps doorbells at.
    /// Part-2 v2 1/7 moves `sw_msi_start` from the igroup to the idev; the model keeps the one
    /// per-group value, which the attaching device sets — the same for the one-device groups a
    /// VMM passes through.
    func attachReservedIOVA(_ idev: IOMMUFDDevice, hwpt: IOMMUFDHWPT, firstInGroup: Bool) throws(Errno) {
        guard let paging = hwpt.pagingParent else { return }
        let regions = kernel.iommu.reservedRegions(for: idev.device)
        var start = idev.igroup.swMSIStart
        try paging.ioas.iopt.enforceDeviceReservedRegions(regions, owner: idev.device, swMSIStart: &start, recordSWMSI: true,
                                                          swMSIWindow: swMSIWindowOverride(idev))
        idev.igroup.swMSIStart = start
        if firstInGroup {
            do throws(Errno) {
                try groupSetupMSI(idev.igroup, paging)
            } catch {
                paging.ioas.iopt.removeReserved(owner: idev.device)
                throw error
            }
        }
    }

    /// `iommufd_device_do_replace` for IOMMU_NO_PASID.
    func hwptReplace(_ hwpt: IOMMUFDHWPT, _ idev: IOMMUFDDevice) throws(Errno) {
        let igroup = idev.igroup
        guard let old = igroup.hwpt else { throw .EINVAL }
        if old === hwpt { return }
        // iommufd_group_do_replace_reserved_iova: a different IOAS gets every device's regions.
        let newPaging = hwpt.pagingParent
        var reservedDevices: [Device] = []
        if let newPaging {
            let oldPaging = old.pagingParent
            if oldPaging == nil || oldPaging?.ioas !== newPaging.ioas {
                for member in igroup.attachedDevices {
                    var ignored = UInt64.max
                    do throws(Errno) {
                        try newPaging.ioas.iopt.enforceDeviceReservedRegions(kernel.iommu.reservedRegions(for: member.device),
                                                                              owner: member.device, swMSIStart: &ignored, recordSWMSI: false)
                    } catch {
                        for done in reservedDevices { newPaging.ioas.iopt.removeReserved(owner: done) }
                        throw error
                    }
                    reservedDevices.append(member.device)
                }
            }
            do throws(Errno) {
                try groupSetupMSI(igroup, newPaging)
            } catch {
                for done in reservedDevices { newPaging.ioas.iopt.removeReserved(owner: done) }
                throw error
            }
        }
        do throws(Errno) {
            try kernel.iommu.replaceGroupDomain(igroup.group, with: hwpt.domain)
        } catch {
            if let newPaging { for done in reservedDevices { newPaging.ioas.iopt.removeReserved(owner: done) } }
            throw error
        }
        if let oldPaging = old.pagingParent, oldPaging.ioas !== newPaging?.ioas {
            for member in igroup.attachedDevices { oldPaging.ioas.iopt.removeReserved(owner: member.device) }
        }
        igroup.hwpt = hwpt
        // The device array's references move from the old HWPT to the new one.
        let count = igroup.attachedDevices.count
        hwpt.holders += count
        old.holders -= count
        if let oldPaging = old as? IOMMUFDHWPTPaging, oldPaging.isAutoDomain, oldPaging.holders == 0 {
            destroyHWPT(oldPaging)
        }
    }

    // MARK: sw_msi (driver.c, v6.15)

    /// `iommufd_sw_msi_install(ictx, hwpt_paging, msi_map)`: map the doorbell page at its fixed
    /// IOVA in a domain that does not have it yet (IOMMU_WRITE | IOMMU_READ | IOMMU_MMIO).
    func swMSIInstall(_ paging: IOMMUFDHWPTPaging, _ map: IOMMUFDSWMSIMap) throws(Errno) {
        guard !paging.presentSWMSI.contains(map.id) else { return }
        try kernel.iommu.map(paging.domain, iova: map.iova, physical: map.msiAddress, size: map.pageSize,
                             protection: [.write, .read, .mmio])
        paging.presentSWMSI.insert(map.id)
    }

    /// `iommufd_group_setup_msi(igroup, hwpt_paging)`: install every map of the group's window
    /// that the group requires, before the group starts using the domain.
    ///
    /// v6.14 and before (`iommufd_group_setup_msi` then): no sw_msi table — with an SW_MSI window
    /// the paging domain gets `iommu_get_msi_cookie(domain, sw_msi_start)` once, and dma-iommu's
    /// MSI cookie hands out the doorbell IOVAs as for VFIO type1. (A nested HWPT redirected this
    /// to its parent, so the nested domain itself had no cookie — the `legacy` strategy's case.)
    func groupSetupMSI(_ igroup: IOMMUFDGroup, _ paging: IOMMUFDHWPTPaging) throws(Errno) {
        guard igroup.swMSIStart != .max else { return }
        if !kernel.configuration.has(.nativeSWMSI) {
            guard !paging.hasMSICookie else { return }
            try kernel.iommu.getMSICookie(paging.domain, base: igroup.swMSIStart)
            paging.hasMSICookie = true
            return
        }
        for map in swMSITable.maps where map.swMSIStart == igroup.swMSIStart && igroup.requiredSWMSI.contains(map.id) {
            try swMSIInstall(paging, map)
        }
    }

    /// `iommufd_sw_msi(domain, desc, msi_addr)`: called by `iommu_dma_prepare_msi` for a group
    /// whose domain carries iommufd's cookie. Without an iommufd attach of the group, or without
    /// an SW_MSI window (`sw_msi_start == PHYS_ADDR_MAX`), the message is left alone. Else the
    /// doorbell page gets (or reuses) the file's map, is installed in the paging domain (the
    /// stage-2 parent for a nested HWPT), becomes required by the group, and the descriptor's
    /// IOVA is set with PAGE_SHIFT so `msi_msg_set_addr` keeps the doorbell's offset in its page
    /// (0x40 for GITS_TRANSLATER with 4K and with 64K pages: the ITS translation page is 64K
    /// aligned).
    ///
    /// `.iommufdMSIIOVA` (RFCv2 "iommufd/device: Allow setting IOVAs for MSI(x) vectors", as
    /// Part-3 would use it): when the device has an IOVA for the descriptor's `msi_index` (from
    /// VFIO's ACTION_PREPARE), the descriptor gets that IOVA with PAGE_SHIFT and nothing is
    /// mapped — the VMM mapped the doorbell at the IOVA's stage-2 target itself
    /// (IOMMUFD_CMD_IOAS_MAP_MSI). RFCv2 still installed the SW_MSI window page before choosing
    /// the IOVA; Part-3's "maps nothing" is Doorbell's documented choice. As in RFCv2 the check
    /// comes after the no-SW_MSI test, so a platform whose ITS is not translated keeps the
    /// physical doorbell. The device is the descriptor's owner (RFCv2 used the attach handle's
    /// idev: the same device for a one-device group).
    static func swMSI(kernel: LinuxKernel, domain: IOMMUDomain, descriptor: MSIDescriptor, msiAddress: UInt64) throws(Errno) {
        guard case .iommufd(let owner) = domain.cookie, let hwpt = owner as? IOMMUFDHWPT else { return }
        guard let device = kernel.iommu.descriptorOwner(descriptor),
              let group = kernel.iommu.group(of: device) else { return }
        // iommu_attach_handle_get(group, IOMMU_NO_PASID): the context whose igroup attached it.
        guard let context = kernel.iommufdContexts.first(where: { $0.groups[group.id]?.hwpt === hwpt }),
              let igroup = context.groups[group.id] else { return }
        guard let paging = hwpt.pagingParent else { return }
        guard igroup.swMSIStart != .max else { return }
        if kernel.configuration.patches.contains(.iommufdMSIIOVA),
           let idev = igroup.attachedDevices.first(where: { $0.device === device }),
           descriptor.index < idev.numberOfMSIIOVAs, let iova = idev.msiIOVAs[descriptor.index] {
            descriptor.setIOMMUMSIIOVA(iova, shift: kernel.pageShift)
            return
        }
        let pageSize = context.swMSITable.pageSize
        let map = try context.swMSITable.getMap(msiAddress: msiAddress & ~(pageSize &- 1), swMSIStart: igroup.swMSIStart)
        try context.swMSIInstall(paging, map)
        igroup.requiredSWMSI.insert(map.id)
        descriptor.setIOMMUMSIIOVA(map.iova, shift: context.swMSITable.pageShift)
    }
}
