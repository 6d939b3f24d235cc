import Bus
import SMMUv3

/// `arm_smmu_write_entry`: updates a live 64-byte STE or CD so the SMMU never sees a mix of
/// old and new fields that would be ILLEGAL or wrong. The entry is written in qword steps, each
/// step followed by the writer's sync (CFGI_STE / CFGI_CD + CMD_SYNC) when it changed memory:
/// - no used bit changes (`used_qword_diff` = 0): write everything (one step);
/// - exactly one qword's used bits change: first the bits the current config ignores, then that
///   qword ("hitless"), then the rest;
/// - otherwise break-before-make: qword 0 with V=0, then qwords 1–7, then qword 0.
struct ArmSMMUv3EntryWriter {
    enum Kind { case ste, cd }
    let kind: Kind
    /// The entry's address.
    let address: PhysicalAddress
    /// The writer's sync: `arm_smmu_ste_writer_sync_entry` / `arm_smmu_cd_writer_sync_entry`.
    let sync: () throws(Errno) -> Void

    func used(_ e: [UInt64]) -> [UInt64] {
        kind == .ste ? ArmSMMUv3Entries.steUsed(e) : ArmSMMUv3Entries.cdUsed(e)
    }

    /// `arm_smmu_write_entry`. Returns the number of syncs issued (for tests).
    @discardableResult
    func write(_ target: [UInt64], driver: ArmSMMUv3Driver) throws(Errno) -> Int {
        guard target.count == 8 else { throw .EINVAL }
        var entry = try driver.readEntry(address)
        var syncs = 0
        // `entry_set`: write qwords [start, start+len) that differ; sync if any changed.
        func set(_ values: [UInt64], _ start: Int, _ length: Int) throws(Errno) {
            var changed = false
            for i in start..<(start + length) where entry[i] != values[i] {
                entry[i] = values[i]
                try driver.writeQword(PhysicalAddress(address.rawValue &+ UInt64(i) * 8), values[i])
                changed = true
            }
            if changed {
                try sync()
                syncs += 1
            }
        }
        // `arm_smmu_entry_qword_diff`.
        let currentUsed = used(entry)
        let targetUsed = used(target)
        var unusedUpdate = [UInt64](repeating: 0, count: 8)
        var diff: UInt8 = 0
        for i in 0..<8 {
            unusedUpdate[i] = (entry[i] & currentUsed[i]) | (target[i] & ~currentUsed[i])
            if (unusedUpdate[i] & targetUsed[i]) != target[i] { diff |= 1 << UInt8(i) }
        }
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
