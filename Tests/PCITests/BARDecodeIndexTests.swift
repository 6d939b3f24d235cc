import Bus
import Testing
@testable import PCI

/// `RootComplex.decode` answers from an address-sorted index of the enabled BAR windows; it must
/// give what asking every function in attach order gives (`decodeByScan`) through every change
/// software can make: BAR programming, sizing writes of all-ones, Memory Space Enable on and
/// off, Function Level Reset, overlapping and adjacent windows.
@Suite("BAR decode index") struct BARDecodeIndexTests {
    static func same(_ a: (function: PCIFunction, bar: Int, offset: UInt64)?, _ b: (function: PCIFunction, bar: Int, offset: UInt64)?) -> Bool {
        switch (a, b) {
        case (nil, nil): true
        case let (x?, y?): x.function === y.function && x.bar == y.bar && x.offset == y.offset
        default: false
        }
    }

    /// Functions with a 4 KiB 32-bit BAR 0 and a 16 KiB 64-bit BAR 2.
    static func rootComplex(functions n: Int) throws -> (RootComplex, [PCIFunction]) {
        let rc = RootComplex()
        var functions: [PCIFunction] = []
        for i in 0..<n {
            let f = try PCIFunction(requesterID: RequesterID(bus: UInt8(i / 256), device: UInt8((i / 8) % 32), function: UInt8(i % 8)),
                                    vendorID: 0x1AF4, deviceID: 0x1041,
                                    bars: [BaseAddressRegister(index: 0, kind: .memory32, size: 0x1000),
                                           BaseAddressRegister(index: 2, kind: .memory64, size: 0x4000)])
            try rc.attach(f)
            functions.append(f)
        }
        return (rc, functions)
    }

    static func program(_ f: PCIFunction, bar0: UInt64, bar2: UInt64, enable: Bool = true) {
        f.configWrite(offset: ConfigRegister.bar0, size: 4, value: UInt32(truncatingIfNeeded: bar0))
        f.configWrite(offset: ConfigRegister.bar0 + 8, size: 4, value: UInt32(truncatingIfNeeded: bar2))
        f.configWrite(offset: ConfigRegister.bar0 + 12, size: 4, value: UInt32(truncatingIfNeeded: bar2 >> 32))
        f.configWrite(offset: ConfigRegister.command, size: 2, value: enable ? UInt32(ConfigRegister.commandMemorySpace) : 0)
    }

    /// Every window's edges (one below, first, last, one past) and a few addresses between.
    static func probes(_ functions: [PCIFunction]) -> [UInt64] {
        var out: [UInt64] = [0, .max]
        for f in functions {
            for (index, bar) in f.config.bars.enumerated() {
                guard let bar, let base = f.config.barAddress(index) else { continue }
                out += [base &- 1, base, base &+ bar.size / 2, base &+ bar.size &- 1, base &+ bar.size]
            }
        }
        return out
    }

    @Test("256 functions, adjacent windows, then overlaps, sizing, disables and resets: the index agrees with the scan at every edge")
    func agreesWithTheScan() throws {
        let (rc, functions) = try Self.rootComplex(functions: 256)
        // Adjacent: function i's BAR 0 right after function i−1's; BAR 2 in a 64-bit region.
        for (i, f) in functions.enumerated() {
            Self.program(f, bar0: 0x1000_0000 + UInt64(i) * 0x1000, bar2: 0x80_0000_0000 + UInt64(i) * 0x4000)
        }
        for address in Self.probes(functions) { #expect(Self.same(rc.decode(address), rc.decodeByScan(address)), "address \(Hex.format(address))") }
        // Adjacent windows: the last byte of one and the first of the next decode to different functions.
        #expect(rc.decode(0x1000_0FFF)?.function === functions[0] && rc.decode(0x1000_1000)?.function === functions[1])
        #expect(rc.decode(0x1000_1000)?.offset == 0)

        var random = SeededGenerator(seed: 0xBA5E)
        for step in 0..<120 {
            let f = functions[Int(random.next() % UInt64(functions.count))]
            switch random.next() % 6 {
            case 0:
                // Overlap another function's BAR 0 (the earlier-attached one wins, as in the scan).
                let other = Int(random.next() % UInt64(functions.count))
                Self.program(f, bar0: 0x1000_0000 + UInt64(other) * 0x1000 + (random.next() % 2) * 0x800, bar2: 0x80_0000_0000)
            case 1:
                // Sizing: all-ones into BAR 0 (reads back ~(size − 1)) while decoding stays on.
                f.configWrite(offset: ConfigRegister.bar0, size: 4, value: 0xFFFF_FFFF)
            case 2:
                f.configWrite(offset: ConfigRegister.command, size: 2, value: 0)
            case 3:
                f.functionLevelReset()
            case 4:
                // A byte write into the middle of BAR 2's upper half.
                f.configWrite(offset: ConfigRegister.bar0 + 13, size: 1, value: UInt32(truncatingIfNeeded: random.next() % 4))
            default:
                Self.program(f, bar0: 0x1000_0000 + random.next() % 0x80_0000 & ~0xFFF, bar2: 0xFFFF_FFFF_FFFF_C000)
            }
            for address in Self.probes(functions) where random.next() % 64 == 0 || address >= 0xFFFF_FFFF_FFFF_0000 {
                #expect(Self.same(rc.decode(address), rc.decodeByScan(address)), "step \(step), address \(Hex.format(address))")
            }
        }
        for address in Self.probes(functions) { #expect(Self.same(rc.decode(address), rc.decodeByScan(address)), "address \(Hex.format(address))") }
    }

    @Test("overlapping windows: the function attached first wins, then its lowest BAR; disabling it uncovers the next")
    func overlapOrder() throws {
        let (rc, functions) = try Self.rootComplex(functions: 3)
        Self.program(functions[2], bar0: 0x2000_0000, bar2: 0x2000_0000)
        Self.program(functions[1], bar0: 0x2000_0800, bar2: 0x9000_0000)
        #expect(rc.decode(0x2000_0900)?.function === functions[1])
        // Function 2's BAR 0 and BAR 2 both hold 0x2000_0000: BAR 0 wins.
        #expect(rc.decode(0x2000_0000)?.bar == 0)
        #expect(rc.decode(0x2000_2000)?.bar == 2 && rc.decode(0x2000_2000)?.offset == 0x2000)
        functions[1].configWrite(offset: ConfigRegister.command, size: 2, value: 0)
        #expect(rc.decode(0x2000_0900)?.function === functions[2])
        functions[2].functionLevelReset()
        #expect(rc.decode(0x2000_0900) == nil && rc.decode(0x2000_2000) == nil)
        // A window at the top of the address space decodes to its end.
        Self.program(functions[0], bar0: 0x3000_0000, bar2: 0xFFFF_FFFF_FFFF_C000)
        #expect(rc.decode(.max)?.offset == 0x3FFF && rc.decode(.max)?.function === functions[0])
    }
}
