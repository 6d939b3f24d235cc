import Bus
import Testing
@testable import LinuxKernel

/// The structures that keep per-operation costs logarithmic — the process's descriptor table,
/// the io_pagetable's sorted areas, the VMM-side KVM route table — keep their Linux semantics
/// at scale (counts and answers, never timings).
@Suite("scale structures")
struct ScaleStructureTests {
    /// A fixed permutation of 0..<n (n prime to the step): deterministic, far from sorted.
    static func permuted(_ n: Int, step: Int = 7919) -> [Int] { (0..<n).map { ($0 &* step) % n } }

    @Test("alloc_fd: after closes the lowest closed descriptor comes back first, then the next above all open")
    func lowestFreeDescriptor() throws {
        let harness = try HostHarness.make(boot: false)
        let process = UserProcess(kernel: harness.kernel)
        let fds = (0..<1000).map { _ in process.eventfd().fd }
        #expect(fds == (0..<1000).map { Int32(3 + $0) })
        // Close every third, in descending order, then 500: the lowest free is 3 + 0.
        for i in stride(from: 999, through: 0, by: -3) { try process.close(fds[i]) }
        try process.close(fds[500])
        var reopened: [Int32] = []
        for _ in 0..<5 { reopened.append(process.eventfd().fd) }
        // Closed: indices 0, 3, …, 999 (hence 3, 6, … as fds 3 + i) and 500 (fd 503).
        let closed = (Array(stride(from: 0, through: 999, by: 3)) + [500]).sorted().map { Int32(3 + $0) }
        #expect(reopened == Array(closed.prefix(5)))
        // Reopen all the rest: exactly the closed set, then 1003, 1004 above every open one.
        var rest: [Int32] = []
        for _ in 0..<(closed.count - 5 + 2) { rest.append(process.openOtherFile("f")) }
        #expect(reopened + rest == closed + [1003, 1004])
        // A double close is EBADF and does not put the descriptor back twice.
        try process.close(1004)
        #expect(throws: Errno.EBADF) { try process.close(1004) }
        #expect(process.eventfd().fd == 1004)
        #expect(process.eventfd().fd == 1005)
    }

    @Test("100 k single-page areas inserted in permuted order: sorted, each found, overlaps refused, range unmaps counted")
    func ioPageTableAtScale() throws {
        let harness = try HostHarness.make(boot: false)
        let process = UserProcess(kernel: harness.kernel)
        let iopt = IOPageTable(process: process)
        let n = 100_000
        let base: UInt64 = 0x1_0000_0000
        // Every other page: page 2k at base + 2k × 4 KiB.
        var mapped = 0
        for k in Self.permuted(n) {
            let iova = base + UInt64(2 * k) * 0x1000
            if try iopt.mapUserPages(iova: iova, userVA: 0x40_0000_0000 + UInt64(k) * 0x1000, length: 0x1000, protection: [.read, .write]) == iova {
                mapped += 1
            }
        }
        #expect(mapped == n)
        #expect(iopt.areas.count == n)
        #expect(zip(iopt.areas, iopt.areas.dropFirst()).allSatisfy { $0.last < $1.start })
        for k in Self.permuted(n, step: 104_729).prefix(2000) {
            let iova = base + UInt64(2 * k) * 0x1000
            #expect(iopt.firstArea(intersecting: iova + 0x800, iova + 0x800) == k)
            // The hole after it intersects nothing; a two-page range starting in it finds the next.
            #expect(iopt.firstArea(intersecting: iova + 0x1000, iova + 0x1FFF) == nil)
            #expect(throws: Errno.EEXIST) {
                _ = try iopt.mapUserPages(iova: iova - 0x1000, userVA: 0x40_0000_0000, length: 0x2000, protection: [.read])
            }
        }
        #expect(iopt.areas.count == n)
        // Unmap [page 1000, page 3000): areas 500…1499, 1000 of them.
        #expect(try iopt.unmap(iova: base + 1000 * 0x1000, length: 2000 * 0x1000) == 1000 * 0x1000)
        #expect(iopt.areas.count == n - 1000)
        #expect(iopt.firstArea(intersecting: base + 1000 * 0x1000, base + 2999 * 0x1000) == nil)
        // A range cutting area 2000 (page 4000) in half: the areas before it in the walk go,
        // then ENOENT (iopt_unmap_iova_range), area 2000 and later stay.
        #expect(throws: Errno.ENOENT) { _ = try iopt.unmap(iova: base + 3000 * 0x1000, length: 1000 * 0x1000 + 0x800) }
        #expect(iopt.areas.count == n - 1000 - 500)
        #expect(iopt.areas.first { $0.start >= base + 3000 * 0x1000 }?.start == base + 4000 * 0x1000)
        #expect(try iopt.unmapAll() == UInt64(n - 1500) * 0x1000)
        #expect(iopt.areas.isEmpty)
    }

    @Test("allocated IOVAs still take the lowest hole with 10 k areas present")
    func allocationAmongManyAreas() throws {
        let harness = try HostHarness.make(boot: false)
        let process = UserProcess(kernel: harness.kernel)
        let iopt = IOPageTable(process: process)
        let user: UInt64 = 0x40_0000_0000
        for k in Self.permuted(10_000, step: 7) where k != 4321 {
            _ = try iopt.mapUserPages(iova: 0x1000 + UInt64(k) * 0x1000, userVA: user, length: 0x1000, protection: [.read])
        }
        #expect(try iopt.mapUserPages(iova: nil, userVA: user, length: 0x1000, protection: [.read]) == 0x1000 + 4321 * 0x1000)
        #expect(try iopt.mapUserPages(iova: nil, userVA: user, length: 0x1000, protection: [.read]) == 0x1000 + 10_000 * 0x1000)
    }

    @Test("a KVMRouteTable commit gives the table and errno a whole-table KVM_SET_GSI_ROUTING gives")
    func routeTableMatchesWholeTable() throws {
        let incremental = try KVMFixture.make()
        let whole = try KVMFixture.make()
        var table = KVMRouteTable()
        var reference: [UInt32: KVMMSIRoute] = [:]
        func route(_ gsi: UInt32, _ data: UInt32) -> KVMMSIRoute {
            KVMMSIRoute(gsi: gsi, addressLo: KVMFixture.translater, data: data, devid: 0x10)
        }
        // Set, change and remove routes in a fixed order; GSI 4096 (out of range) makes
        // commits fail until it is removed, as the whole table would.
        var step = 0
        for k in Self.permuted(3000, step: 1237) {
            step += 1
            let gsi = UInt32(k + 256)
            let change: KVMMSIRoute? = step % 7 == 0 ? nil : route(gsi, UInt32(step))
            table.set(gsi, change)
            reference[gsi] = change
            if step == 1000 {
                table.set(4096, route(4096, 0))
                reference[4096] = route(4096, 0)
            }
            if step == 1500 {
                table.set(4096, nil)
                reference[4096] = nil
            }
            if step % 50 == 0 {
                let a = Result { () throws(Errno) in try incremental.vm.setGSIRouting(&table) }
                let b = Result { () throws(Errno) in try whole.vm.setGSIRouting(reference.values.sorted { $0.gsi < $1.gsi }) }
                #expect(a.failure == b.failure, "step \(step)")
                #expect(incremental.vm.gsiRoutes == whole.vm.gsiRoutes, "step \(step)")
            }
        }
        #expect(incremental.vm.gsiRoutes.count == reference.count)
        // Another caller replacing the table: the next commit sends everything again.
        try incremental.vm.setGSIRouting([route(300, 1)])
        table.set(301, route(301, 2))
        reference[301] = route(301, 2)
        try incremental.vm.setGSIRouting(&table)
        try whole.vm.setGSIRouting(reference.values.sorted { $0.gsi < $1.gsi })
        #expect(incremental.vm.gsiRoutes == whole.vm.gsiRoutes)
    }
}

private extension Result {
    var failure: Failure? { if case .failure(let e) = self { e } else { nil } }
}
