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
    private var producers: [ObjectIdentifier: Int] = [:]
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
        producers[key] = irq
        return 0
    }

    /// `irq_bypass_unregister_producer`: disconnects the consumer first.
    public func unregisterProducer(token: EventFD) {
        let key = ObjectIdentifier(token)
        guard let irq = producers.removeValue(forKey: key) else { return }
        consumers[key]?.delProducer(irq)
    }

    /// `irq_bypass_register_consumer`: EBUSY for a token already consumed; connects a waiting
    /// producer.
    @discardableResult
    public func registerConsumer(token: EventFD, _ consumer: IRQBypassConsumer) -> Int32 {
        let key = ObjectIdentifier(token)
        guard consumers[key] == nil else { return -Errno.EBUSY.rawValue }
        if let irq = producers[key] {
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
        if let irq = producers[key] { consumer.delProducer(irq) }
    }

    /// The host interrupt producing for `token`, if any.
    public func producer(token: EventFD) -> Int? { producers[ObjectIdentifier(token)] }
}
