import Bus
import SMMUv2

/// `struct arm_smmu_master_cfg`: the device's stream map entries (`smendx`), one per fwspec ID.
public final class ArmSMMUMaster {
    public unowned(safe) let device: Device
    /// `fwspec->ids`: SMR ID in bits [15:0], SMR MASK in [31:16] (`arm_smmu_of_xlate`).
    public let ids: [UInt32]
    /// `cfg->smendx[i]`: the stream map entry each ID took.
    public internal(set) var streamMapEntries: [Int] = []

    init(device: Device, ids: [UInt32]) {
        self.device = device
        self.ids = ids
    }
}

extension ArmSMMUDriver {
    /// `arm_smmu_probe_device`: every fwspec ID must fit the SMMU ("stream ID 0x%x out of range
    /// for SMMU (0x%x)", "SMR mask 0x%x out of range for SMMU (0x%x)": -EINVAL), then
    /// `arm_smmu_master_alloc_smes`.
    public func probeDevice(_ device: Device) throws(Errno) {
        guard let fwspec = device.iommu, fwspec.smmuV2, fwspec.iommuIndex == index else { throw .ENODEV }
        if let existing = fwspec.driverData as? ArmSMMUMaster, existing.device === device { return }
        let ids = fwspec.streamIDs.map(\.rawValue)
        for id in ids {
            let sid = id & 0xFFFF, mask = id >> 16
            if sid & ~features.streamIDMask != 0 {
                kernel.log.log(device.name, "stream ID 0x\(String(sid, radix: 16)) out of range for SMMU (0x\(String(features.streamIDMask, radix: 16)))")
                throw .EINVAL
            }
            if mask & ~features.smrMaskMask != 0 {
                kernel.log.log(device.name, "SMR mask 0x\(String(mask, radix: 16)) out of range for SMMU (0x\(String(features.smrMaskMask, radix: 16)))")
                throw .EINVAL
            }
        }
        let master = ArmSMMUMaster(device: device, ids: ids)
        try allocateStreamMapEntries(master)
        fwspec.driverData = master
    }

    /// `arm_smmu_find_sme(smmu, id, mask)`: with stream indexing the ID is the entry; else an
    /// existing valid SMR that entirely covers (id, mask) is reused, one that merely overlaps it
    /// is refused (-EINVAL: some StreamID would match both, a stream match conflict), and
    /// otherwise the first free entry is taken (-ENOSPC when none).
    func findStreamMapEntry(id: UInt32, mask: UInt32) -> Result<Int, Errno> {
        guard let smrs else { return .success(Int(id)) }
        var free: Int?
        for (i, smr) in smrs.enumerated() {
            guard smr.valid else {
                if free == nil { free = i }
                continue
            }
            let smrID = UInt32(smr.id), smrMask = UInt32(smr.mask)
            if mask & smrMask == mask && (id ^ smrID) & ~smrMask == 0 { return .success(i) }
            if (id ^ smrID) & ~(smrMask | mask) == 0 { return .failure(.EINVAL) }
        }
        return free.map { .success($0) } ?? .failure(.ENOSPC)
    }

    /// `arm_smmu_master_alloc_smes`: find an entry per ID (an ID already placed is -EEXIST),
    /// claim its SMR when nobody uses it yet, count the user; on failure release what was taken;
    /// then write each entry to the hardware (`arm_smmu_write_sme`).
    func allocateStreamMapEntries(_ master: ArmSMMUMaster) throws(Errno) {
        var taken: [Int] = []
        for id in master.ids {
            let sid = id & 0xFFFF, mask = id >> 16
            switch findStreamMapEntry(id: sid, mask: mask) {
            case .failure(let error):
                for idx in taken { _ = releaseStreamMapEntry(idx) }
                throw error
            case .success(let idx):
                guard idx < s2crs.count else {
                    for idx in taken { _ = releaseStreamMapEntry(idx) }
                    throw .ENOSPC
                }
                if smrs != nil, s2crs[idx].count == 0 {
                    smrs?[idx] = StreamMatchRegister(id: UInt16(sid), mask: UInt16(mask), valid: true)
                }
                s2crs[idx].count += 1
                taken.append(idx)
            }
        }
        master.streamMapEntries = taken
        for idx in taken { try writeSME(idx) }
    }

    /// `arm_smmu_free_sme`: drop one user; the last one resets the S2CR to `s2cr_init_val` and
    /// invalidates the SMR. True when the entry must be rewritten.
    func releaseStreamMapEntry(_ idx: Int) -> Bool {
        guard idx < s2crs.count, s2crs[idx].count > 0 else { return false }
        s2crs[idx].count -= 1
        guard s2crs[idx].count == 0 else { return false }
        s2crs[idx] = initialS2CR
        smrs?[idx].valid = false
        return true
    }

    /// `arm_smmu_release_device` → `arm_smmu_master_free_smes`.
    public func releaseDevice(_ device: Device) {
        guard let master = device.iommu?.driverData as? ArmSMMUMaster else { return }
        for idx in master.streamMapEntries where releaseStreamMapEntry(idx) {
            do { try writeSME(idx) } catch { log("release: SME \(idx) not rewritten: \(error)") }
        }
        master.streamMapEntries = []
        device.iommu?.driverData = nil
    }

    /// `arm_smmu_master_install_s2crs(cfg, type, cbndx, fwspec)`: every entry of the master gets
    /// the type and bank (PRIVCFG default), skipping entries already so.
    func installS2CRs(_ master: ArmSMMUMaster, type: UInt32, cbndx: UInt8) throws(Errno) {
        for idx in master.streamMapEntries where idx < s2crs.count {
            if s2crs[idx].type == type && s2crs[idx].cbndx == cbndx { continue }
            s2crs[idx].type = type
            s2crs[idx].privcfg = 0
            s2crs[idx].cbndx = cbndx
            try writeS2CR(idx)
        }
    }

    /// `attach_dev`: the static identity domain (`arm_smmu_attach_dev_identity` →
    /// S2CR_TYPE_BYPASS), the blocked domain (S2CR_TYPE_FAULT), or a paging domain of this SMMU
    /// (`arm_smmu_attach_dev`: S2CR_TYPE_TRANS to its context bank).
    public func attach(_ domain: IOMMUDomain, to device: Device) throws(Errno) {
        guard let master = device.iommu?.driverData as? ArmSMMUMaster else { throw .ENODEV }
        switch domain.type {
        case .identity where domain.operations == nil:
            try installS2CRs(master, type: SMMUv2Field.s2crTypeBypass, cbndx: 0)
        case .blocked:
            try installS2CRs(master, type: SMMUv2Field.s2crTypeFault, cbndx: 0)
        case .nested:
            throw .EINVAL
        default:
            guard let smmuDomain = domain.driverData as? ArmSMMUDomain, smmuDomain.driver === self else { throw .EINVAL }
            try installS2CRs(master, type: SMMUv2Field.s2crTypeTranslate, cbndx: UInt8(truncatingIfNeeded: smmuDomain.contextBank))
        }
    }
}
