import Benchmark
import Bus
import GIC
import Machine
import Testbed

/// ITS command processing: each iteration moves GITS_CWRITER forward by `ITSRig.batch` (64)
/// commands, and the ITS reads and executes them from the command queue in RAM before the
/// CWRITER write returns. Commands per second = 64 × the iteration throughput.
///
/// The 4 KiB queue `BareMetal.enableITS` set up (128 slots) is filled once with a repeating
/// pattern before measuring and never rewritten: every second iteration the ITS comes round the
/// ring and executes the same commands again. Each pattern leaves the ITS state as it found it,
/// so every lap does the same work; `ITSRig.run` checks no command failed.
let benchmarks: @Sendable () -> Void = {
    // One sample = 1000 batches of 64 commands; `--scale` reports per batch.
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .mallocCountTotal],
                                           scalingFactor: .kilo, maxDuration: .seconds(2))

    /// MAPTI (re)maps EventID e → LPI 8192 + e on collection 0, INV reloads its configuration:
    /// what Linux's its_irq_domain_activate + its_send_inv do per vector.
    Benchmark("ITS.commands.maptiInv") { (benchmark: Benchmark, rig: ITSRig) in
        rig.run(benchmark)
    } setup: { () -> ITSRig in
        let rig = ITSRig()
        rig.fill { slot in
            let event = EventID(UInt32(slot / 2 % ITSRig.events))
            return slot % 2 == 0
                ? .mapti(device: ITSRig.device, event: event, intid: INTID(BareMetal.firstLPI + event.rawValue), collection: CollectionID(0))
                : .inv(device: ITSRig.device, event: event)
        }
        return rig
    }

    /// MOVI to collection 1 and back to 0 (both on CPU 0): an affinity change and its undo.
    Benchmark("ITS.commands.moviPair") { (benchmark: Benchmark, rig: ITSRig) in
        rig.run(benchmark)
    } setup: { () -> ITSRig in
        let rig = ITSRig()
        rig.fill { slot in
            let event = EventID(UInt32(slot / 2 % ITSRig.events))
            return .movi(device: ITSRig.device, event: event, collection: CollectionID(slot % 2 == 0 ? 1 : 0))
        }
        return rig
    }
}

final class ITSRig {
    static let device = DeviceID(8)
    static let events = 32
    static let batch = 64
    static let slotBytes: UInt64 = 32

    let machine: Machine
    let bareMetal: BareMetal
    let its: ITS
    let queueBase: UInt64
    let queueBytes: UInt64
    let cwriter: PhysicalAddress

    init() {
        machine = try! MachinePreset.qemuVirt.makeMachine()
        bareMetal = try! BareMetal(machine: machine)
        try! bareMetal.enableLPIs()
        try! bareMetal.enableITS()
        try! bareMetal.mapDevice(Self.device, events: Self.events, firstINTID: BareMetal.firstLPI)
        // A second collection on CPU 0 for MOVI.
        try! bareMetal.issue([.mapc(collection: CollectionID(1), target: machine.gic!.target(ofCPU: 0), valid: true)])
        its = machine.its[0]
        // GITS_CBASER: Physical_Address[51:12], Size[7:0] = pages − 1.
        queueBase = its.cbaser.keepingBits(51, 12)
        queueBytes = (its.cbaser.bits(7, 0) + 1) * 4096
        cwriter = PhysicalAddress(its.base.rawValue + ITS.Offset.cwriter)
    }

    /// Writes `command(k)` into every slot, k counted from the current CWRITER.
    func fill(_ command: (Int) -> ITSCommand) {
        let start = its.cwriter.keepingBits(19, 5)
        let slots = Int(queueBytes / Self.slotBytes)
        precondition(slots % Self.batch == 0 && slots > Self.batch)
        for k in 0..<slots {
            let (w0, w1, w2, w3) = command(k).encodeWords()
            let at = queueBase + (start + UInt64(k) * Self.slotBytes) % queueBytes
            try! machine.bus.writeWords(PhysicalAddress(at), [w0, w1, w2, w3])
        }
    }

    func run(_ benchmark: Benchmark) {
        let bus = machine.bus
        let step = UInt64(Self.batch) * Self.slotBytes
        let queueBytes = self.queueBytes
        var writer = its.cwriter.keepingBits(19, 5)
        let before = its.counters
        for _ in benchmark.scaledIterations {
            writer = (writer &+ step) % queueBytes
            try! bus.write(cwriter, size: 8, value: writer, requester: .cpu(0))
        }
        benchmark.stopMeasurement()   // the check below is not measured
        let after = its.counters
        guard after.commandErrors == before.commandErrors, after.unsupportedCommands == before.unsupportedCommands,
              !its.stalled, its.creadr == writer else {
            fatalError("ITS command benchmark: errors or stall (\(before) → \(after), CREADR \(its.creadr), CWRITER \(writer))")
        }
    }
}
