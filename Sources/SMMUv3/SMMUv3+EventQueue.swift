import Bus

/// The event queue producer (§7.2–7.4), global errors (§7.5) and the SMMU's own interrupts
/// (§3.18).
extension SMMUv3 {
    /// EVENTQ_BASE.LOG2SIZE capped at IDR1.EVENTQS (§6.3.29).
    var eventQueueGeometry: QueueGeometry {
        QueueGeometry(log2Size: min(SMMURegisterField.queueLog2Size(registers.eventqBase),
                                    min(max(configuration.eventQueueMaxLog2, 0), 19)))
    }

    /// Writes the record for `fault` at EVENTQ_PROD and advances PROD (§7.2–7.4):
    /// - EVENTQEN = 0: the record is discarded, without an overflow (§7.4);
    /// - EVENTQ_ABT_ERR active: delivery has stopped (§7.5), discarded;
    /// - queue full: the record is lost; if no overflow is already pending (OVFLG = OVACKFLG),
    ///   EVENTQ_PROD.OVFLG toggles (§7.4). While an overflow is unacknowledged, records still go
    ///   into free space, but a second overflow cannot be signalled;
    /// - the record write aborts: EVENTQ_ABT_ERR is activated, the record is lost, PROD stays;
    /// - otherwise the record is written and PROD moves, and if the queue was empty and
    ///   IRQ_CTRL.EVENTQ_IRQEN = 1 the event-queue interrupt fires, after PROD is visible.
    /// Lost and discarded records count in `eventsDropped`, written ones in `eventsRecorded`.
    public func recordEvent(_ fault: SMMUFault) {
        guard registers.control.contains(.eventQueueEnable),
              !registers.activeErrors.contains(.eventQueueAbort) else {
            translator.counters.eventsDropped &+= 1
            return
        }
        let geometry = eventQueueGeometry
        let prod = registers.eventqProd
        let cons = registers.eventqCons
        let overflowBit = UInt32(1) << UInt32(SMMURegisterField.overflowBit)
        if geometry.isFull(producer: prod, consumer: cons) {
            translator.counters.eventsDropped &+= 1
            if prod & overflowBit == cons & overflowBit {
                registers.eventqProd = prod ^ overflowBit
            }
            return
        }
        let base = queueBase(registers.eventqBase, geometry: geometry, entryShift: 5)
        let slot = base | (UInt64(geometry.index(prod)) << 5)
        let (w0, w1, w2, w3) = EventRecord(fault: fault).dwords
        do {
            try bus.write(PhysicalAddress(slot), size: 8, value: w0, requester: .hardware)
            try bus.write(PhysicalAddress(slot | 8), size: 8, value: w1, requester: .hardware)
            try bus.write(PhysicalAddress(slot | 16), size: 8, value: w2, requester: .hardware)
            try bus.write(PhysicalAddress(slot | 24), size: 8, value: w3, requester: .hardware)
        } catch {
            translator.counters.eventsDropped &+= 1
            raiseGlobalError(.eventQueueAbort)
            return
        }
        let wasEmpty = geometry.isEmpty(producer: prod, consumer: cons)
        registers.eventqProd = (prod & overflowBit) | geometry.advanced(prod)
        translator.counters.eventsRecorded &+= 1
        if let trace = translator.trace {
            trace.append(.smmu, "event \(fault.type.name)", address: slot, value: w0, fault.description)
        }
        if wasEmpty && registers.interruptControl.contains(.eventQueue) {
            wiredInterrupts.eventQueue &+= 1
            sendMSI(configuration: registers.eventqIRQCfg0, data: registers.eventqIRQCfg1,
                    abortError: .eventQueueMSIAbort) { $0.eventQueue &+= 1 }
        }
    }

    /// Activates a global error (§7.5): GERROR[x] toggles unless the error is already active
    /// (then nothing is logged). Activation raises the GERROR interrupt when
    /// IRQ_CTRL.GERROR_IRQEN = 1, except for MSI_GERROR_ABT_ERR (§7.5.1).
    func raiseGlobalError(_ error: SMMUGlobalErrors) {
        guard SMMUGlobalErrors.implemented(msi: configuration.msi).isSuperset(of: error),
              registers.activeErrors.isDisjoint(with: error) else { return }
        registers.gerror ^= error.rawValue
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
