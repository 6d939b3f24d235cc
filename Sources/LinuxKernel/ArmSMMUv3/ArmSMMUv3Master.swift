import Bus
import SMMUv3

/// `struct arm_smmu_master`: one device's StreamIDs and its CD table.
public final class ArmSMMUv3Master {
    public let device: Device
    /// `master->streams`, in fwspec order, duplicates removed ("Bridged PCI devices may end
    /// up with duplicated IDs").
    public let streamIDs: [StreamID]
    /// `master->ssid_bits` = min(smmu->ssid_bits, fwspec->num_pasid_bits): 0 for PCI functions
    /// without PASID here, so the CD table is one linear CD.
    public let substreamIDBits: Int
    /// `master->cd_table`: allocated on first use (`arm_smmu_alloc_cd_tables`).
    public internal(set) var cdTable: PhysicalAddress?
    /// The domain attached now (nil before the first attach).
    public internal(set) weak var domain: IOMMUDomain?
    /// `master->vmaster`: set while attached to a translating nested domain with a vDEVICE.
    public internal(set) var vmaster: ArmSMMUv3VMaster?

    init(device: Device, streamIDs: [StreamID], substreamIDBits: Int) {
        self.device = device
        self.streamIDs = streamIDs
        self.substreamIDBits = substreamIDBits
    }
}

extension ArmSMMUv3Driver {
    /// `arm_smmu_probe_device` + `arm_smmu_insert_master`: each StreamID must be within the
    /// stream table (`arm_smmu_sid_in_range`, else -ERANGE); its L2 stream table is allocated
    /// on demand (`arm_smmu_init_sid_strtab` → `arm_smmu_init_l2_strtab`); a StreamID already
    /// owned by another master is refused with -ENODEV and "Aliasing StreamID 0x%x (from %s)
    /// unsupported, expect DMA to be broken" (v6.15+; older kernels said "stream %u already
    /// in tree" and returned -EINVAL), while duplicates within one master are skipped
    /// ("Bridged PCI devices may end up with duplicated IDs"). The STEs stay abort until the
    /// core attaches a domain.
    public func probeDevice(_ device: Device) throws(Errno) {
        guard let fwspec = device.iommu, fwspec.iommuIndex == index, let strtab = streamTable else { throw .ENODEV }
        if let existing = fwspec.driverData as? ArmSMMUv3Master, existing.device === device { return }
        var sids: [StreamID] = []
        for sid in fwspec.streamIDs where !sids.contains(sid) {
            guard strtab.contains(sid.rawValue) else { throw .ERANGE }
            try strtab.ensureLevel2(for: sid.rawValue)
            if let owner = streams[sid.rawValue], owner.device !== device {
                kernel.log.log("arm-smmu-v3", "\(device.name): Aliasing StreamID 0x\(String(sid.rawValue, radix: 16)) (from \(owner.device.name)) unsupported, expect DMA to be broken")
                throw .ENODEV
            }
            sids.append(sid)
        }
        let master = ArmSMMUv3Master(device: device, streamIDs: sids, substreamIDBits: 0)
        for sid in sids { streams[sid.rawValue] = master }
        fwspec.driverData = master
    }

    /// `arm_smmu_release_device`: the STEs go back to abort, the streams leave the tree.
    public func releaseDevice(_ device: Device) throws(Errno) {
        guard let master = device.iommu?.driverData as? ArmSMMUv3Master else { return }
        try installSTE(ArmSMMUv3Entries.abortSTE(), for: master)
        for sid in master.streamIDs where streams[sid.rawValue] === master { streams[sid.rawValue] = nil }
        device.iommu?.driverData = nil
    }

    func master(of device: Device) throws(Errno) -> ArmSMMUv3Master {
        guard let master = device.iommu?.driverData as? ArmSMMUv3Master else { throw .ENODEV }
        return master
    }

    /// `arm_smmu_alloc_cd_tables` for a master without substreams: a linear table of
    /// 2^ssid_bits CDs (one here), zeroed.
    func ensureCDTable(_ master: ArmSMMUv3Master) throws(Errno) -> PhysicalAddress {
        if let table = master.cdTable { return table }
        let count = UInt64(1) << UInt64(master.substreamIDBits)
        let table = try kernel.pages.allocate(bytes: count * 64, alignment: 64)
        master.cdTable = table
        return table
    }

    /// `arm_smmu_install_ste_for_dev` → `arm_smmu_write_ste` for each StreamID: the hitless
    /// writer with CFGI_STE(leaf) + SYNC per step, then CMD_PREFETCH_CONFIG (no sync).
    func installSTE(_ target: StreamTableEntry, for master: ArmSMMUv3Master) throws(Errno) {
        guard let strtab = streamTable else { throw .ENODEV }
        for sid in master.streamIDs {
            guard let address = strtab.steAddress(for: sid.rawValue) else { throw .ERANGE }
            try writeEntry(.ste, at: address, target: target.words) { [unowned self] () throws(Errno) in
                try self.issueWithSync([.cfgiSTE(sid, leaf: true)])
            }
            try issueWithoutSync([.prefetchConfig(sid, substream: nil)])
        }
    }

    /// `arm_smmu_write_cd_entry` for SSID 0 (IOMMU_NO_PASID): the hitless writer with
    /// `arm_smmu_sync_cd` (CFGI_CD(sid, ssid, leaf) for every StreamID + SYNC) per step.
    func writeCD(_ target: ContextDescriptor, for master: ArmSMMUv3Master) throws(Errno) {
        let table = try ensureCDTable(master)
        try writeEntry(.cd, at: table, target: target.words) { [unowned self] () throws(Errno) in
            try self.issueWithSync(master.streamIDs.map { .cfgiCD($0, SubstreamID(0), leaf: true) })
        }
    }

    /// `arm_smmu_clear_cd`: an invalid CD, if the master has a CD table.
    func clearCD(for master: ArmSMMUv3Master) throws(Errno) {
        guard master.cdTable != nil else { return }
        try writeCD(ContextDescriptor(), for: master)
    }

    /// The CD for SSID 0 as it is in memory now (for tests).
    public func contextDescriptor(for device: Device) throws(Errno) -> ContextDescriptor? {
        guard let table = try master(of: device).cdTable else { return nil }
        return ContextDescriptor(words: try readEntry(table))
    }

    /// `attach_dev` for all domain kinds:
    /// - identity (`arm_smmu_attach_dev_identity`): bypass STE, then the CD cleared;
    /// - blocked (`arm_smmu_attach_dev_blocked`): abort STE, then the CD cleared;
    /// - stage 1 (`arm_smmu_attach_dev`): the CD first (`arm_smmu_make_s1_cd` →
    ///   `arm_smmu_write_cd_entry`), then the CD-table STE with S1DSS = SSID0;
    /// - stage 2: `arm_smmu_make_s2_domain_ste`, then the CD cleared;
    /// - nested (`arm_smmu_attach_dev_nested`, ArmSMMUv3IOMMUFD.swift): the STE made from the
    ///   guest's words and the parent's stage 2; the master's own CD table is left alone.
    /// A paging domain of another SMMU is -EINVAL.
    public func attach(_ domain: IOMMUDomain, to device: Device) throws(Errno) {
        let master = try master(of: device)
        switch domain.type {
        case .identity where domain.operations == nil:
            try installSTE(ArmSMMUv3Entries.bypassSTE(features: features), for: master)
            try clearCD(for: master)
        case .blocked:
            try installSTE(ArmSMMUv3Entries.abortSTE(), for: master)
            try clearCD(for: master)
        case .nested:
            guard let nested = domain.driverData as? ArmSMMUv3NestedDomain else { throw .EINVAL }
            try attachNested(nested, master: master)
        default:
            guard let smmuDomain = domain.driverData as? ArmSMMUv3Domain, smmuDomain.driver === self else { throw .EINVAL }
            switch smmuDomain.stage {
            case .stage1(let asid):
                try writeCD(ArmSMMUv3Entries.stage1CD(asid: asid, table: smmuDomain.pageTable), for: master)
                let table = try ensureCDTable(master)
                try installSTE(ArmSMMUv3Entries.cdTableSTE(cdTable: table, s1Fmt: 0, s1CDMax: master.substreamIDBits,
                                                           s1DSS: ArmSMMUv3Entries.s1DSSSubstream0, features: features),
                               for: master)
            case .stage2(let vmid):
                try installSTE(ArmSMMUv3Entries.stage2STE(vmid: vmid, table: smmuDomain.pageTable, features: features), for: master)
                try clearCD(for: master)
            }
            smmuDomain.attachedMasters.removeAll { $0 === master }
            smmuDomain.attachedMasters.append(master)
        }
        if let old = master.domain?.driverData as? ArmSMMUv3Domain, master.domain !== domain {
            old.attachedMasters.removeAll { $0 === master }
        }
        // arm_smmu_attach_commit_vmaster: any other domain clears the vmaster.
        if domain.type != .nested { master.vmaster = nil }
        master.domain = domain
    }
}
