import Testing
@testable import Bus

/// `SystemBus` region insertion with many regions (a device tree with thousands of memory
/// nodes): order-independent, overlaps refused naming the lowest existing region they hit.
@Suite("system bus at scale")
struct SystemBusScaleTests {
    @Test("20 k RAM windows added in permuted order come out sorted and each decodes its own addresses")
    func manyWindows() throws {
        let bus = SystemBus()
        let n = 20_000
        // Window k: [k × 64 KiB, k × 64 KiB + 32 KiB), added in a fixed permutation.
        for i in 0..<n {
            let k = (i &* 7919) % n
            try bus.addRAM(base: PhysicalAddress(UInt64(k) << 16), size: 0x8000, name: "mem\(k)")
        }
        #expect(bus.regions.count == n)
        #expect(zip(bus.regions, bus.regions.dropFirst()).allSatisfy { $0.last < $1.base.rawValue })
        #expect(bus.regions.map(\.name).prefix(3) == ["mem0", "mem1", "mem2"])
        var decoded = 0
        for k in stride(from: 0, to: n, by: 97) {
            if let index = bus.regionIndex(for: UInt64(k) << 16 | 0x7FFF), bus.regions[index].name == "mem\(k)" { decoded += 1 }
            #expect(bus.regionIndex(for: UInt64(k) << 16 | 0x8000) == nil)
        }
        #expect(decoded == (n + 96) / 97)
    }

    @Test("an overlapping window is refused with the lowest region it overlaps, and nothing is added")
    func overlapNamesLowest() throws {
        let bus = SystemBus()
        for k in [5, 1, 3, 7] { try bus.addRAM(base: PhysicalAddress(UInt64(k) << 16), size: 0x8000, name: "mem\(k)") }
        // [0x1_4000, 0x6_3FFF] overlaps mem1's tail, mem3 and mem5: mem1 is named.
        #expect(throws: BusError.overlappingRegion(name: "big", base: PhysicalAddress(0x1_4000), existing: bus.regions[0].description)) {
            try bus.addRAM(base: PhysicalAddress(0x1_4000), size: 0x5_0000, name: "big")
        }
        // Touching but not overlapping (the gap between mem1 and mem3) is fine.
        try bus.addRAM(base: PhysicalAddress(0x1_8000), size: 0x1_8000, name: "gap")
        #expect(bus.regions.map(\.name) == ["mem1", "gap", "mem3", "mem5", "mem7"])
        // A window overlapping only the last byte of the highest.
        #expect(throws: BusError.self) { try bus.addRAM(base: PhysicalAddress(0x7_7FFF), size: 0x10, name: "tail") }
        #expect(bus.regions.count == 5)
    }
}
