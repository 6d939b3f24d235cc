import Bus

/// One command as the consumer hands it to its owner: where it was read, the CONS value that
/// named it and its first word (for traces).
public struct CommandQueueEntry: Hashable, Sendable {
    public let command: Command
    public let slot: UInt64
    public let consumer: UInt32
    public let firstWord: UInt64
}

/// The command queue consumer (§3.5, §4.1.2–4.1.4, §7.1), shared by the physical SMMU and a
/// virtual SMMU front end (QEMU's accelerated vSMMU runs the emulated SMMU's
/// `smmuv3_cmdq_consume` and only diverts the commands it forwards to the host).
extension SMMURegisterFile {
    /// CMDQ_BASE.LOG2SIZE capped at IDR1.CMDQS (§6.3.26).
    public var commandQueueGeometry: QueueGeometry {
        QueueGeometry(log2Size: min(SMMURegisterField.queueLog2Size(state.cmdqBase),
                                    min(max(configuration.commandQueueMaxLog2, 0), 19)))
    }

    /// EVENTQ_BASE.LOG2SIZE capped at IDR1.EVENTQS (§6.3.29).
    public var eventQueueGeometry: QueueGeometry {
        QueueGeometry(log2Size: min(SMMURegisterField.queueLog2Size(state.eventqBase),
                                    min(max(configuration.eventQueueMaxLog2, 0), 19)))
    }

    /// Consumes commands while the queue is enabled, non-empty and no CMDQ_ERR is active
    /// (§4.1.2). Each command is fetched with `read` (two 64-bit words at the slot), decoded,
    /// checked against this SMMU's features (`Command.illegality`), handed to `execute`, and
    /// only then does CONS move past it, so CONS names the first command not consumed. When
    /// fetch, decode, legality or `execute` fails, CONS stays at the bad command,
    /// CMDQ_CONS.ERR takes the code and GERROR.CMDQ_ERR is activated (§7.1); the error is
    /// returned so the owner can signal the GERROR interrupt.
    ///
    /// One call consumes at most 2 × the queue size + 16 commands. Without a bound, a CMD_SYNC
    /// or GERROR MSI aimed at CMDQ_PROD or GERRORN could keep a single register write running
    /// forever; commands left over are consumed on the next kick (PROD write, CMDQEN set, or
    /// CMDQ_ERR acknowledged), which is what an SMMU that processes "in a timely manner" also
    /// permits. A kick while a consumption is running (from inside `execute`) does nothing:
    /// the running loop sees the new PROD.
    @discardableResult
    public func consumeCommands(read: (UInt64) throws(BusError) -> UInt64,
                                execute: (CommandQueueEntry) -> CommandError?) -> CommandError? {
        guard !consumingCommands else { return nil }
        consumingCommands = true
        defer { consumingCommands = false }
        var budget = Int(commandQueueGeometry.entryCount) &* 2 &+ 16
        while budget > 0 {
            budget -= 1
            guard state.control.contains(.commandQueueEnable),
                  !state.activeErrors.contains(.commandQueue) else { return nil }
            let geometry = commandQueueGeometry
            let cons = state.cmdqCons & geometry.pointerMask
            guard !geometry.isEmpty(producer: state.cmdqProd, consumer: cons) else { return nil }
            let slot = commandSlot(cons)
            let w0: UInt64, w1: UInt64
            do {
                w0 = try read(slot)
                w1 = try read(slot | 8)
            } catch {
                return fail(.fetchAbort(PhysicalAddress(slot)))
            }
            let command: Command
            switch Command.decode(w0, w1) {
            case .success(let decoded): command = decoded
            case .failure(let error): return fail(error)
            }
            if let reason = command.illegality(on: configuration) {
                return fail(.illegal(opcode: command.opcode.rawValue, reason: reason))
            }
            if let error = execute(CommandQueueEntry(command: command, slot: slot, consumer: cons, firstWord: w0)) {
                return fail(error)
            }
            // Consumed: RD moves past the command; ERR is left as it was (UNKNOWN while
            // CMDQ_ERR is inactive, §6.3.28).
            let newCons = geometry.advanced(cons)
            state.cmdqCons = (state.cmdqCons & 0x7F00_0000) | newCons
        }
        return nil
    }

    /// The address of the command a CONS value names: the queue base, aligned to the larger of
    /// the queue size and 32 bytes (§6.3.26), plus 16 bytes per entry.
    public func commandSlot(_ consumer: UInt32) -> UInt64 {
        let geometry = commandQueueGeometry
        let base = Self.queueBase(state.cmdqBase, geometry: geometry, entryShift: 4)
        return base | (UInt64(geometry.index(consumer)) << 4)
    }

    /// A queue base, aligned to the larger of the queue size and 32 bytes (§6.3.26, §6.3.29:
    /// ADDR bits below the queue size are treated as zero).
    public static func queueBase(_ base: UInt64, geometry: QueueGeometry, entryShift: Int) -> UInt64 {
        let alignShift = max(geometry.log2Size + entryShift, 5)
        return SMMURegisterField.queueAddress(base) & ~UInt64.lowMask(alignShift)
    }

    /// Reports a command error (§7.1): ERR first, then the global error.
    func fail(_ error: CommandError) -> CommandError {
        state.cmdqCons = state.cmdqCons.settingBits(30, 24, to: UInt32(error.code.rawValue))
        activateGlobalError(.commandQueue)
        return error
    }

    /// The MSI a consumed CMD_SYNC sends (§4.7.3): with CS = SIG_IRQ, IDR0.MSI = 1 and a
    /// non-zero MSIAddress, a 32-bit write of MSIData to MSIAddress truncated to the OAS; nil
    /// otherwise (CS = SIG_NONE/SIG_SEV, or no MSI support: then only the wired CMD_SYNC
    /// interrupt, if any, signals).
    public func commandSyncMSI(_ sync: CommandSync) -> (address: UInt64, data: UInt32)? {
        guard sync.completionSignal == .interrupt, configuration.msi, sync.msiAddress != 0 else { return nil }
        return (sync.msiAddress & outputAddressMask, sync.msiData)
    }
}
