import Bus

/// One `struct irq_bypass_consumer`: KVM's irqfd, whose token is its eventfd
/// (`kvm_irqfd_assign`: `irqfd->consumer.token = (void *)irqfd->eventfd`). `addProducer` is
/// `kvm_arch_irq_bypass_add_producer` (0 or an error), `delProducer`
/// `kvm_arch_irq_bypass_del_producer`.
public struct IRQBypassConsumer {
    public var addProducer: (_ hostIRQ: Int) -> Int32
    public var delProducer: (_ hostIRQ: Int) -> Void

    public init(addProducer: @escaping (Int) -> Int32, delProducer: @escaping (Int) -> Void) {
        self.addProducer = addProducer
        self.delProducer = delProducer
    }
}

/// virt/lib/irqbypass.c: producers (VFIO's MSI vectors: token = the trigger eventfd, `irq` =
/// the host interrupt) and consumers (KVM irqfds) registered by token; a producer and a
/// consumer with the same token are connected (`__connect`: the consumer's `add_producer`),
/// whichever registers second, and disconnected (`del_producer`) when either goes.
public final class IRQBypassManager {
    /// By token: the producer's host interrupt, with the token itself (which a fork needs to
    /// find the token's copy).
    private var producers: [ObjectIdentifier: (token: EventFD, irq: Int)] = [:]
    private var consumers: [ObjectIdentifier: IRQBypassConsumer] = [:]

    public init() {}

    /// `irq_bypass_register_producer`: EBUSY for a token already producing; a matching
    /// consumer's `add_producer` failing fails the registration with its error (VFIO then only
    /// logs "irq bypass producer (token %p) registration fails").
    @discardableResult
    public func registerProducer(token: EventFD, irq: Int) -> Int32 {
        let key = ObjectIdentifier(token)
        guard producers[key] == nil else { return -Errno.EBUSY.rawValue }
        if let consumer = consumers[key] {
            let result = consumer.addProducer(irq)
            guard result == 0 else { return result }
        }
        producers[key] = (token, irq)
        return 0
    }

    /// `irq_bypass_unregister_producer`: disconnects the consumer first.
    public func unregisterProducer(token: EventFD) {
        let key = ObjectIdentifier(token)
        guard let irq = producers.removeValue(forKey: key)?.irq else { return }
        consumers[key]?.delProducer(irq)
    }

    /// `irq_bypass_register_consumer`: EBUSY for a token already consumed; connects a waiting
    /// producer.
    @discardableResult
    public func registerConsumer(token: EventFD, _ consumer: IRQBypassConsumer) -> Int32 {
        let key = ObjectIdentifier(token)
        guard consumers[key] == nil else { return -Errno.EBUSY.rawValue }
        if let irq = producers[key]?.irq {
            let result = consumer.addProducer(irq)
            guard result == 0 else { return result }
        }
        consumers[key] = consumer
        return 0
    }

    /// `irq_bypass_unregister_consumer`.
    public func unregisterConsumer(token: EventFD) {
        let key = ObjectIdentifier(token)
        guard let consumer = consumers.removeValue(forKey: key) else { return }
        if let irq = producers[key]?.irq { consumer.delProducer(irq) }
    }

    /// The host interrupt producing for `token`, if any.
    public func producer(token: EventFD) -> Int? { producers[ObjectIdentifier(token)]?.irq }

    /// Whether a consumer is registered for `token`.
    public func hasConsumer(token: EventFD) -> Bool { consumers[ObjectIdentifier(token)] != nil }

    /// For a forked world: puts back the consumer the original had registered for the token
    /// whose copy is `token`, built by its owner (KVM's irqfd) from copied objects. The pairing
    /// it made on the original (`add_producer`: the vLPI map) is already in the copied state, so
    /// nothing is connected again. EBUSY when the token already has a consumer.
    @discardableResult
    public func reinstallConsumer(token: EventFD, _ consumer: IRQBypassConsumer) -> Int32 {
        let key = ObjectIdentifier(token)
        guard consumers[key] == nil else { return -Errno.EBUSY.rawValue }
        consumers[key] = consumer
        return 0
    }
}

/// A forked world's irqbypass registry: each producer, keyed by its token's copy (the copied
/// eventfd), with its host interrupt. Consumers are closures over KVM's objects: the copy starts
/// with none and KVM's clone puts each back with `reinstallConsumer` in `CloneMap.afterCloning`.
/// (`CloneMap.valueFieldsThatDiffer` does not apply: the keys are the tokens' identities, which
/// differ by design.)
extension IRQBypassManager: WorldCloneable {
    public func clone(into map: inout CloneMap) -> IRQBypassManager {
        let copy = IRQBypassManager()
        for (_, producer) in producers.sorted(by: { $0.value.irq < $1.value.irq }) {
            let token = map.clone(producer.token)
            copy.producers[ObjectIdentifier(token)] = (token, producer.irq)
        }
        return copy
    }
}
