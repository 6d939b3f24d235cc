import Bus
import SMMUv3

/// What a buggy or hostile kernel does that arm-smmu-v3 never does: put arbitrary words in a
/// live STE or CD and tell the SMMU to reload it. Linux only writes entries it built
/// (`arm_smmu_make_*_ste`, `arm_smmu_make_s1_cd`) through the hitless writer
/// (`arm_smmu_write_entry`); a guest kernel is not bound by that, and its STEs and CDs live in
/// its own RAM, so the host must contain whatever it writes. These helpers drive the SMMU the
/// architected way only — memory writes to the stream table or CD table, then the
/// invalidation commands Linux itself uses (`arm_smmu_sync_ste_for_sid`: CFGI_STE(leaf) +
/// CMD_SYNC; `arm_smmu_sync_cd`: CFGI_CD(leaf) per StreamID + CMD_SYNC) on the driver's own
/// command queue. On a guest that queue is the vSMMU's, so the VMM sees exactly what a
/// misbehaving guest would send it.
extension ArmSMMUv3Driver {
    /// Writes `words` (8 qwords, SMMUv3 §5.2 layout, not checked in any way) over the STE of
    /// every StreamID of `device`: qwords 1–7, then qword 0 (so V is written last, as any
    /// writer that wants the SMMU to see a whole entry would), then CFGI_STE(leaf) +
    /// CMD_SYNC for that StreamID. The driver's own idea of the device's domain is not
    /// updated: the entry in memory and `attach`'s bookkeeping now disagree, as they would
    /// in the misbehaving kernel. -EINVAL unless 8 words, -ENODEV for a device this SMMU does
    /// not translate, -ERANGE when a StreamID has no STE slot.
    public func overwriteStreamTableEntries(of device: Device, with words: [UInt64]) throws(Errno) {
        guard words.count == 8 else { throw .EINVAL }
        let master = try master(of: device)
        guard let strtab = streamTable else { throw .ENODEV }
        for sid in master.streamIDs {
            guard let address = strtab.steAddress(for: sid.rawValue) else { throw .ERANGE }
            try writeRawEntry(words, at: address)
            try issueWithSync([.cfgiSTE(sid, leaf: true)])
        }
    }

    /// Writes `words` (8 qwords, §5.4 layout, unchecked) over the device's CD for SSID 0 in
    /// its CD table (allocating the table if the device never had one, as
    /// `arm_smmu_alloc_cd_tables` would), qwords 1–7 then 0, then CFGI_CD(sid, 0, leaf) for
    /// every StreamID + CMD_SYNC. Whether the SMMU ever reads it depends on the STE (an
    /// identity-domain device's bypass STE has no CD table pointer). On a guest the VMM turns
    /// the CFGI_CD into IOMMU_HWPT_INVALIDATE; the host SMMU then re-fetches the CD through
    /// stage 2. Errors as `overwriteStreamTableEntries`.
    public func overwriteContextDescriptor(of device: Device, with words: [UInt64]) throws(Errno) {
        guard words.count == 8 else { throw .EINVAL }
        let master = try master(of: device)
        let table = try ensureCDTable(master)
        try writeRawEntry(words, at: table)
        try issueWithSync(master.streamIDs.map { .cfgiCD($0, SubstreamID(0), leaf: true) })
    }

    private func writeRawEntry(_ words: [UInt64], at address: PhysicalAddress) throws(Errno) {
        for i in [1, 2, 3, 4, 5, 6, 7, 0] {
            try writeQword(PhysicalAddress(address.rawValue &+ UInt64(i) &* 8), words[i])
        }
    }
}
