import Bus

/// What became of one event record offered to the event queue (§7.2–7.4).
public enum EventQueueOutcome: Hashable, Sendable {
    /// Written at `slot`; PROD moved. `interrupt`: the queue was empty and
    /// IRQ_CTRL.EVENTQ_IRQEN = 1, so the owner signals the event-queue interrupt.
    case written(slot: UInt64, interrupt: Bool)
    /// EVENTQEN = 0 or EVENTQ_ABT_ERR active: discarded without an overflow (§7.4, §7.5).
    case discarded
    /// The queue was full: lost, with EVENTQ_PROD.OVFLG toggled if no overflow was pending.
    case overflowed
    /// The record write aborted: EVENTQ_ABT_ERR was activated (`activated` says whether now,
    /// so the owner signals the GERROR interrupt), the record is lost, PROD stays.
    case aborted(activated: Bool)

    /// Whether the record reached the queue.
    public var isWritten: Bool { if case .written = self { true } else { false } }
}

/// The event queue producer (§7.2–7.4), shared by the physical SMMU (its own faults) and a
/// virtual SMMU (events the host reports through the vEVENTQ, QEMU `smmuv3_propagate_event`).
extension SMMURegisterFile {
    /// Writes `record` at EVENTQ_PROD with `write` (four 64-bit words) and advances PROD:
    /// - EVENTQEN = 0: the record is discarded, without an overflow (§7.4);
    /// - EVENTQ_ABT_ERR active: delivery has stopped (§7.5), discarded;
    /// - queue full: the record is lost; if no overflow is already pending (OVFLG = OVACKFLG),
    ///   EVENTQ_PROD.OVFLG toggles (§7.4). While an overflow is unacknowledged, records still go
    ///   into free space, but a second overflow cannot be signalled;
    /// - the record write aborts: EVENTQ_ABT_ERR is activated, the record is lost, PROD stays;
    /// - otherwise the record is written and PROD moves; the interrupt is due if the queue was
    ///   empty and IRQ_CTRL.EVENTQ_IRQEN = 1 (signalled after PROD is visible).
    public func produceEvent(_ record: EventRecord,
                             write: (UInt64, UInt64) throws(BusError) -> Void) -> EventQueueOutcome {
        guard state.control.contains(.eventQueueEnable),
              !state.activeErrors.contains(.eventQueueAbort) else { return .discarded }
        let geometry = eventQueueGeometry
        let prod = state.eventqProd
        let cons = state.eventqCons
        let overflowBit = UInt32(1) << UInt32(SMMURegisterField.overflowBit)
        if geometry.isFull(producer: prod, consumer: cons) {
            if prod & overflowBit == cons & overflowBit {
                state.eventqProd = prod ^ overflowBit
            }
            return .overflowed
        }
        let base = Self.queueBase(state.eventqBase, geometry: geometry, entryShift: 5)
        let slot = base | (UInt64(geometry.index(prod)) << 5)
        let (w0, w1, w2, w3) = record.dwords
        do {
            try write(slot, w0)
            try write(slot | 8, w1)
            try write(slot | 16, w2)
            try write(slot | 24, w3)
        } catch {
            return .aborted(activated: activateGlobalError(.eventQueueAbort))
        }
        let wasEmpty = geometry.isEmpty(producer: prod, consumer: cons)
        state.eventqProd = (prod & overflowBit) | geometry.advanced(prod)
        return .written(slot: slot, interrupt: wasEmpty && state.interruptControl.contains(.eventQueue))
    }
}
