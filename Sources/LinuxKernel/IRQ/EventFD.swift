import Bus

/// `eventfd` (fs/eventfd.c): a 64-bit counter that one side signals and the other reads.
///
/// VFIO hands one per vector to `request_irq` (`vfio_msihandler` calls `eventfd_signal`), and
/// KVM's irqfd consumes it to inject into a guest. The model keeps the counter semantics of
/// `eventfd_signal` / `eventfd_read` (non-semaphore mode: a read returns the whole count and
/// zeroes it) plus a log of who signalled, in order, so tests and reports can tell which
/// interrupt fired it and on which CPU. The log counts every signal and keeps the last
/// `EventFD.retainedSignals` (a `BoundedLog`), so an eventfd signalled once per MSI for the
/// whole of a long run holds a fixed amount of memory; set `signalCapacity = nil` to keep all.
public final class EventFD {
    /// One `eventfd_signal` call.
    public struct Signal: Hashable, Sendable {
        /// The Linux interrupt number whose handler signalled, or nil for a direct signal.
        public var irq: Int?
        /// The CPU the handler ran on.
        public var cpu: Int?
    }

    public let name: String
    /// The counter (`ctx->count`).
    public private(set) var count: UInt64 = 0
    /// How many signals the log keeps by default.
    public static let retainedSignals = 64
    /// The signals: `signals.count` is every signal so far, iteration yields the last
    /// `signals.capacity` of them, oldest first.
    public private(set) var signals = BoundedLog<Signal>(capacity: EventFD.retainedSignals)
    /// How many signals `signals` keeps (nil: all of them).
    public var signalCapacity: Int? {
        get { signals.capacity }
        set { signals.capacity = newValue }
    }
    /// Called after each signal: the consumer side (KVM irqfd's wakeup) hooks in here.
    public var onSignal: ((EventFD) -> Void)?

    public init(name: String = "eventfd") { self.name = name }

    /// `eventfd_signal(ctx)`: adds 1. The counter saturates below `UInt64.max` (Linux refuses to
    /// reach ULLONG_MAX; a write that would block is dropped with a warning in signal context).
    /// The signal is appended to `journal` (the signalling kernel's) before the consumer wakes,
    /// so what the wakeup does (KVM's injection) follows it.
    public func signal(irq: Int? = nil, cpu: Int? = nil, journal: Journal? = nil) {
        if count < UInt64.max - 1 { count += 1 }
        signals.append(Signal(irq: irq, cpu: cpu))
        journal?.append(.eventfdSignal(irq: irq, cpu: cpu))
        onSignal?(self)
    }

    /// `read(2)` in non-semaphore mode: the count, then 0; nil when the count is 0 (EAGAIN on a
    /// non-blocking fd).
    public func read() -> UInt64? {
        guard count > 0 else { return nil }
        defer { count = 0 }
        return count
    }
}

/// A forked world's eventfd: its counter and signal log, and no consumer. `onSignal` is a
/// closure over the consumer's objects (KVM's irqfd, the VMM's userspace MSI-X path, a guest
/// VFIO user), so the copy starts with none and whoever installed it on the original installs
/// it again on the copy, from copied objects, in `CloneMap.afterCloning`.
extension EventFD: WorldCloneable {
    public func clone(into map: inout CloneMap) -> EventFD {
        let copy = EventFD(name: name)
        copy.count = count
        copy.signals = signals
        return copy
    }
}
