import Bus
import Testing
@testable import GIC

/// The redistributor answers ICC_IAR1_EL1 from a priority index over its pending bitmap
/// (`PendingLPIIndex`) instead of walking every pending LPI; the answer must stay the
/// architectural one (lowest priority value, then the lowest INTID, only enabled LPIs, below
/// the threshold) whatever software does to pending bits and configuration bytes in between.
@Suite("pending LPI priority index") struct PendingLPIIndexTests {
    static func answer(_ a: (intid: INTID, priority: UInt8)?) -> String {
        a.map { "LPI \($0.intid.rawValue) priority \($0.priority)" } ?? "none"
    }

    @Test("seeded set/clear/INV/INVALL/acknowledge sequences: the index always picks what a scan of every pending LPI picks")
    func agreesWithTheScan() throws {
        let f = try Fixture()
        let rd0 = f.gic.redistributors[0], rd1 = f.gic.redistributors[1]
        let count = rd0.lpiCount
        try #require(count > 4096)
        var random = SeededGenerator(seed: 0x1D_0069)
        // Clustered INTIDs (several per bitmap word, neighbouring words) and spread ones.
        func pick() -> Int {
            random.next() % 2 == 0 ? Int(random.next() % 200) : Int(random.next() % UInt64(count))
        }
        var checks = 0
        for step in 0..<6000 {
            let intid = INTID(UInt32(8192 + pick()))
            switch random.next() % 10 {
            case 0...3:
                rd0.setPending(intid)
            case 4, 5:
                rd0.clearPending(intid)
            case 6, 7:
                // Software rewrites the byte; it counts only after INV, sent through either
                // redistributor (the cache is GIC-wide).
                f.configure(intid.rawValue, priority: UInt8(truncatingIfNeeded: random.next() % 8) &* 0x20,
                            enabled: random.next() % 4 != 0)
                if random.next() % 3 != 0 { (random.next() % 2 == 0 ? rd0 : rd1).invalidate(intid) }
            case 8:
                if random.next() % 8 == 0 { rd1.invalidateAll() }
            default:
                // Acknowledge: take the winner's pending bit.
                if let best = rd0.highestPriorityPending(below: 0xFF) { rd0.clearPending(best.intid) }
            }
            for threshold in [UInt16(0xFF), UInt16(0x100), UInt16(random.next() % 0x100)] {
                let indexed = rd0.highestPriorityPending(below: threshold)
                let scanned = rd0.highestPriorityPendingByScan(below: threshold)
                #expect(Self.answer(indexed) == Self.answer(scanned), "step \(step), threshold \(threshold)")
                checks += 1
            }
        }
        #expect(checks == 18_000)
        #expect(rd0.pendingCount > 0)
    }

    @Test("ties: of equal priorities the lowest INTID wins, across words and at the ends of the LPI range")
    func tiesAndEdges() throws {
        let f = try Fixture()
        let rd = f.gic.redistributors[0]
        let lastLPI = UInt32(8192 + rd.lpiCount - 1)
        for intid in [8192, 8255, 8256, lastLPI - 64, lastLPI] as [UInt32] { f.configure(intid, priority: 0x40) }
        f.configure(8300, priority: 0x20, enabled: false)
        rd.invalidateAll()
        for intid in [lastLPI, lastLPI - 64, 8256, 8300, 8255] as [UInt32] { rd.setPending(INTID(intid)) }
        var order: [UInt32] = []
        while let best = rd.highestPriorityPending(below: 0xFF) {
            order.append(best.intid.rawValue)
            rd.clearPending(best.intid)
        }
        // 8300 is disabled (never taken, stays pending); the rest in INTID order.
        #expect(order == [8255, 8256, lastLPI - 64, lastLPI])
        #expect(rd.pendingLPIs == [INTID(8300)])
        // Enabling it by INV makes it the best.
        f.configure(8300, priority: 0x20)
        rd.invalidate(INTID(8300))
        #expect(Self.answer(rd.highestPriorityPending(below: 0xFF)) == "LPI 8300 priority 32")
        // A threshold at or below its priority hides it.
        #expect(Self.answer(rd.highestPriorityPending(below: 0x20)) == "none")
        // Beyond the LPI range nothing becomes pending.
        #expect(!rd.setPending(INTID(lastLPI + 1)))
    }
}
