import Benchmark
import Bus

/// RAM and bus access: the floor under every descriptor read.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(2))

    Benchmark("Bus.read64.RAM.hit") { benchmark in
        let bus = SystemBus()
        try? bus.addRAM(base: PhysicalAddress(0x4000_0000), size: 0x4000_0000)
        try? bus.write64(PhysicalAddress(0x4000_1000), 42)
        var sum: UInt64 = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            sum &+= (try? bus.read64(PhysicalAddress(0x4000_1000))) ?? 0
        }
        blackHole(sum)
    }
}
