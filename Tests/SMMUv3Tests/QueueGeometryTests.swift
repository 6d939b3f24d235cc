import Testing
import Bus
@testable import SMMUv3

@Suite("SMMUv3 queue index arithmetic (§3.5)")
struct QueueGeometryTests {
    @Test("advancing past the last entry wraps the index to 0 and toggles the wrap bit at bit QS")
    func wrap() {
        let q = QueueGeometry(log2Size: 3)          // 8 entries: index bits [2:0], wrap bit 3
        #expect(q.advanced(0b0_110) == 0b0_111)
        #expect(q.advanced(0b0_111) == 0b1_000)
        #expect(q.advanced(0b1_111) == 0b0_000)
        #expect(q.index(0b1_101) == 5)
        #expect(q.wrap(0b1_101))
        #expect(!q.wrap(0b0_101))
    }

    @Test("empty when index and wrap match, full when the index matches and wrap differs")
    func emptyAndFull() {
        let q = QueueGeometry(log2Size: 2)
        #expect(q.isEmpty(producer: 0b011, consumer: 0b011))
        #expect(!q.isFull(producer: 0b011, consumer: 0b011))
        #expect(q.isFull(producer: 0b111, consumer: 0b011))
        #expect(!q.isEmpty(producer: 0b111, consumer: 0b011))
        #expect(q.occupancy(producer: 0b111, consumer: 0b011) == 4)
        #expect(q.occupancy(producer: 0b001, consumer: 0b110) == 3)   // wrapped producer
    }

    @Test("bits above the wrap flag are ignored (§6.3.27 'stored but has no other effect')")
    func highBitsIgnored() {
        let q = QueueGeometry(log2Size: 2)
        #expect(q.isEmpty(producer: 0xFFF0_0002, consumer: 0x2))
        #expect(q.advanced(0xFFF0_0007) == 0)
    }

    @Test("a one-entry queue (QS=0) is just a wrap bit: an increment toggles it")
    func oneEntry() {
        let q = QueueGeometry(log2Size: 0)
        #expect(q.entryCount == 1)
        #expect(q.advanced(0) == 1)
        #expect(q.advanced(1) == 0)
        #expect(q.isFull(producer: 1, consumer: 0))
    }

    @Test("sizes are clamped to the 20-bit WR/RD field: no shift can trap", arguments: [-5, 0, 19, 20, 63, 1000])
    func clamped(log2Size: Int) {
        let q = QueueGeometry(log2Size: log2Size)
        #expect((0...19).contains(q.log2Size))
        _ = q.advanced(.max)
        _ = q.occupancy(producer: .max, consumer: 0)
    }
}
