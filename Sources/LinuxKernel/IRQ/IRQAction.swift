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
    public let kind: Kind

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
