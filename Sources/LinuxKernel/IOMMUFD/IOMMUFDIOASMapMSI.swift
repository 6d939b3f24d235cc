import Bus

/// `IOMMUFD_CMD_IOAS_MAP_MSI` (`KernelPatches.iommufdIOASMapMSI`): the "other half" the RFCv1
/// cover letter leaves to "a new IOMMUFD ioctl", planned as Part-3 in the RFCv2 and Part-2
/// covers and never posted. Jason Gunthorpe's shape for it (RFCv2 09/13 thread, Jan 2025):
/// "The VMM puts the ITS page (hDB) into the S2 at a fixed address (gDB)". Everything below is
/// therefore Doorbell's documented choice, kept close to `IOMMU_IOAS_MAP` and to
/// `iommufd_sw_msi_install`:
///
/// - the page mapped is the device's physical doorbell page: the GITS_TRANSLATER page of the
///   ITS its msi-parent / `msi-map` names (`pci_msi_domain_get_msi_rid` + `of_msi_map_id`,
///   `PCISubsystem.msiDomain(of:)`; on ACPI the IORT's ITS group, `iort_get_device_domain`),
///   the page `iommufd_sw_msi` would map for it;
/// - it becomes an IOAS area, so it is mapped into every domain of the IOAS now and into every
///   domain added later (`iopt_table_add_domain` fills all areas) — a nest-parent HWPT's S2
///   included — with IOMMU_READ | IOMMU_WRITE | IOMMU_MMIO, and IOMMU_IOAS_UNMAP removes it;
/// - the IOVA may lie inside an SW_MSI reserved window (the window exists for doorbells; the
///   vITS page 0x0809_0000 of QEMU virt lies inside the host's 0x0800_0000/1 MiB), but not in
///   any other reserved range (EINVAL, as `iopt_check_iova`);
/// - overlapping an existing area is EEXIST (as `iopt_check_iova`), except the same page of
///   the same doorbell at the same IOVA, which succeeds without a second area (two devices
///   behind one physical ITS share one vITS page);
/// - a second device whose doorbell is a DIFFERENT physical page at the same IOVA therefore
///   fails with EEXIST: one vITS page cannot stand for several physical ITSs — the "several
///   pITS behind one vITS" hard case of approach (2), left observable.
extension IOMMUFD {
    /// `PAGE_SIZE`: the doorbell mapping's size, as `iommufd_sw_msi_install` maps one page.
    var doorbellPageSize: UInt64 { kernel.pageSize }

    /// IOMMUFD_CMD_IOAS_MAP_MSI: map device `deviceID`'s physical doorbell page at `iova` in
    /// IOAS `ioasID`. Unpatched: ENOTTY, as `iommufd_fops_ioctl` answers an ioctl number
    /// beyond its table. Patched, in order: iova ≥ ULONG_MAX → EOVERFLOW; unknown IOAS or
    /// device id → ENOENT; a device without an ITS MSI domain → ENODEV; then the IOAS's checks
    /// (`IOPageTable.mapDoorbell`).
    public func ioasMapMSI(ioasID: UInt32, deviceID: UInt32, iova: UInt64) throws(Errno) {
        guard kernel.configuration.patches.contains(.iommufdIOASMapMSI) else { throw .ENOTTY }
        guard iova < UInt64.max else { throw .EOVERFLOW }
        let ioas = try ioas(ioasID)
        let idev = try device(deviceID)
        let page = try doorbellPage(of: idev.device)
        try ioas.iopt.mapDoorbell(iova: iova, doorbell: page, length: doorbellPageSize)
        kernel.log.log("iommufd", "ioas \(ioasID): IOVA \(Hex.format(iova)) → doorbell page \(Hex.format(page)) (device \(deviceID))")
    }

    /// The page holding the doorbell the device's MSIs target: its ITS driver's
    /// `its->get_msi_base` (GITS_TRANSLATER, or the pre-ITS slot) rounded down to PAGE_SIZE.
    func doorbellPage(of device: Device) throws(Errno) -> UInt64 {
        guard let pdev = kernel.pci.pciDevice(of: device) else { throw .ENODEV }
        let (its, deviceID, _) = try kernel.pci.msiDomain(of: pdev)
        guard kernel.itsDrivers.indices.contains(its) else { throw .ENODEV }
        return kernel.itsDrivers[its].msiBase(forDeviceID: deviceID) & ~(doorbellPageSize - 1)
    }
}

extension IOPageTable {
    /// The IOAS side of IOAS_MAP_MSI: `iova` aligned to PAGE_SIZE and to the IOAS's alignment
    /// (EINVAL); the range not wrapping (EOVERFLOW); every reserved range it touches an SW_MSI
    /// window that contains it (else EINVAL); no overlapping area (EEXIST) unless it is this
    /// very doorbell page at this IOVA (success, nothing added); then the area goes into every
    /// domain, undone on failure.
    func mapDoorbell(iova: UInt64, doorbell: UInt64, length: UInt64) throws(Errno) {
        guard iova & (length - 1) == 0, iova & (iovaAlignment - 1) == 0 else { throw .EINVAL }
        let (last, overflow) = iova.addingReportingOverflow(length - 1)
        guard !overflow else { throw .EOVERFLOW }
        try forEachReserved(intersecting: iova, last) { (r) throws(Errno) -> Bool in
            guard r.isSWMSIWindow, r.start <= iova, last <= r.last else { throw .EINVAL }
            return true
        }
        if let index = firstArea(intersecting: iova, last) {
            let existing = areas[index]
            if existing.doorbell == doorbell, existing.start == iova, existing.last == last { return }
            let what = existing.doorbell.map { "doorbell page \(Hex.format($0)) (another ITS)" } ?? "user memory"
            throw refusals.refuse(.EEXIST, in: "IOMMUFD_CMD_IOAS_MAP_MSI (Doorbell's modelled ioctl, as iopt_check_iova)",
                for: "IOVA \(KernelRefusal.window(iova, last))",
                because: "it already maps \(what) there, and this device's doorbell is page \(Hex.format(doorbell)): one vITS page cannot stand for two physical ITSs")
        }
        try fillAndInsert(Area(start: iova, last: last, userVA: 0, protection: [.read, .write, .mmio], doorbell: doorbell))
    }
}
