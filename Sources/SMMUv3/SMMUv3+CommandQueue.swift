import Bus

/// The command queue (§3.5, §4.1.2–4.1.4, §7.1): `SMMURegisterFile.consumeCommands` fetches,
/// decodes, checks and steps CONS; this SMMU executes.
extension SMMUv3 {
    /// CMDQ_BASE.LOG2SIZE capped at IDR1.CMDQS (§6.3.26).
    var commandQueueGeometry: QueueGeometry { registerFile.commandQueueGeometry }

    /// Consumes commands from system memory until the queue is empty or stopped (§4.1.2). A
    /// command error is traced and raises the GERROR interrupt (§7.1, §7.5).
    func consumeCommands() {
        let error = registerFile.consumeCommands(
            read: { (address) throws(BusError) -> UInt64 in
                try bus.read(PhysicalAddress(address), size: 8, requester: .hardware)
            },
            execute: { entry in
                if let trace = translator.trace {
                    trace.append(.smmu, "command", address: entry.slot, value: entry.firstWord,
                                 "\(entry.command) at CONS \(Hex.format(UInt64(entry.consumer), minDigits: 1))")
                }
                execute(entry.command, slot: PhysicalAddress(entry.slot))
                translator.counters.commandsConsumed &+= 1
                return nil
            })
        guard let error else { return }
        if let trace = translator.trace {
            trace.append(.smmu, "command error", value: UInt64(error.code.rawValue), error.description)
        }
        signalGlobalError(.commandQueue)
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
        guard let msi = registerFile.commandSyncMSI(sync) else { return }
        do {
            try bus.write(PhysicalAddress(msi.address), size: 4, value: UInt64(msi.data), requester: .device(msiDeviceID))
            messageInterrupts.commandSync &+= 1
        } catch {
            raiseGlobalError(.commandSyncMSIAbort)
        }
    }
}
