import Bus
import GIC
@testable import LinuxKernel
import PCI
import Testing
import VMM
@testable import Scenario

/// The per-MSI records of a built world — the device's request log, the host CPU interfaces'
/// acknowledges, VFIO's eventfd signals, KVM's injections and the world's guest deliveries —
/// count every MSI but keep a fixed number of records, so a world that takes MSIs for a whole
/// run (a benchmark's steady stream, a long exploration) does not grow.
@Suite("bounded per-MSI logs") struct LongRunLogTests {
    static let messages = 10_000

    /// Storage is the capacity plus at most the allocator's rounding, never more with the run.
    static func bounded<T>(_ log: BoundedLog<T>, _ capacity: Int) -> Bool {
        log.retainedCount <= capacity && log.storageCapacity <= capacity + capacity / 8 + 4
    }

    @Test("10,000 MSIs through the seed world: every log counts all of them and keeps at most its capacity")
    func tenThousandMSIs() throws {
        let world = try World.build(BuiltInScenarios.seed, strategy: .rmrIdentity)
        let function = world.functions[0]
        let vdev = world.vmm.devices[0].deviceFile.vdev
        let triggers: [EventFD] = (0..<4).compactMap { vdev.contexts[$0]?.trigger }
        try #require(triggers.count == 4)
        let signalsBefore = triggers.map(\.signals.count)
        let injectionsBefore = world.vmm.vm.injections.count
        let requestsBefore = function.log.count
        let cpus = world.machine.gic?.cpuInterfaces ?? []
        let acknowledgesBefore = cpus.reduce(0) { $0 + $1.deliveries.count }
        let deliveredBefore = world.vmm.vm.counters.delivered
        world.deliveries.removeAll()

        for i in 0..<Self.messages {
            _ = function.raise(vector: i & 3)
            for cpu in 0..<world.host.irq.cpuCount { _ = world.host.irq.handleInterrupts(cpu: cpu) }
            for cpu in 0..<world.guest.irq.cpuCount { _ = world.guest.irq.handleInterrupts(cpu: cpu) }
        }

        // Every MSI counted, in every layer.
        #expect(function.log.count == requestsBefore + Self.messages)
        #expect(cpus.reduce(0) { $0 + $1.deliveries.count } == acknowledgesBefore + Self.messages)
        for (v, trigger) in triggers.enumerated() {
            #expect(trigger.signals.count == signalsBefore[v] + Self.messages / 4, "vector \(v)")
        }
        #expect(world.vmm.vm.injections.count == injectionsBefore + Self.messages)
        #expect(world.vmm.vm.counters.delivered == deliveredBefore + Self.messages)
        #expect(world.deliveries.count == Self.messages)

        // Fixed storage, holding the most recent records.
        #expect(Self.bounded(function.log, PCIFunction.retainedLogEntries))
        for cpu in cpus { #expect(Self.bounded(cpu.deliveries, CPUInterface.retainedDeliveries)) }
        for trigger in triggers { #expect(Self.bounded(trigger.signals, EventFD.retainedSignals)) }
        #expect(Self.bounded(world.vmm.vm.injections, KVMVirtualMachine.retainedInjections))
        #expect(Self.bounded(world.deliveries, World.retainedDeliveries))
        #expect(world.deliveries.retainedCount == World.retainedDeliveries)
        let lastVector = (Self.messages - 1) & 3
        #expect(function.log.last?.request == .msix(vector: lastVector))
        #expect(triggers[lastVector].signals.last?.irq == vdev.contexts[lastVector]?.irq)
        guard case .delivered(let intid, _)? = world.vmm.vm.injections.last?.outcome else {
            Issue.record("the last injection was not delivered: \(String(describing: world.vmm.vm.injections.last))")
            return
        }
        #expect(intid == world.expectedGuestInterrupt(device: 0, vector: lastVector)?.lpi)
        // The retained deliveries are the last ones, oldest first: vectors cycle 0…3.
        let irqs = world.deliveries.map(\.irq)
        let expectedIRQs = (Self.messages - World.retainedDeliveries..<Self.messages).map {
            world.expectedGuestInterrupt(device: 0, vector: $0 & 3)?.irq ?? -1
        }
        #expect(irqs == expectedIRQs)

        // A scenario step after the run still sees exactly its own MSI.
        guard case .fired(let outcome) = world.perform(.fire(device: 0, vector: 2), step: 1) else {
            Issue.record("fire was not performed")
            return
        }
        #expect(outcome.handled.count == 1)
        #expect(world.deliveries.isEmpty)
    }

    @Test("a bounded log keeps the newest elements in order, counts all, and a capacity of nil keeps everything")
    func ringOrder() {
        var ring = BoundedLog<Int>(capacity: 3)
        #expect(ring.isEmpty && ring.last == nil && ring.retained.isEmpty)
        for i in 1...7 { ring.append(i) }
        #expect(ring.count == 7 && ring.retained == [5, 6, 7] && ring.last == 7)
        #expect(ring.since(5) == [6, 7] && ring.since(7).isEmpty && ring.since(0) == [5, 6, 7])
        ring.capacity = 2
        #expect(ring.retained == [6, 7] && ring.count == 7)
        ring.append(8)
        #expect(ring.retained == [7, 8] && ring.last == 8)
        ring.removeAll()
        #expect(ring.isEmpty && ring.count == 0 && ring.retained.isEmpty)

        var all = BoundedLog<Int>(capacity: nil)
        for i in 0..<1000 { all.append(i) }
        #expect(all.retained == Array(0..<1000) && all.count == 1000)

        // A bounded ring's storage stops at its capacity, however it got there.
        var ring100 = BoundedLog<Int>(capacity: 100)
        for i in 0..<10_000 { ring100.append(i) }
        #expect(ring100.storageCapacity >= 100 && ring100.storageCapacity <= 100 + 100 / 8 + 4)
        #expect(ring100.retained == Array(9900..<10_000))

        var none = BoundedLog<Int>(capacity: 0)
        none.append(1)
        #expect(none.count == 1 && none.retained.isEmpty && none.last == nil)
    }
}
