import Testing
@testable import Bus
import GIC
import PCI
import SMMUv3
@testable import Machine
@testable import Testbed

/// Copying a whole machine (`WorldCloneable`): bus, RAM, GIC and ITS, SMMU, root complex with
/// its functions and ports. The copy must answer an MSI exactly as the original and as a machine
/// rebuilt the same way do (same journal, entry for entry), and the two must not see each
/// other's MSIs, table writes or pending interrupts.
@Suite("Machine fork")
struct MachineForkTests {
    static let rid = EndToEndMSITests.rid

    /// The end-to-end rig with vector 1's MSI-X entry pointing at IOVA 0xFFFF_F040, which stage 1
    /// maps to the ITS page.
    static func rig() throws -> EndToEndMSITests.Rig {
        let rig = try EndToEndMSITests.rig()
        let tables = try rig.bareMetal.enableStage1(streamID: StreamID(0x8))
        try tables.map(input: 0xFFFF_F000, output: 0x0809_0000, size: 0x1000)
        try rig.bareMetal.writeMSIXEntry(rig.function, vector: 1, address: 0xFFFF_F040, data: 1)
        return rig
    }

    static func journaledRaise(_ machine: Machine, _ function: PCIFunction, vector: Int) -> [JournalEntry] {
        let journal = Journal()
        machine.journal = journal
        _ = function.raise(vector: vector)
        machine.journal = nil
        return journal.entries
    }

    @Test("a forked machine's MSI has the rebuilt machine's journal, and the original is untouched")
    func forkEqualsRebuilt() throws {
        let original = try Self.rig()
        var map = CloneMap()
        let fork = map.clone(original.machine)
        map.finish()
        let function = try #require(map.copy(of: original.function))
        #expect(function !== original.function && function.msixTable == original.function.msixTable)
        #expect(fork.rootComplexes[0].functions.contains { $0 === function })
        #expect(fork.translatedPorts[0]?.smmu === fork.smmus[0] && fork.smmus[0].bus === fork.bus)
        #expect(fork.its[0] === fork.gic?.itss[0])
        #expect(fork.rootComplexes[0].intxSink != nil || original.machine.rootComplexes[0].intxSink == nil)

        let forked = Self.journaledRaise(fork, function, vector: 1)
        let rebuilt = try Self.rig()
        let oracle = Self.journaledRaise(rebuilt.machine, rebuilt.function, vector: 1)
        #expect(!forked.isEmpty && forked == oracle)
        #expect(fork.gic?.acknowledge(cpu: 0) == 8193)
        // Nothing reached the original: no LPI pending, no SMMU lookup counted.
        #expect(original.machine.gic?.acknowledge(cpu: 0) == 1023)
        #expect(original.machine.smmus[0].translator.counters.tlbMisses == 0)
        // The original then does the same and gets the same journal.
        #expect(Self.journaledRaise(original.machine, original.function, vector: 1) == oracle)
        #expect(original.machine.gic?.acknowledge(cpu: 0) == 8193)
    }

    @Test("forking a machine copies no RAM frame: every frame is shared until one side writes it")
    func ramIsShared() throws {
        let original = try Self.rig()
        var map = CloneMap()
        let fork = map.clone(original.machine)
        map.finish()
        let ram = original.machine.bus.ram, copied = fork.bus.ram
        let frames = ram.allocatedFrameNumbers
        #expect(!frames.isEmpty && copied.allocatedFrameNumbers == frames)
        #expect(frames.allSatisfy { ram.sharesFrame($0, with: copied) })
        #expect(copied.contentDigest() == ram.contentDigest())
        // One MSI in the fork sets an LPI's pending bit in the pending table (and fills the
        // SMMU's TLB, not RAM): only the frames it wrote are the fork's own; the original has
        // none of them.
        _ = try #require(map.copy(of: original.function)).raise(vector: 1)
        let written = copied.allocatedFrameNumbers.filter { !ram.sharesFrame($0, with: copied) }
        #expect(!written.isEmpty && written.count <= 2)
        #expect(frames.filter { !ram.sharesFrame($0, with: copied) }.count <= written.count)
        #expect(ram.allocatedFrameNumbers == frames)
        #expect(copied.contentDigest() != ram.contentDigest())
    }

    @Test("a table write in the fork (unmapping the doorbell) faults there and nowhere else")
    func tableWritesStayInTheFork() throws {
        let original = try Self.rig()
        _ = original.function.raise(vector: 1)          // warm the TLB, then clear the LPI
        #expect(original.machine.gic?.acknowledge(cpu: 0) == 8193)
        var map = CloneMap()
        let fork = map.clone(original.machine)
        map.finish()
        let function = try #require(map.copy(of: original.function))
        // Point the fork's MSI-X entry somewhere stage 1 does not map.
        try BareMetal(machine: fork).writeMSIXEntry(function, vector: 1, address: 0xEEEE_0040, data: 1)
        #expect(function.raise(vector: 1).result?.status == .aborted)
        #expect(fork.gic?.acknowledge(cpu: 0) == 1023)
        #expect(original.function.raise(vector: 1).result?.status == .completed)
        // 8193 is still active from the first acknowledge, so its new pending bit is the answer.
        #expect(original.machine.gic?.redistributors[0].isPending(INTID(8193)) == true)
        #expect(fork.gic?.redistributors[0].isPending(INTID(8193)) == false)
    }
}
