import Bus

/// `irqreturn_t`.
public enum IRQReturn: Sendable {
    /// `IRQ_NONE`: not ours.
    case none
    /// `IRQ_HANDLED`.
    case handled
}

/// `struct irqaction`: what `request_irq` installs on a Linux interrupt.
///
/// Two kinds exist in the model: a driver's handler (a closure taking the Linux IRQ number and
/// the CPU it runs on) and VFIO's `vfio_msihandler`, whose whole body is
/// `eventfd_signal(trigger)`.
public final class IRQAction {
    public enum Kind {
        case handler((_ irq: Int, _ cpu: Int) -> IRQReturn)
        /// `vfio_msihandler`: signal the eventfd.
        case eventfd(EventFD)
    }

    /// The name `request_irq` was given (what /proc/interrupts shows).
    public let name: String
    public private(set) var kind: Kind
    /// A forked world's copy of a `.handler` action whose closure has not been installed again
    /// yet (see the `WorldCloneable` conformance): it runs as `IRQ_NONE` until then.
    public private(set) var awaitsHandler = false

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    /// Runs the action (`__handle_irq_event_percpu` → `action->handler`); `journal` is the
    /// kernel's, for `eventfd_signal` to append to.
    func run(irq: Int, cpu: Int, journal: Journal? = nil) -> IRQReturn {
        switch kind {
        case .handler(let body): return body(irq, cpu)
        case .eventfd(let fd):
            fd.signal(irq: irq, cpu: cpu, journal: journal)
            return .handled
        }
    }
}

/// A forked world's action. VFIO's `vfio_msihandler` action takes the copied eventfd. A driver's
/// handler is a closure over the original world's objects, so the copy keeps the action (its
/// name, and the interrupt's state, which the descriptor carries) with no handler
/// (`awaitsHandler`): whoever requested it installs its closure again on the copy, built from
/// copied objects, with `IRQSubsystem.reinstallHandler(irq:handler:)` in
/// `CloneMap.afterCloning` — World for the guest driver's handlers, KVM for its vPE doorbells
/// (`IRQSubsystem.reinstallVPEDoorbellHandlers`). Nothing is requested again: a second
/// `request_irq` would activate and unmask an interrupt the copy already has in that state.
extension IRQAction: WorldCloneable {
    public func clone(into map: inout CloneMap) -> IRQAction {
        switch kind {
        case .eventfd(let fd):
            return IRQAction(name: name, kind: .eventfd(map.clone(fd)))
        case .handler:
            let copy = IRQAction(name: name, kind: .handler { _, _ in .none })
            copy.awaitsHandler = true
            return copy
        }
    }

    /// Installs the handler of a forked copy (see the conformance above).
    func reinstall(handler: @escaping (_ irq: Int, _ cpu: Int) -> IRQReturn) {
        kind = .handler(handler)
        awaitsHandler = false
    }
}
