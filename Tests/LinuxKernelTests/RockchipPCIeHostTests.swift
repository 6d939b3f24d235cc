import Bus
import Firmware
import Machine
import PCI
import Testbed
@testable import LinuxKernel

import Testing

/// The host kernel's enumeration on the RK3399 (`rockchip_pcie_ops`): the root port from its
/// own space in apb-base, the endpoint below it through axi-base region 0, and
/// `rockchip_pcie_valid_device` hiding every device but 0 on the bus below the root port.
@Suite("RK3399 host enumeration")
struct RockchipPCIeHostTests {
    func machine() throws -> Machine {
        let topology = try Topology(dtb: try HostScenario.fixture("boards/rockchip_rk3399-rockpro64.dtb")).withDefaultMemory()
        return try Machine(topology: topology, name: "rk3399")
    }

    @Test("the root port (1d87, type 1, at apb-base + 0x80_0000) and 01:00.0 are found; 01:01.0 is not, though it exists in the hardware")
    func enumeration() throws {
        let machine = try machine()
        let rc = machine.rootComplexes[0]
        let port = try #require(machine.rootPort(above: RequesterID(bus: 1, device: 0, function: 0), rootComplex: 0))
        for device in [0, 1] as [UInt8] {
            let function = try PCIFunction(name: "f\(device)", requesterID: RequesterID(bus: 1, device: device, function: 0),
                                           vendorID: 0x1AF4, deviceID: 0x1041,
                                           bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)])
            try rc.attach(function, behind: port)
        }
        let kernel = try HostMachine(machine).bootHost()
        let root = try #require(kernel.pci.device(RequesterID(bus: 0, device: 0, function: 0)))
        #expect(root.vendorID == 0x1D87)
        #expect(root.isBridge)
        #expect(root.configBase == PhysicalAddress(0xFD80_0000))
        let endpoint = try #require(kernel.pci.device(RequesterID(bus: 1, device: 0, function: 0)))
        #expect(endpoint.configBase == PhysicalAddress(0xF810_0000))
        #expect(endpoint.upstreamBridge === root)
        #expect(kernel.pci.device(RequesterID(bus: 1, device: 1, function: 0)) == nil)
        // The BAR went into the memory window ranges gives (outbound regions from axi-base + 32 MiB).
        #expect(endpoint.resource(bar: 0)?.address == PhysicalAddress(0xFA00_0000), "\(endpoint.resources)")
    }

    @Test("rockchip_pcie_rd_conf: device 1 below the root port reads all-ones without an access; deeper buses use Type 1 at bus << 20 | devfn << 12")
    func accessors() throws {
        let description = RockchipRK3399PCIe(axi: MemoryRange(base: PhysicalAddress(0xF800_0000), size: 0x200_0000),
                                             apb: MemoryRange(base: PhysicalAddress(0xFD00_0000), size: 0x100_0000))
        #expect(RockchipPCIeHost.target(description, bus: 1, devfn: 1 << 3, register: 0, size: 4, rootBus: 0, parentIsRoot: true) == .deviceNotFound)
        #expect(RockchipPCIeHost.target(description, bus: 0, devfn: 2 << 3, register: 0, size: 4, rootBus: 0, parentIsRoot: false) == .deviceNotFound)
        #expect(RockchipPCIeHost.target(description, bus: 0, devfn: 0, register: 0x10, size: 4, rootBus: 0, parentIsRoot: false)
                == .ownConfiguration(PhysicalAddress(0xFD80_0010)))
        #expect(RockchipPCIeHost.target(description, bus: 1, devfn: 0, register: 0x3E, size: 2, rootBus: 0, parentIsRoot: true)
                == .otherConfiguration(PhysicalAddress(0xF810_003E), type: 0xA))
        // Behind a switch: devices other than 0 exist, Type 1, the absolute bus number.
        #expect(RockchipPCIeHost.target(description, bus: 3, devfn: 2 << 3 | 1, register: 4, size: 4, rootBus: 0, parentIsRoot: false)
                == .otherConfiguration(PhysicalAddress(0xF831_1004), type: 0xB))
        #expect(RockchipPCIeHost.target(description, bus: 1, devfn: 0, register: 2, size: 4, rootBus: 0, parentIsRoot: true) == .badRegister)
        var reads: [UInt64] = []
        let value = RockchipPCIeHost.read(description, .deviceNotFound, size: 4, read: { (a: PhysicalAddress, _: Int) -> UInt64 in reads.append(a.rawValue); return 0 },
                                          write: { (_: PhysicalAddress, _: Int, _: UInt64) in })
        #expect(value == 0xFFFF_FFFF)
        #expect(reads.isEmpty, "no access for a device the driver rejects")
    }
}
