import Benchmark
import Bus
import GIC
import Machine
import PCI
import SMMUv3
import Testbed

/// One MSI per iteration, from the device's write to the LPI pending on CPU 0's redistributor,
/// on the `qemu-virt` preset brought up by `BareMetal` (as Tests/MachineTests/EndToEndMSITests).
/// Each iteration also acknowledges the LPI (ICC_IAR1_EL1) and ends it (ICC_EOIR1_EL1), so the
/// same LPI can become pending again; `MSIRig.deliver` checks on every iteration that it did.
///
/// The function's request log and the CPU interface's delivery record are switched off
/// (`isLogging`, `recordsDeliveries`): both are append-only arrays meant for tests.
let benchmarks: @Sendable () -> Void = {
    // 1000 MSIs per sample; `--scale` reports per MSI.
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .mallocCountTotal],
                                           scalingFactor: .kilo, maxDuration: .seconds(2))

    Benchmark("MSI.raise.smmuBypass") { (benchmark: Benchmark, rig: MSIRig) in
        for _ in benchmark.scaledIterations { rig.deliver(vector: 2) }
    } setup: { () throws -> MSIRig in
        let rig = MSIRig()
        try rig.bareMetal.installSTE(.bypass, streamID: MSIRig.streamID)
        try rig.bareMetal.writeMSIXEntry(rig.function, vector: 2, address: MSIRig.doorbell, data: 2)
        rig.deliver(vector: 2)
        return rig
    }

    Benchmark("MSI.raise.stage1.tlbHit") { (benchmark: Benchmark, rig: MSIRig) in
        for _ in benchmark.scaledIterations { rig.deliver(vector: 1) }
    } setup: { () throws -> MSIRig in
        let rig = MSIRig()
        let tables = try rig.bareMetal.enableStage1(streamID: MSIRig.streamID)
        try tables.map(input: 0xFFFF_F000, output: MSIRig.doorbell & ~0xFFF, size: 0x1000, attributes: MSIRig.deviceAttributes)
        try rig.bareMetal.writeMSIXEntry(rig.function, vector: 1, address: 0xFFFF_F040, data: 1)
        rig.deliver(vector: 1)   // the one TLB miss
        rig.expectTLBHit(vector: 1)
        return rig
    }

    Benchmark("MSI.raise.nested.tlbHit") { (benchmark: Benchmark, rig: MSIRig) in
        for _ in benchmark.scaledIterations { rig.deliver(vector: 3) }
    } setup: { () throws -> MSIRig in
        let rig = MSIRig()
        let nested = try rig.bareMetal.enableNested(streamID: MSIRig.streamID)
        var s2 = MSIRig.deviceAttributes
        s2.stage2MemoryAttributes = 0x1   // Device-nGnRE, as `doorbell msi --translation nested`
        let page = MSIRig.doorbell & ~0xFFF
        try nested.stage2.map(input: page, output: page, size: 0x1000, attributes: s2)
        try nested.stage1.map(input: 0xFFFF_F000, output: page, size: 0x1000, attributes: MSIRig.deviceAttributes)
        try rig.bareMetal.writeMSIXEntry(rig.function, vector: 3, address: 0xFFFF_F040, data: 3)
        rig.deliver(vector: 3)
        rig.expectTLBHit(vector: 3)
        return rig
    }

    /// No PCI, no SMMU: a CPU-side `bus.write` to GITS_TRANSLATER carrying DeviceID 8 as
    /// sideband (`Requester.device`), EventID 0 → LPI 8192.
    Benchmark("MSI.its.translaterWrite") { (benchmark: Benchmark, rig: MSIRig) in
        for _ in benchmark.scaledIterations { rig.translaterWrite() }
    } setup: { () throws -> MSIRig in
        let rig = MSIRig()
        rig.translaterWrite()
        return rig
    }
}

/// qemu-virt with LPIs, the ITS and the SMMU up, and a 4-vector MSI-X endpoint at 00:01.0
/// (StreamID = DeviceID = 8 through the identity maps) whose events 0…3 are LPIs 8192…8195.
final class MSIRig {
    static let rid = RequesterID(bus: 0, device: 1, function: 0)
    static let streamID = StreamID(0x8)
    /// GITS_TRANSLATER of qemu-virt's ITS (0x0808_0000 + 0x1_0040).
    static let doorbell: UInt64 = 0x0809_0040

    let machine: Machine
    let bareMetal: BareMetal
    let function: PCIFunction
    let gic: GICv3

    init() {
        machine = try! MachinePreset.qemuVirt.makeMachine()
        bareMetal = try! BareMetal(machine: machine)
        try! bareMetal.enableLPIs()
        try! bareMetal.enableITS()
        try! bareMetal.resetSMMU()
        function = try! bareMetal.addMSIXEndpoint(requesterID: Self.rid, vectors: 4, barAddress: 0x1000_0000)
        try! bareMetal.mapDevice(DeviceID(0x8), events: 4, firstINTID: BareMetal.firstLPI)
        gic = machine.gic!
        function.isLogging = false
        for cpu in gic.cpuInterfaces { cpu.recordsDeliveries = false }
    }

    /// Linux's MSI doorbell mapping: IOMMU_WRITE | IOMMU_MMIO, stage-1 AttrIndx 2 (Device-nGnRE).
    static var deviceAttributes: PageAttributes {
        var a = PageAttributes()
        a.attributeIndex = 2
        return a
    }

    /// Raises `vector`, then CPU 0 acknowledges and ends LPI 8192 + vector.
    @inline(__always)
    func deliver(vector: Int) {
        let outcome = function.raise(vector: vector)
        let intid = gic.acknowledge(cpu: 0)
        guard intid == BareMetal.firstLPI &+ UInt32(vector) else { fatalError("MSI not delivered: \(outcome), CPU 0 read \(intid)") }
        gic.endOfInterrupt(cpu: 0, intid: intid)
    }

    func expectTLBHit(vector: Int) {
        let misses = machine.smmus[0].translator.counters.tlbMisses
        deliver(vector: vector)
        guard machine.smmus[0].translator.counters.tlbMisses == misses else { fatalError("MSI missed the SMMU TLB") }
    }

    @inline(__always)
    func translaterWrite() {
        try! machine.bus.write(PhysicalAddress(Self.doorbell), size: 4, value: 0, requester: .device(DeviceID(Self.streamID.rawValue)))
        let intid = gic.acknowledge(cpu: 0)
        guard intid == BareMetal.firstLPI else { fatalError("ITS write did not make LPI 8192 pending (got \(intid))") }
        gic.endOfInterrupt(cpu: 0, intid: intid)
    }
}
