import Bus
import Testing
@testable import LinuxKernel

/// `iopt_reserve_iova` keeps the reserved ranges sorted with a running maximum of their ends;
/// every question asked of them — does a range intersect one, which was reserved first, what
/// does an allocation skip — must get the answer the insertion-ordered list gave.
@Suite("reserved IOVA index") struct ReservedIOVAIndexTests {
    final class Owner {}

    struct Reference {
        var ranges: [(start: UInt64, last: UInt64, owner: Int)] = []
        func first(intersecting start: UInt64, _ last: UInt64) -> (start: UInt64, last: UInt64, owner: Int)? {
            ranges.first { $0.start <= last && start <= $0.last }
        }
    }

    @Test("3,000 reservations by 40 owners — adjacent, nested, overlapping, at 0 and at the top — then owners removed: every query matches the list")
    func agreesWithTheList() throws {
        let harness = try HostHarness.make(boot: false)
        let process = UserProcess(kernel: harness.kernel)
        let iopt = IOPageTable(process: process)
        let owners = (0..<40).map { _ in Owner() }
        var reference = Reference()
        var random = SeededGenerator(seed: 0x10_0A5)
        func page(_ n: UInt64) -> UInt64 { 0x1_0000_0000 + n * 0x1000 }
        func check(_ label: String) {
            for _ in 0..<60 {
                let start = random.next() % 4 == 0 ? random.next() : page(random.next() % 5000) &+ (random.next() % 3 == 0 ? 0xFFF : 0)
                let (sum, overflow) = start.addingReportingOverflow(random.next() % 0x8000)
                let last = overflow ? UInt64.max : sum
                let expected = reference.first(intersecting: start, last)
                let found = iopt.firstReserved(intersecting: start, last)
                #expect(found?.start == expected?.start && found?.last == expected?.last
                        && found.map { $0.owner === owners[expected?.owner ?? 0] } ?? (expected == nil), "\(label): [\(Hex.format(start)), \(Hex.format(last))]")
                #expect(iopt.intersectsReserved(start, last) == (expected != nil), "\(label)")
            }
            #expect(iopt.reservedRanges == reference.ranges.map { $0.start...$0.last }.sorted { $0.lowerBound < $1.lowerBound }, "\(label)")
        }
        var previousLast = page(0) - 1
        for i in 0..<3000 {
            let owner = Int(random.next() % UInt64(owners.count))
            let start: UInt64, last: UInt64
            switch random.next() % 5 {
            case 0:
                // Adjacent to the previous one.
                start = previousLast &+ 1
                last = start &+ 0xFFF
            case 1:
                // Nested inside or overlapping an existing one.
                let other = reference.ranges.isEmpty ? (start: page(0), last: page(1) - 1, owner: 0)
                    : reference.ranges[Int(random.next() % UInt64(reference.ranges.count))]
                start = other.start &+ (random.next() % 2) * 0x800
                last = max(start, other.last &- (random.next() % 2) * 0x800 &+ (random.next() % 2) * 0x2000)
            case 2 where i % 500 == 0:
                // An aperture's ends.
                (start, last) = random.next() % 2 == 0 ? (0, 0xFFF) : (0xFFFF_FFFF_FFFF_F000, .max)
            default:
                start = page(random.next() % 5000)
                last = start &+ (random.next() % 8 + 1) * 0x1000 &- 1
            }
            try iopt.reserve(start: start, last: last, owner: owners[owner], isSWMSIWindow: random.next() % 7 == 0)
            reference.ranges.append((start, last, owner))
            previousLast = last
            if i % 250 == 0 { check("after \(i + 1) reservations") }
        }
        check("all reserved")
        for (n, owner) in owners.enumerated() where n % 3 == 0 {
            iopt.removeReserved(owner: owner)
            reference.ranges.removeAll { $0.owner == n }
            check("owner \(n) removed")
        }
        // A fixed map avoids every reserved range: EINVAL naming the first reserved of those it
        // touches, or success in a gap (found by the same allocator that skips them).
        let iova = try iopt.mapUserPages(iova: nil, userVA: 0x40_0000_0000, length: 0x1000, protection: [.read])
        #expect(!iopt.intersectsReserved(iova, iova + 0xFFF))
        #expect(reference.first(intersecting: iova, iova + 0xFFF) == nil)
        if let hit = reference.ranges.first(where: { $0.start >= 0x1000 && $0.start & 0xFFF == 0 && $0.last < UInt64.max - 0x2000 }) {
            #expect(throws: Errno.EINVAL) { _ = try iopt.mapUserPages(iova: hit.start, userVA: 0x40_0000_0000, length: 0x1000, protection: [.read]) }
        }
    }

    @Test("reserving over mappings: EADDRINUSE for user memory or a doorbell outside an SW_MSI window, a doorbell inside one is tolerated")
    func reserveOverAreas() throws {
        let harness = try HostHarness.make(boot: false)
        let process = UserProcess(kernel: harness.kernel)
        let iopt = IOPageTable(process: process)
        let owner = Owner()
        for k in 0..<1000 as Range<UInt64> {
            _ = try iopt.mapUserPages(iova: 0x1000_0000 + k * 0x2000, userVA: 0x40_0000_0000, length: 0x1000, protection: [.read])
        }
        try iopt.mapDoorbell(iova: 0x800_0000, doorbell: 0x0809_0000, length: 0x1000)
        // The holes between areas, exactly: accepted; one byte more on either side: refused.
        try iopt.reserve(start: 0x1000_1000, last: 0x1000_1FFF, owner: owner)
        #expect(throws: Errno.EADDRINUSE) { try iopt.reserve(start: 0x1000_0FFF, last: 0x1000_1FFF, owner: owner) }
        #expect(throws: Errno.EADDRINUSE) { try iopt.reserve(start: 0x1000_1000, last: 0x1000_2000, owner: owner) }
        #expect(throws: Errno.EADDRINUSE) { try iopt.reserve(start: 0x1000_0000 + 999 * 0x2000, last: .max, owner: owner) }
        // The doorbell: inside an SW_MSI window it stays, anywhere else it refuses.
        try iopt.reserve(start: 0x800_0000, last: 0x80F_FFFF, owner: owner, isSWMSIWindow: true)
        #expect(throws: Errno.EADDRINUSE) { try iopt.reserve(start: 0x800_0000, last: 0x80F_FFFF, owner: owner) }
        #expect(throws: Errno.EADDRINUSE) { try iopt.reserve(start: 0x800_0800, last: 0x80F_FFFF, owner: owner, isSWMSIWindow: true) }
        #expect(iopt.reservedRanges == [0x800_0000...0x80F_FFFF, 0x1000_1000...0x1000_1FFF])
        iopt.removeReserved(owner: owner)
        #expect(iopt.reservedRanges.isEmpty && !iopt.intersectsReserved(0, .max))
    }
}
