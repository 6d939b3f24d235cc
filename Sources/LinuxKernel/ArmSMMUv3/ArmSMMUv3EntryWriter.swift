import Bus
import SMMUv3

/// `arm_smmu_write_entry`: updates a live 64-byte STE or CD so the SMMU never sees a mix of
/// old and new fields that would be ILLEGAL or wrong. The entry is written in qword steps
/// (`entry_set`), each step followed by the writer's sync (CFGI_STE / CFGI_CD + CMD_SYNC) when
/// it changed a qword:
/// - no used bit changes (`used_qword_diff` = 0): write everything (one step);
/// - exactly one qword's used bits change: first the bits the current config ignores, then that
///   qword ("hitless"), then the rest;
/// - otherwise break-before-make: qword 0 zeroed (V = 0), then qwords 1–7, then qword 0.
///
/// Which bits count as used follows the configured release: MEV is a used STE bit only with
/// `KernelBehaviour.nestedSTEMergeEvents`, and only with `KernelBehaviour.steUpdateSafe` does
/// `arm_smmu_entry_qword_diff` ask `arm_smmu_get_ste_update_safe` for bits (EATS, MEV) that may
/// change out of sequence; the CD writer (`arm_smmu_cd_writer_ops`) has no such hook.
struct ArmSMMUv3EntryWriter {
    enum Kind { case ste, cd }
    let kind: Kind
    /// The release whose rules apply (`kernel.configuration`).
    let configuration: KernelConfiguration

    /// `writer->ops->get_used`: `arm_smmu_get_ste_used` / `arm_smmu_get_cd_used`.
    func used(_ e: [UInt64]) -> [UInt64] {
        switch kind {
        case .ste: ArmSMMUv3Entries.steUsed(e, mergeEvents: configuration.has(.nestedSTEMergeEvents))
        case .cd: ArmSMMUv3Entries.cdUsed(e)
        }
    }

    /// `writer->ops->get_update_safe`: `arm_smmu_get_ste_update_safe` for an STE on a release
    /// that has it; none (all zero) otherwise.
    func updateSafe(current: [UInt64], target: [UInt64]) -> [UInt64] {
        guard kind == .ste, configuration.has(.steUpdateSafe) else { return [UInt64](repeating: 0, count: 8) }
        return ArmSMMUv3Entries.steUpdateSafe(current: current, target: target)
    }

    /// `arm_smmu_entry_qword_diff`: the qwords whose used bits must change after every bit the
    /// current entry ignores has been set to the target's (`unusedUpdate`). With update-safe
    /// bits, a safe bit used by both entries counts as ignored ("Safe is only used for bits
    /// that are used by both entries, otherwise it is sequenced according to the unused
    /// entry").
    func qwordDiff(entry: [UInt64], target: [UInt64]) -> (diff: UInt8, unusedUpdate: [UInt64]) {
        var currentUsed = used(entry)
        let targetUsed = used(target)
        var safe = updateSafe(current: entry, target: target)
        var unusedUpdate = [UInt64](repeating: 0, count: 8)
        var diff: UInt8 = 0
        for i in 0..<8 {
            safe[i] &= targetUsed[i] & currentUsed[i]
            currentUsed[i] &= ~safe[i]
            unusedUpdate[i] = (entry[i] & currentUsed[i]) | (target[i] & ~currentUsed[i])
            if (unusedUpdate[i] & targetUsed[i]) != target[i] { diff |= 1 << UInt8(i) }
        }
        return (diff, unusedUpdate)
    }

    /// `arm_smmu_write_entry` on `entry` (the 8 qwords as memory holds them): each changed
    /// qword goes out through `store(index, value)`, and each step that changed one ends with
    /// `sync(entry)` (the entry as it now is). Returns the number of syncs.
    @discardableResult
    func write(_ entry: inout [UInt64], target: [UInt64],
               store: (Int, UInt64) throws(Errno) -> Void,
               sync: ([UInt64]) throws(Errno) -> Void) throws(Errno) -> Int {
        guard entry.count == 8, target.count == 8 else { throw .EINVAL }
        var syncs = 0
        // `entry_set`: write qwords [start, start+len) that differ; sync if any changed.
        func set(_ values: [UInt64], _ start: Int, _ length: Int) throws(Errno) {
            var changed = false
            for i in start..<(start + length) where entry[i] != values[i] {
                entry[i] = values[i]
                try store(i, values[i])
                changed = true
            }
            if changed {
                try sync(entry)
                syncs += 1
            }
        }
        var (diff, unusedUpdate) = qwordDiff(entry: entry, target: target)
        if diff.nonzeroBitCount == 1 {
            let critical = diff.trailingZeroBitCount
            unusedUpdate[critical] = entry[critical]
            try set(unusedUpdate, 0, 8)
            try set(target, critical, 1)
            try set(target, 0, 8)
        } else if diff != 0 {
            unusedUpdate[0] = 0
            try set(unusedUpdate, 0, 1)
            try set(target, 1, 7)
            try set(target, 0, 1)
        } else {
            try set(target, 0, 8)
        }
        return syncs
    }
}

extension ArmSMMUv3Driver {
    /// `arm_smmu_write_entry` on the live entry at `address` with this kernel's release rules:
    /// the entry read from memory, the changed qwords written back, `sync` (CFGI + CMD_SYNC)
    /// after each step, and `entryWriteObserver` told what the entry is at each sync. Returns
    /// the number of syncs.
    @discardableResult
    func writeEntry(_ kind: ArmSMMUv3EntryWriter.Kind, at address: PhysicalAddress, target: [UInt64],
                    sync: () throws(Errno) -> Void) throws(Errno) -> Int {
        let writer = ArmSMMUv3EntryWriter(kind: kind, configuration: kernel.configuration)
        var entry = try readEntry(address)
        return try writer.write(&entry, target: target, store: { [unowned self] (i, value) throws(Errno) in
            try self.writeQword(PhysicalAddress(address.rawValue &+ UInt64(i) &* 8), value)
        }, sync: { [unowned self] (words) throws(Errno) in
            try sync()
            self.entryWriteObserver?(kind, address, words)
        })
    }
}
