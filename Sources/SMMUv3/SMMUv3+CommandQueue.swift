import Bus

/// The command queue consumer (§3.5, §4.1.2–4.1.4, §7.1).
extension SMMUv3 {
    /// CMDQ_BASE.LOG2SIZE capped at IDR1.CMDQS (§6.3.26).
    var commandQueueGeometry: QueueGeometry {
        QueueGeometry(log2Size: min(SMMURegisterField.queueLog2Size(registers.cmdqBase),
                                    min(max(configuration.commandQueueMaxLog2, 0), 19)))
    }

    /// The queue base, aligned to the larger of the queue size and 32 bytes (§6.3.26).
    func queueBase(_ base: UInt64, geometry: QueueGeometry, entryShift: Int) -> UInt64 {
        let alignShift = max(geometry.log2Size + entryShift, 5)
        return SMMURegisterField.queueAddress(base) & ~UInt64.lowMask(alignShift)
    }

    /// Consumes commands while the queue is enabled, non-empty and no CMDQ_ERR is active
    /// (§4.1.2). Each command is fetched, decoded, checked against this SMMU's features,
    /// executed, and only then does CONS move past it, so CONS names the first command not
    /// consumed. On an error CONS stays at the bad command, CMDQ_CONS.ERR takes the code and
    /// GERROR.CMDQ_ERR is activated (§7.1).
    ///
    /// One call consumes at most 2 × the queue size + 16 commands. Without a bound, a CMD_SYNC
    /// or GERROR MSI aimed at CMDQ_PROD or GERRORN could keep a single register write running
    /// forever; commands left over are consumed on the next kick (PROD write, CMDQEN set, or
    /// CMDQ_ERR acknowledged), which is what an SMMU that processes "in a timely manner" also
    /// permits.
    func consumeCommands() {
        guard !consumingCommands else { return }
        consumingCommands = true
        defer { consumingCommands = false }
        var budget = Int(commandQueueGeometry.entryCount) &* 2 &+ 16
        while budget > 0 {
            budget -= 1
            guard registers.control.contains(.commandQueueEnable),
                  !registers.activeErrors.contains(.commandQueue) else { return }
            let geometry = commandQueueGeometry
            let cons = registers.cmdqCons & geometry.pointerMask
            guard !geometry.isEmpty(producer: registers.cmdqProd, consumer: cons) else { return }
            let base = queueBase(registers.cmdqBase, geometry: geometry, entryShift: 4)
            let slot = PhysicalAddress(base | (UInt64(geometry.index(cons)) << 4))
            let w0: UInt64, w1: UInt64
            do {
                w0 = try bus.read(slot, size: 8, requester: .hardware)
                w1 = try bus.read(PhysicalAddress(slot.rawValue | 8), size: 8, requester: .hardware)
            } catch {
                commandError(.fetchAbort(slot))
                return
            }
            let command: Command
            switch Command.decode(w0, w1) {
            case .success(let decoded):
                command = decoded
            case .failure(let error):
                commandError(error)
                return
            }
            if let reason = command.illegality(on: configuration) {
                commandError(.illegal(opcode: command.opcode.rawValue, reason: reason))
                return
            }
            if let trace = translator.trace {
                trace.append(.smmu, "command", address: slot.rawValue, value: w0, "\(command) at CONS \(Hex.format(UInt64(cons), minDigits: 1))")
            }
            execute(command, slot: slot)
            translator.counters.commandsConsumed &+= 1
            // Consumed: RD moves past the command; ERR is left as it was (UNKNOWN while
            // CMDQ_ERR is inactive, §6.3.28).
            let newCons = geometry.advanced(cons)
            registers.cmdqCons = (registers.cmdqCons & 0x7F00_0000) | newCons
        }
    }

    /// Reports a command error (§7.1): ERR first, then the global error.
    func commandError(_ error: CommandError) {
        registers.cmdqCons = registers.cmdqCons.settingBits(30, 24, to: UInt32(error.code.rawValue))
        if let trace = translator.trace {
            trace.append(.smmu, "command error", value: UInt64(error.code.rawValue), error.description)
        }
        raiseGlobalError(.commandQueue)
    }

    /// Executes one legal command.
    /// - CFGI_* / TLBI_*: the translator drops what the scope names (`Command.invalidation`).
    /// - PREFETCH_*: hints, consumed without effect (§4.2 permits prefetching nothing).
    /// - CMD_SYNC: every earlier command has completed by the time it is consumed (the model
    ///   executes in order, synchronously), so it only signals: with CS = SIG_IRQ it pulses the
    ///   CMD_SYNC wired interrupt and, with IDR0.MSI and a non-zero MSIAddress, writes MSIData as
    ///   a 32-bit write to MSIAddress (truncated to OAS, §4.7.3). An aborted MSI write activates
    ///   GERROR.MSI_CMDQ_ABT_ERR. SIG_SEV does nothing: IDR0.SEV = 0.
    /// - CMD_RESUME / CMD_STALL_TERM (legal only with a stall model): no transaction is ever
    ///   stalled here, so they match nothing (§4.7.1 "effectively a no-op").
    func execute(_ command: Command, slot: PhysicalAddress) {
        if let scope = command.invalidation(on: configuration) {
            translator.invalidate(scope)
            return
        }
        guard case .sync(let sync) = command, sync.completionSignal == .interrupt else { return }
        wiredInterrupts.commandSync &+= 1
        guard configuration.msi, sync.msiAddress != 0 else { return }
        let target = PhysicalAddress(sync.msiAddress & outputAddressMask)
        do {
            try bus.write(target, size: 4, value: UInt64(sync.msiData), requester: .device(msiDeviceID))
            messageInterrupts.commandSync &+= 1
        } catch {
            raiseGlobalError(.commandSyncMSIAbort)
        }
    }
}
