import Testing
import Bus
import Firmware
import GIC
@testable import LinuxKernel
import Machine
import PCI

/// Configuration space is device-controlled data: a broken or hostile function (or, later, a
/// VMM's emulation) can return anything. Enumeration, BAR sizing, capability walks, alias and
/// MSI-domain resolution must terminate and never trap on it.
@Suite("PCI core on hostile configuration space")
struct PCIHostileConfigTests {
    /// An ECAM window whose every register reads a seeded hash of (seed, offset): vendor IDs are
    /// valid for the first 16 devfns of buses 0–3 (so the walk reaches headers, capability
    /// chains, bridges with random bus numbers and BARs with random masks), absent elsewhere.
    /// Writes are accepted and ignored.
    final class ChaoticECAM: MMIODevice {
        let seed: UInt64
        var reads = 0
        init(seed: UInt64) { self.seed = seed }
        var mmioName: String { "chaotic-ecam" }

        func word(_ offset: UInt64) -> UInt32 {
            var g = SeededGenerator(seed: seed ^ (offset &* 0x9E37_79B9_7F4A_7C15))
            return UInt32(truncatingIfNeeded: g.next())
        }

        func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
            reads += 1
            let bus = offset >> 20
            let devfn = (offset >> 12) & 0xFF
            let register = offset & 0xFFF
            if register < 4 && (bus >= 4 || devfn >= 16) { return UInt64.lowMask(8 * min(max(size, 1), 8)) }
            let aligned = offset & ~3
            var value = UInt64(word(aligned)) | UInt64(word(aligned + 4)) << 32
            value >>= (offset & 3) * 8
            if register < 2, value & 0xFFFF == 0xFFFF { value ^= 1 }   // keep the function present
            return value & UInt64.lowMask(8 * min(max(size, 1), 8))
        }

        func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {}
    }

    @Test("enumeration, resource assignment, aliases and MSI routing terminate on random config space", arguments: 1...12)
    func chaos(seed: UInt64) throws {
        let topology = try MachinePreset.qemuVirt.topology()
        let bus = SystemBus()
        for range in topology.memory { try bus.addRAM(base: range.base, size: range.size) }
        let hostBridge = try #require(topology.pcieHostBridges.first)
        let ecam = try #require(hostBridge.configSpace)
        let chaotic = ChaoticECAM(seed: seed)
        try bus.addDevice(chaotic, base: ecam.base, size: ecam.size, name: "chaos")
        let kernel = LinuxKernel(topology: topology, bus: bus, cpuInterface: GICv3())
        try kernel.pci.enumerate()
        // At most the 4 × 16 present slots, each found at most once.
        #expect(!kernel.pci.devices.isEmpty && kernel.pci.devices.count <= 64)
        #expect(Set(kernel.pci.devices.map(\.name)).count == kernel.pci.devices.count)
        for dev in kernel.pci.devices {
            #expect(dev.dmaAliases.first == dev.requesterID)
            #expect(dev.dmaAliases.count <= 33)
            for r in dev.resources {
                #expect(r.size.nonzeroBitCount == 1, "a BAR size is a power of two")
                if let a = r.address { #expect(a.rawValue % r.size == 0, "naturally aligned") }
            }
            _ = try? kernel.pci.msiDomain(of: dev)
            _ = kernel.pci.itsEventCount(dev, nvec: 4, hwsize: 2048, deviceID: 0)
            // No ITS driver was probed here: MSI allocation must fail cleanly.
            dev.isEnabled = true
            #expect(throws: (any Error).self) { try kernel.pci.allocateIRQVectors(dev, min: 1, max: 4, flags: [.msix, .msi]) }
        }
    }
}
