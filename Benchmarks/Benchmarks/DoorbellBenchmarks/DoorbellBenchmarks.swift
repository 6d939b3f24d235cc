import Benchmark
import Bus
import GIC
import Machine
import PCI
import SMMUv3
import Testbed

/// `doorbell msi` as a whole run, through the public APIs: the steps of `MSIReport.make` in
/// Sources/DoorbellCommands/MSICommand.swift (which is internal to the command-line library):
/// build the qemu-virt machine from its device tree, bring up LPIs, the ITS and the SMMU,
/// enumerate the 4-vector function, map its events, install the chosen translation, program
/// vector 2, fire it with a trace attached, acknowledge it, and render the trace as text
/// (`TraceRecord.description` per line instead of the command's table layout). Argument
/// parsing and printing are left out. One iteration = one whole run. `mallocFreeDelta` and
/// `memoryLeakedBytes` show what a run leaves allocated after everything it built is dropped.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .mallocCountTotal, .mallocFreeDelta, .memoryLeakedBytes], maxDuration: .seconds(3))

    for translation in [DoorbellRun.Translation.bypass, .s1, .nested] {
        Benchmark("Doorbell.msi.\(translation)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(DoorbellRun.run(translation))
            }
        }
    }
}

enum DoorbellRun {
    enum Translation: String { case bypass, s1, nested }

    static let rid = RequesterID(bus: 0, device: 1, function: 0)
    static let msiIOVA: UInt64 = 0xFFFF_F040
    static let vector = 2

    static func run(_ translation: Translation) -> String {
        let machine = try! MachinePreset.qemuVirt.makeMachine()
        let gic = machine.gic!
        let its = machine.its[0]
        let bm = try! BareMetal(machine: machine)
        try! bm.enableLPIs()
        try! bm.enableITS()
        let function = try! bm.addMSIXEndpoint(requesterID: rid, vectors: 4, barAddress: machine.rootComplexes[0].memoryWindowBase)
        let route = machine.rootComplexes[0].route(for: function)
        try! bm.mapDevice(route.deviceID, events: 4, firstINTID: BareMetal.firstLPI)
        let doorbell = its.translaterAddress.rawValue
        let page = doorbell & ~0xFFF
        var device = PageAttributes()
        device.attributeIndex = 2
        var address = doorbell
        let sid = route.streamID!
        try! bm.resetSMMU()
        switch translation {
        case .bypass:
            try! bm.installSTE(.bypass, streamID: sid)
        case .s1:
            let tables = try! bm.enableStage1(streamID: sid)
            try! tables.map(input: msiIOVA & ~0xFFF, output: page, size: 0x1000, attributes: device)
            address = msiIOVA
        case .nested:
            let nested = try! bm.enableNested(streamID: sid)
            var s2 = device
            s2.stage2MemoryAttributes = 0x1
            try! nested.stage2.map(input: page, output: page, size: 0x1000, attributes: s2)
            try! nested.stage1.map(input: msiIOVA & ~0xFFF, output: page, size: 0x1000, attributes: device)
            address = msiIOVA
        }
        try! bm.writeMSIXEntry(function, vector: vector, address: address, data: UInt32(vector))
        let log = TraceLog()
        machine.trace = log
        function.trace = log
        _ = function.raise(vector: vector)
        let intid = gic.acknowledge(cpu: 0)
        guard intid == BareMetal.firstLPI + UInt32(vector) else { fatalError("doorbell msi \(translation): CPU 0 read \(intid)") }
        gic.endOfInterrupt(cpu: 0, intid: intid)
        machine.trace = nil
        var text = ""
        for record in log.records where !(record.layer == .bus && record.step.hasPrefix("MMIO read")) {
            text += record.description
            text += "\n"
        }
        return text
    }
}
