import Bus

/// The event queue producer (§7.2–7.4), global errors (§7.5) and the SMMU's own interrupts
/// (§3.18).
extension SMMUv3 {
    /// EVENTQ_BASE.LOG2SIZE capped at IDR1.EVENTQS (§6.3.29).
    var eventQueueGeometry: QueueGeometry { registerFile.eventQueueGeometry }

    /// Writes the record for `fault` into the event queue (`SMMURegisterFile.produceEvent`,
    /// §7.2–7.4) and signals: the event-queue interrupt when the queue was empty and
    /// IRQ_CTRL.EVENTQ_IRQEN = 1, after PROD is visible; the GERROR interrupt when the write
    /// aborted (EVENTQ_ABT_ERR). Lost and discarded records count in `eventsDropped`, written
    /// ones in `eventsRecorded`.
    public func recordEvent(_ fault: SMMUFault) {
        let record = EventRecord(fault: fault)
        let outcome = registerFile.produceEvent(record) { (address, word) throws(BusError) in
            try bus.write(PhysicalAddress(address), size: 8, value: word, requester: .hardware)
        }
        switch outcome {
        case .discarded, .overflowed:
            translator.counters.eventsDropped &+= 1
        case .aborted(let activated):
            translator.counters.eventsDropped &+= 1
            if activated { signalGlobalError(.eventQueueAbort) }
        case .written(let slot, let interrupt):
            translator.counters.eventsRecorded &+= 1
            if let trace = translator.trace {
                trace.append(.smmu, "event \(fault.type.name)", address: slot, value: record.dwords.0, fault.description)
            }
            if interrupt {
                wiredInterrupts.eventQueue &+= 1
                sendMSI(configuration: registers.eventqIRQCfg0, data: registers.eventqIRQCfg1,
                        abortError: .eventQueueMSIAbort) { $0.eventQueue &+= 1 }
            }
        }
    }

    /// Activates a global error (§7.5, `SMMURegisterFile.activateGlobalError`) and signals it.
    func raiseGlobalError(_ error: SMMUGlobalErrors) {
        if registerFile.activateGlobalError(error) { signalGlobalError(error) }
    }

    /// The GERROR interrupt for a newly activated error, when IRQ_CTRL.GERROR_IRQEN = 1, except
    /// for MSI_GERROR_ABT_ERR, whose activation does not raise it (§7.5.1).
    func signalGlobalError(_ error: SMMUGlobalErrors) {
        guard error != .globalErrorMSIAbort, registers.interruptControl.contains(.globalError) else { return }
        wiredInterrupts.globalError &+= 1
        sendMSI(configuration: registers.gerrorIRQCfg0, data: registers.gerrorIRQCfg1,
                abortError: .globalErrorMSIAbort) { $0.globalError &+= 1 }
    }

    /// Sends one MSI when IDR0.MSI = 1 and the CFG0 address is non-zero (§3.18, §6.3.21 "If
    /// ADDR == 0, no MSI is sent"): a 32-bit write of the CFG1 data, carrying the SMMU's own
    /// DeviceID. An aborted write activates `abortError`.
    func sendMSI(configuration cfg0: UInt64, data: UInt32, abortError: SMMUGlobalErrors,
                 count: (inout SMMUMessageInterrupts) -> Void) {
        let address = SMMURegisterField.msiAddress(cfg0) & outputAddressMask
        guard configuration.msi, address != 0 else { return }
        do {
            try bus.write(PhysicalAddress(address), size: 4, value: UInt64(data), requester: .device(msiDeviceID))
            count(&messageInterrupts)
        } catch {
            raiseGlobalError(abortError)
        }
    }
}
