import Testing
import Bus
import Firmware
import GIC
import PCI
@testable import Machine
@testable import Testbed

/// The RK3399 host bridge (`rockchip,rk3399-pcie`) on the two RK3399 board trees: no ECAM
/// window; the root port's configuration space in apb-base at PCIE_RC_CONFIG_NORMAL_BASE, the
/// buses below it through axi-base's region 0, and Linux's `rockchip_pcie_valid_device` rule.
@Suite("RK3399 host bridge")
struct RockchipPCIeTests {
    static let boards = ["rockchip_rk3399-rockpro64", "rockchip_rk3399-gru-kevin"]
    static let path = "/pcie@f8000000"

    func machine(_ board: String) throws -> Machine {
        try Machine(topology: try Topology(dtb: try Fixture.bytes("boards/\(board).dtb")).withDefaultMemory(), name: board)
    }

    @Test("the description reads as the RK3399 kind with axi-base and apb-base, and no ECAM window", arguments: boards)
    func kind(board: String) throws {
        let topology = try Topology(dtb: try Fixture.bytes("boards/\(board).dtb"))
        let bridge = try #require(topology.pcieHostBridges.first { $0.path == Self.path })
        #expect(bridge.configSpace == nil)
        #expect(bridge.hasConfigurationAccess)
        #expect(bridge.kind == .rockchipRK3399(RockchipRK3399PCIe(
            axi: MemoryRange(base: PhysicalAddress(0xF800_0000), size: 0x200_0000),
            apb: MemoryRange(base: PhysicalAddress(0xFD00_0000), size: 0x100_0000))))
    }

    @Test("the root port's configuration space is apb-base + 0x80_0000: Rockchip's Vendor ID, a type-1 header", arguments: boards)
    func rootPortInAPB(board: String) throws {
        let machine = try machine(board)
        let bm = try BareMetal(machine: machine)
        // A plain CPU read of the bus at 0xfd80_0000, not through any helper.
        #expect(try bm.read(PhysicalAddress(0xFD80_0000), 4) == 0x0100_1D87)
        #expect(try bm.read(PhysicalAddress(0xFD80_000E), 1) & 0x7F == 1)
        // Linux's accessor reaches the same register for 00:00.0.
        #expect(try bm.configRead(RequesterID(bus: 0, device: 0, function: 0), offset: 0, size: 2) == 0x1D87)
        // Secondary bus 1 below the root port; nothing answers at devfn 0 of bus 0 in axi-base
        // (the root bus is not behind region 0).
        #expect(try bm.read(PhysicalAddress(0xFD80_0019), 1) == 1)
    }

    @Test("a sub-dword write to the root port is a read-modify-write of its word (rockchip_pcie_wr_own_conf)")
    func ownConfigurationWrite() throws {
        let machine = try machine("rockchip_rk3399-rockpro64")
        let bm = try BareMetal(machine: machine)
        let port = RequesterID(bus: 0, device: 0, function: 0)
        // Subordinate bus (0x1A) written alone keeps primary/secondary (0x18, 0x19) intact.
        try bm.configWrite(port, offset: 0x1A, size: 1, value: 0x05)
        #expect(try bm.configRead(port, offset: 0x18, size: 4) & 0xFF_FFFF == 0x05_0100)
    }

    @Test("bus 1 device 1 reads all-ones without touching axi-base; device 0 answers through region 0 with Type 0")
    func validDevice() throws {
        let machine = try machine("rockchip_rk3399-rockpro64")
        let bm = try BareMetal(machine: machine)
        let rid = RequesterID(bus: 1, device: 0, function: 0)
        let function = try bm.addMSIXEndpoint(requesterID: rid, vectors: 2, barAddress: 0xFA00_0000)
        // A second function at 01:01.0 does exist in the hardware model, but Linux's rule
        // (only device 0 on the bus below the root port) answers for it.
        let hidden = try PCIFunction(name: "hidden", requesterID: RequesterID(bus: 1, device: 1, function: 0), vendorID: 0x1AF4, deviceID: 0x1041)
        try machine.rootComplexes[0].attach(hidden, behind: machine.rockchipControllers[0]?.rootPort)
        #expect(try bm.configRead(RequesterID(bus: 1, device: 1, function: 0), offset: 0, size: 4) == 0xFFFF_FFFF)
        #expect(try bm.configRead(RequesterID(bus: 1, device: 1, function: 0), offset: 0, size: 2) == 0xFFFF)
        // 01:00.0 is reached at axi-base + (1 << 20), region 0 programmed for Type 0.
        #expect(try bm.configRead(rid, offset: 0, size: 4) == 0x1041_1AF4)
        let controller = try #require(machine.rockchipControllers[0])
        #expect(controller.region0Descriptor & 0xF == RockchipPCIeController.type0Configuration)
        #expect(try bm.read(PhysicalAddress(0xF810_0000), 2) == 0x1AF4)
        // With region 0 set for Type 1, bus 1 (the link itself) does not claim it: all-ones.
        try bm.write(PhysicalAddress(0xFD00_0000 + RockchipPCIeController.outboundRegion0Desc0), 4, 1 << 23 | 0xB)
        #expect(try bm.read(PhysicalAddress(0xF810_0000), 4) == 0xFFFF_FFFF)
        #expect(function.config.barAddress(0) == 0xFA00_0000)
    }

    @Test("BARs are reached through outbound regions 1…30 at axi-base + 32 MiB, as ranges says", arguments: boards)
    func memoryWindow(board: String) throws {
        let machine = try machine(board)
        #expect(machine.memoryWindows[0] == MemoryWindow(cpuAddress: 0xFA00_0000, pciAddress: 0xFA00_0000, size: 0x1E0_0000, chosen: false))
    }

    @Test("bare metal: RID 01:00.0 → msi-map → DeviceID 0x100 at the ITS, LPI 8193 taken", arguments: boards)
    func delivers(board: String) throws {
        let machine = try machine(board)
        guard case .supported(let rc, let rid) = machine.support() else {
            Issue.record("\(board): \(machine.support())")
            return
        }
        #expect(rid == RequesterID(bus: 1, device: 0, function: 0))
        let bm = try BareMetal(machine: machine)
        try bm.enableLPIs()
        try bm.enableITS()
        let function = try bm.addMSIXEndpoint(requesterID: rid, vectors: 2, barAddress: 0xFA00_0000, rootComplex: rc)
        let route = machine.rootComplexes[rc].route(for: function)
        #expect(route.deviceID == DeviceID(0x100))
        #expect(route.streamID == nil)
        try bm.mapDevice(route.deviceID, events: 2, firstINTID: 8192)
        try bm.writeMSIXEntry(function, vector: 1, address: machine.its[0].translaterAddress.rawValue, data: 1)
        #expect(function.raise(vector: 1).result?.status == .completed)
        #expect(machine.gic?.acknowledge(cpu: 0) == 8193)
    }

    func edited(_ cells: [UInt32], busRange: [UInt32]? = nil) throws -> Topology {
        var tree = try DeviceTree(dtb: try Fixture.bytes("boards/rockchip_rk3399-rockpro64.dtb"))
        tree = try #require(tree.setting(DeviceTreeProperty(name: "reg", cells: cells), at: Self.path))
        if let busRange { tree = try #require(tree.setting(DeviceTreeProperty(name: "bus-range", cells: busRange), at: Self.path)) }
        return try Topology(deviceTree: tree)
    }

    @Test("a truncated axi-base is an error naming the node and what bus-range needs")
    func truncated() throws {
        #expect {
            _ = try edited([0, 0xF800_0000, 0, 0x100_0000, 0, 0xFD00_0000, 0, 0x100_0000])
        } throws: { error in
            "\(error)" == "/pcie@f8000000: reg: axi-base 0xf800_0000 size 0x100_0000 is truncated: bus 31 needs 0x200_0000 bytes (bus << 20 | devfn << 12 | where)"
        }
    }

    @Test("an axi-base overlapping apb-base is an error naming the node")
    func overlapping() throws {
        #expect {
            _ = try edited([0, 0xF800_0000, 0, 0x200_0000, 0, 0xF900_0000, 0, 0x100_0000])
        } throws: { error in
            "\(error)" == "/pcie@f8000000: reg: axi-base 0xf800_0000 size 0x200_0000 overlaps apb-base 0xf900_0000 size 0x100_0000"
        }
    }

    @Test("a bus-range past the 32 buses region 0 reaches is an error naming the node")
    func busRangeTooLong() throws {
        #expect {
            _ = try edited([0, 0xF800_0000, 0, 0x200_0000, 0, 0xFD00_0000, 0, 0x100_0000], busRange: [0, 0x3F])
        } throws: { error in
            "\(error)".hasPrefix("/pcie@f8000000: reg: bus-range ends at bus 63, beyond the 32 buses")
        }
    }

    @Test("outbound windows: no I/O window, too many regions and a CPU address region 1 does not decode are named")
    func outboundProblems() throws {
        let description = RockchipRK3399PCIe(axi: MemoryRange(base: PhysicalAddress(0xF800_0000), size: 0x200_0000),
                                             apb: MemoryRange(base: PhysicalAddress(0xFD00_0000), size: 0x100_0000))
        func memory(_ cpu: UInt64, _ size: UInt64) -> PCIRange {
            PCIRange(space: .memory32, prefetchable: false, nonRelocatable: false, aliased: false, pciAddress: cpu, cpuAddress: PhysicalAddress(cpu), size: size)
        }
        let io = PCIRange(space: .io, prefetchable: false, nonRelocatable: false, aliased: false, pciAddress: 0xFBE0_0000,
                          cpuAddress: PhysicalAddress(0xFBE0_0000), size: 0x10_0000)
        #expect(Machine.rockchipOutboundWindow(description, ranges: [memory(0xFA00_0000, 0x1E0_0000)]) == .failure(.noIOWindow))
        #expect(Machine.rockchipOutboundWindow(description, ranges: [io]) == .failure(.noMemoryWindow))
        #expect(Machine.rockchipOutboundWindow(description, ranges: [memory(0xFA00_0000, 0x200_0000), io])
                == .failure(.tooManyRegions(memory: 32, io: 1)))
        #expect(Machine.rockchipOutboundWindow(description, ranges: [memory(0xFB00_0000, 0x10_0000), io])
                == .failure(.cpuAddressMismatch(described: 0xFB00_0000, decoded: 0xFA00_0000)))
        // A window that is not whole MiB keeps only the regions that map it.
        #expect(Machine.rockchipOutboundWindow(description, ranges: [memory(0xFA00_0000, 0x18_0000), io])
                == .success(MemoryWindow(cpuAddress: 0xFA00_0000, pciAddress: 0xFA00_0000, size: 0x10_0000, chosen: false)))
    }

    @Test("a forked machine keeps the controller: the copy's root port answers in the copy's apb-base")
    func fork() throws {
        let machine = try machine("rockchip_rk3399-rockpro64")
        var map = CloneMap()
        let copy: Machine = map.clone(machine)
        map.finish()
        let original = try #require(machine.rockchipControllers[0])
        let twin = try #require(copy.rockchipControllers[0])
        #expect(original !== twin)
        #expect(twin.rootPort === copy.rootComplexes[0].bridges.first)
        let bm = try BareMetal(machine: copy)
        try bm.configWrite(RequesterID(bus: 0, device: 0, function: 0), offset: 0x1A, size: 1, value: 0x07)
        #expect(twin.rootPort.configRead(offset: 0x1A, size: 1) == 7)
        #expect(original.rootPort.configRead(offset: 0x1A, size: 1) == 0x1F)
    }
}
