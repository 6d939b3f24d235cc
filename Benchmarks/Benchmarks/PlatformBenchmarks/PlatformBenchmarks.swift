import Benchmark
import Bus
import Firmware
import Machine

/// Reading a server's ACPI description and building its machine: the three tables' bytes →
/// `ACPITableSet` (IORT, MADT, MCFG readers) → `Topology(acpi:memory:)` (the composed
/// RID → StreamID → DeviceID maps) → `Machine` (GIC with every redistributor and ITS, the
/// SMMUs, the root complexes on the bus). One iteration = one whole description.
///
/// The description is a server of the Ampere Altra / Arm Neoverse RD shape, written with the
/// IORT/MADT/MCFG writers in `setup` (so the benchmark needs no fixture file): 80 CPUs, one
/// GICv3 with a GICR discovery range and 4 ITSs, 4 SMMUv3s and 4 PCIe segments of 256 buses,
/// each segment's 64 Ki RIDs through its SMMUv3 to its own ITS group. `Server.description`
/// checks that the machine has all of that before anything is measured.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(3))

    Benchmark("Platform.acpi.server.parse") { benchmark, tables in
        for _ in benchmark.scaledIterations {
            var set = ACPITableSet()
            for table in tables { try set.add(table) }
            blackHole(set)
        }
    } setup: { try Server.tables() }

    Benchmark("Platform.acpi.server.machine") { benchmark, tables in
        for _ in benchmark.scaledIterations {
            blackHole(try Server.machine(tables))
        }
    } setup: {
        let tables = try Server.tables()
        let machine = try Server.machine(tables)
        precondition(machine.its.count == Server.segments && machine.smmus.count == Server.segments
                     && machine.rootComplexes.count == Server.segments && machine.topology.cpus.count == Server.cpus,
                     "the server description did not build the machine it describes")
        return tables
    }
}

enum Server {
    static let cpus = 80
    static let segments = 4

    /// IORT, MADT and MCFG bytes.
    static func tables() throws -> [[UInt8]] {
        var nodes: [IORTNode] = []
        // ITS groups 0…3, then SMMUv3 4…7 (each SMMU's StreamIDs → its group), then RCs 8…11.
        for s in 0..<segments {
            nodes.append(IORTNode(revision: 1, identifier: UInt32(s), kind: .itsGroup(IORTITSGroup(itsIdentifiers: [UInt32(s)]))))
        }
        for s in 0..<segments {
            let smmu = IORTSMMUv3(baseAddress: 0x4000_0000_0000 + UInt64(s) * 0x100_0000, flags: 1)
            nodes.append(IORTNode(revision: 4, identifier: UInt32(segments + s),
                                  mappings: [IORTIDMapping(inputBase: 0, count: 0x1_0000, outputBase: 0, outputNode: s)],
                                  kind: .smmuV3(smmu)))
        }
        for s in 0..<segments {
            nodes.append(IORTNode(revision: 4, identifier: UInt32(2 * segments + s),
                                  mappings: [IORTIDMapping(inputBase: 0, count: 0x1_0000, outputBase: 0, outputNode: segments + s)],
                                  kind: .rootComplex(IORTRootComplex(pciSegment: UInt32(s)))))
        }
        let iort = try IORT(nodes: nodes).bytes()
        var structures: [MADTStructure] = [MADTStructure(kind: .gicd(MADTGICD(baseAddress: 0x3000_0000, version: 3))),
                                           MADTStructure(kind: .gicr(MADTGICR(baseAddress: 0x3010_0000, length: UInt32(cpus) * 0x2_0000)))]
        for c in 0..<cpus {
            let mpidr = UInt64(c / 4) << 8 | UInt64(c % 4)
            structures.append(MADTStructure(kind: .gicc(MADTGICC(cpuInterfaceNumber: UInt32(c), uid: UInt32(c), mpidr: mpidr))))
        }
        for s in 0..<segments {
            structures.append(MADTStructure(kind: .its(MADTGICITS(translationID: UInt32(s), baseAddress: 0x3004_0000 + UInt64(s) * 0x2_0000))))
        }
        let madt = try MADT(structures: structures).bytes()
        let mcfg = try MCFG(entries: (0..<segments).map {
            MCFGEntry(baseAddress: 0x6000_0000_0000 + UInt64($0) * 0x1000_0000, segment: UInt16($0), startBus: 0, endBus: 0xFF)
        }).bytes()
        return [iort, madt, mcfg]
    }

    static func machine(_ tables: [[UInt8]]) throws -> Machine {
        var set = ACPITableSet()
        for table in tables { try set.add(table) }
        return try Machine(topology: try Topology(acpi: set, memory: set.defaultMemory()), name: "server")
    }
}
