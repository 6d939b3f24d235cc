import Bus
import SMMUv3

/// Command submission: `arm_smmu_cmdq_issue_cmdlist`, `arm_smmu_cmdq_batch_*`, CMD_SYNC
/// completion and the global-error handler's `arm_smmu_cmdq_skip_err`.
///
/// One CPU submits in this model, so the lock-free multi-producer protocol (owned flag,
/// valid bitmap) reduces to: wait for space, write the commands (and a CMD_SYNC) at PROD,
/// publish PROD, then wait for the SYNC.
extension ArmSMMUv3Driver {
    /// `CMDQ_BATCH_ENTRIES` = BITS_PER_LONG: a batch is flushed (without a sync) when full.
    static let batchEntries = 64

    /// `arm_smmu_cmdq_issue_cmd_with_sync` / `arm_smmu_cmdq_batch_submit`: issues `commands`
    /// in batches of at most 64, the last followed by a CMD_SYNC.
    public func issueWithSync(_ commands: [Command]) throws(Errno) {
        var start = 0
        while commands.count - start > Self.batchEntries {
            try issueCommandList(Array(commands[start..<(start + Self.batchEntries)]), sync: false)
            start += Self.batchEntries
        }
        try issueCommandList(Array(commands[start...]), sync: true)
    }

    /// `arm_smmu_cmdq_issue_cmd`: commands without a sync (e.g. CMD_PREFETCH_CONFIG).
    public func issueWithoutSync(_ commands: [Command]) throws(Errno) {
        var start = 0
        while start < commands.count {
            let end = min(start + Self.batchEntries, commands.count)
            try issueCommandList(Array(commands[start..<end]), sync: false)
            start = end
        }
    }

    /// `arm_smmu_cmdq_build_sync_cmd`: with ARM_SMMU_OPT_MSIPOLL, CS = SIG_IRQ with MSIAddress
    /// the SYNC's own slot and MSIData 0; otherwise CS = SIG_SEV. MSH = ISH, MSIAttr = OIWB.
    func syncCommand(at slot: PhysicalAddress) -> Command {
        if features.msiPolling {
            return .sync(CommandSync(completionSignal: .interrupt, msiShareability: 3, msiAttributes: 0xF,
                                     msiData: 0, msiAddress: slot.rawValue))
        }
        return .sync(CommandSync(completionSignal: .sendEvent, msiShareability: 3, msiAttributes: 0xF))
    }

    /// `arm_smmu_cmdq_issue_cmdlist` with commands as raw words, as `arm_vsmmu_cache_invalidate`
    /// passes the converted guest commands: written to the queue as they are (a command the
    /// SMMU finds illegal is its CERROR_ILL to report), counted under their opcode when it is
    /// one the SMMU knows.
    func issueRawCommandList(_ words: [(UInt64, UInt64)], sync: Bool) throws(Errno) {
        try issueEntries(words.map { w in
            let decoded = try? Command.decode(w.0, w.1).get()
            return (w.0, w.1, decoded)
        }, sync: sync)
    }

    /// `arm_smmu_cmdq_issue_cmdlist`.
    func issueCommandList(_ commands: [Command], sync: Bool) throws(Errno) {
        try issueEntries(commands.map { c in
            let (w0, w1) = c.encode()
            return (w0, w1, c)
        }, sync: sync)
    }

    private func issueEntries(_ commands: [(UInt64, UInt64, Command?)], sync: Bool) throws(Errno) {
        guard var queue = commandQueue else { throw .ENODEV }
        let n = UInt32(commands.count) &+ (sync ? 1 : 0)
        guard n > 0 else { return }
        guard n <= queue.entries else { throw .EINVAL }
        // `arm_smmu_cmdq_poll_until_not_full`: refresh CONS from the register.
        var polls = 0
        while !queue.hasSpace(n) {
            queue.cons = try read32(SMMURegisterOffset.cmdqCons) & (queue.entries | (queue.entries &- 1))
            if queue.hasSpace(n) { break }
            try serviceGlobalErrors()
            polls += 1
            if polls >= Self.pollLimit {
                log("CMDQ timeout")
                commandQueue = queue
                throw .ETIMEDOUT
            }
        }
        var prod = queue.prod
        for command in commands {
            try writeWords(command.0, command.1, command.2, at: queue.slot(prod))
            prod = queue.advanced(prod)
        }
        var syncProd: UInt32?
        if sync {
            let slot = queue.slot(prod)
            try writeCommand(syncCommand(at: slot), at: slot)
            syncProd = prod
            prod = queue.advanced(prod)
        }
        queue.prod = prod
        commandQueue = queue
        // "A command is visible to the SMMU once PROD is written."
        try write32(SMMURegisterOffset.cmdqProd, prod)
        if let syncProd { try waitForSync(at: syncProd) }
    }

    private func writeCommand(_ command: Command, at slot: PhysicalAddress) throws(Errno) {
        let (w0, w1) = command.encode()
        try writeWords(w0, w1, command, at: slot)
    }

    private func writeWords(_ w0: UInt64, _ w1: UInt64, _ command: Command?, at slot: PhysicalAddress) throws(Errno) {
        do {
            try kernel.bus.write(slot, size: 8, value: w0, requester: .cpu(0))
            try kernel.bus.write(PhysicalAddress(slot.rawValue | 8), size: 8, value: w1, requester: .cpu(0))
        } catch { throw .EIO }
        guard let command else { return }
        commandCounts[command.opcode, default: 0] += 1
        commandLog.append(command)
    }

    /// `arm_smmu_cmdq_poll_until_sync`: `__arm_smmu_cmdq_poll_until_msi` (the SYNC slot's
    /// first 32-bit word becomes 0, written by the SMMU's MSI) or
    /// `__arm_smmu_cmdq_poll_until_consumed` (CONS passes the SYNC). While waiting, an active
    /// global error is handled as Linux's GERROR interrupt would (`arm_smmu_gerror_handler`),
    /// which lets a queue stopped by a bad command resume. On timeout: "CMD_SYNC timeout at
    /// 0x%08x [hwprod 0x%08x, hwcons 0x%08x]" and -ETIMEDOUT.
    func waitForSync(at syncProd: UInt32) throws(Errno) {
        guard var queue = commandQueue else { throw .ENODEV }
        let slot = queue.slot(syncProd)
        for _ in 0..<Self.pollLimit {
            let hwCons = try read32(SMMURegisterOffset.cmdqCons)
            if features.msiPolling {
                let word: UInt64
                do { word = try kernel.bus.read(slot, size: 4, requester: .cpu(0)) } catch { throw .EIO }
                if word == 0 {
                    queue.cons = queue.advanced(syncProd)
                    commandQueue = queue
                    return
                }
            } else {
                queue.cons = hwCons & (queue.entries | (queue.entries &- 1))
                if queue.consumed(syncProd) {
                    commandQueue = queue
                    return
                }
            }
            try serviceGlobalErrors()
        }
        let hwProd = (try? read32(SMMURegisterOffset.cmdqProd)) ?? 0
        let hwCons = (try? read32(SMMURegisterOffset.cmdqCons)) ?? 0
        log("CMD_SYNC timeout at 0x\(hex8(syncProd)) [hwprod 0x\(hex8(hwProd)), hwcons 0x\(hex8(hwCons))]")
        throw .ETIMEDOUT
    }

    /// `arm_smmu_gerror_handler`: active = GERROR ^ GERRORN; logs each active error, recovers
    /// a command-queue error with `arm_smmu_cmdq_skip_err`, then acknowledges by writing GERROR
    /// to GERRORN. Returns whether anything was active (IRQ_HANDLED).
    @discardableResult
    public func serviceGlobalErrors() throws(Errno) -> Bool {
        let gerror = try read32(SMMURegisterOffset.gerror)
        let gerrorn = try read32(SMMURegisterOffset.gerrorn)
        // GERROR_ERR_MASK = 0x1FD: bits 8:0 except the reserved bit 1.
        let active = (gerror ^ gerrorn) & 0x1FD
        guard active != 0 else { return false }
        log("unexpected global error reported (0x\(hex8(active))), this could be serious")
        if active & (1 << 8) != 0 {
            log("device has entered Service Failure Mode!")
            try? writeRegisterSync(0, SMMURegisterOffset.cr0, ack: SMMURegisterOffset.cr0ack)
        }
        if active & (1 << 7) != 0 { log("GERROR MSI write aborted") }
        if active & (1 << 6) != 0 { log("PRIQ MSI write aborted") }
        if active & (1 << 5) != 0 { log("EVTQ MSI write aborted") }
        if active & (1 << 4) != 0 { log("CMDQ MSI write aborted") }
        if active & (1 << 3) != 0 { log("PRIQ write aborted -- events may have been lost") }
        if active & (1 << 2) != 0 { log("EVTQ write aborted -- events may have been lost") }
        if active & 1 != 0 { try skipCommandError() }
        try write32(SMMURegisterOffset.gerrorn, gerror)
        return true
    }

    /// `arm_smmu_cmdq_skip_err`: reads CMDQ_CONS.ERR; for CERROR_ILL (and unknown codes) logs
    /// the bad command's words and overwrites its slot with a CMD_SYNC (CS = SIG_SEV, no MSI),
    /// so the queue resumes once GERRORN is written. CERROR_ABT is left to be retried
    /// ("retrying command fetch"); CERROR_NONE and CERROR_ATC_INV_SYNC need nothing.
    func skipCommandError() throws(Errno) {
        guard let queue = commandQueue else { return }
        let cons = try read32(SMMURegisterOffset.cmdqCons)
        let code = SMMURegisterField.commandError(cons)
        let names = ["No error", "Illegal command", "Abort on command fetch", "ATC invalidate timeout"]
        log("CMDQ error (cons 0x\(hex8(cons))): \(code < 4 ? names[Int(code)] : "Unknown")")
        commandErrors.append(CommandErrorCode(rawValue: code) ?? .illegal)
        switch code {
        case 2:
            log("retrying command fetch")
            return
        case 0, 3:
            return
        default:
            break
        }
        let slot = queue.slot(cons & (queue.entries | (queue.entries &- 1)))
        let w0: UInt64, w1: UInt64
        do {
            w0 = try kernel.bus.read(slot, size: 8, requester: .cpu(0))
            w1 = try kernel.bus.read(PhysicalAddress(slot.rawValue | 8), size: 8, requester: .cpu(0))
        } catch { throw .EIO }
        log("skipping command in error state:")
        log("\t0x\(hex16(w0))")
        log("\t0x\(hex16(w1))")
        let replacement = Command.sync(CommandSync(completionSignal: .sendEvent, msiShareability: 3, msiAttributes: 0xF))
        let (r0, r1) = replacement.encode()
        do {
            try kernel.bus.write(slot, size: 8, value: r0, requester: .cpu(0))
            try kernel.bus.write(PhysicalAddress(slot.rawValue | 8), size: 8, value: r1, requester: .cpu(0))
        } catch { throw .EIO }
    }

    /// Clears `commandCounts` and `commandLog` (for tests that count one operation).
    public func resetCommandLog() {
        commandCounts = [:]
        commandLog = []
    }

    /// Commands of `opcode` issued so far.
    public func count(of opcode: CommandOpcode) -> Int { commandCounts[opcode] ?? 0 }
}

func hex8(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
