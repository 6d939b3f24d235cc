import Bus
import Testing
@testable import PCI

/// Seeded random walks over the guest-controlled surfaces: MSI-X table/PBA MMIO, configuration
/// writes, ECAM. None may trap, and the MSI-X delivery rule must hold after every step.
@Suite("Property tests")
struct PropertyTests {
    /// No vector may sit in the PBA while it is deliverable: whatever made it deliverable
    /// (unmask, Function Mask clear, Enable, Bus Master Enable) must have sent it (PCIe §6.1.4.5).
    private func checkMSIXInvariants(_ f: Fixture, _ size: Int) {
        guard let table = f.function.msixTable, let msix = f.function.msix else { return }
        let config = f.function.config
        let deliverable = msix.isEnabled(in: config) && !msix.isFunctionMasked(in: config) && config.busMasterEnabled
        for vector in 0..<size {
            #expect(!(deliverable && table.isPending(vector) && !table.isMasked(vector)), "vector \(vector) stuck pending")
            #expect(table.vectorControl(vector) & ~1 == 0)
            #expect(table.messageAddress(vector) & 3 == 0)
        }
        // PBA bits beyond the table size never set.
        let lastQWORD = table.pendingQWORD((size - 1) / 64)
        let used = size % 64 == 0 ? UInt64.max : (UInt64(1) << UInt64(size % 64)) - 1
        #expect(lastQWORD & ~used == 0)
    }

    @Test("random MSI-X table and PBA writes, control changes and raises never trap and never strand a vector",
          arguments: [UInt64(1), 0xD00B_BE11, 0xFEED_FACE_CAFE_BEEF])
    func randomMSIXTableWrites(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let size = 13
        let f = try Fixture(tableSize: size)
        f.enable()
        for _ in 0..<2500 {
            switch rng.next() % 8 {
            case 0, 1, 2:
                // Anywhere in (and past) the 16 KiB BAR, any size, any bytes.
                let offset = rng.next() % 3 == 0 ? rng.next() % 0x5000 : rng.next() % (UInt64(size) * 16 + 8)
                try f.rootComplex.memoryWindow.mmioWrite(offset: offset, size: Int(rng.next() % 10), value: rng.next(), requester: .cpu(0))
            case 3:
                try f.mmioWrite(0x2000 + rng.next() % 16, size: 8, rng.next())     // PBA writes: ignored
            case 4:
                f.setMSIXControl(enable: rng.next() % 4 != 0, functionMask: rng.next() % 3 == 0)
            case 5:
                f.enable(busMaster: rng.next() % 5 != 0)
            default:
                let outcome = f.function.raise(vector: Int(rng.next() % UInt64(size + 2)) - 1)
                if let t = outcome.transaction { #expect(t.kind == .write && t.size == 4 && t.data <= 0xFFFF_FFFF) }
            }
            _ = try f.rootComplex.memoryWindow.mmioRead(offset: rng.next() % 0x5000, size: Int(rng.next() % 10), requester: .cpu(0))
            checkMSIXInvariants(f, size)
        }
        for t in f.port.transactions { #expect(t.kind == .write && t.size == 4 && t.streamID == StreamID(0x8)) }
    }

    @Test("random configuration writes keep identity, header type, capability list and BAR type bits",
          arguments: [UInt64(7), 42, 0x0BAD_5EED])
    func randomConfigWrites(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let f = try Fixture(tableSize: 8, msi: MSIConfiguration(is64Bit: true, perVectorMasking: true, vectorsLog2: 2, extendedMessageData: true))
        let bridge = try PCIToPCIBridge(requesterID: RequesterID(bus: 0, device: 2, function: 0), secondaryBus: 1)
        try f.rootComplex.attach(bridge)
        let capabilities = f.function.config.capabilityList().map(\.offset)
        let bridgeCapabilities = bridge.config.capabilityList().map(\.offset)
        let msi = try #require(f.function.msi)
        for _ in 0..<3000 {
            // Half the writes aim at the header and capabilities, the rest anywhere in 4 KiB.
            let offset = rng.next() % 2 == 0 ? Int(rng.next() % 0xC0) : Int(rng.next() % 0x1004)
            let size = Int(rng.next() % 5)
            let value = UInt32(truncatingIfNeeded: rng.next())
            if rng.next() % 4 == 0 {
                bridge.configWrite(offset: offset, size: size, value: value)
            } else {
                f.function.configWrite(offset: offset, size: size, value: value)
            }
            if rng.next() % 8 == 0 { f.function.raise(vector: Int(rng.next() % 5)) }
            let config = f.function.config
            #expect(config.vendorID == 0x1AF4 && config.deviceID == 0x1041)
            #expect(config.read(offset: ConfigRegister.headerType, size: 1) == 0)
            #expect(config.read(offset: ConfigRegister.bar0, size: 1) & 0xF == 0x4)   // 64-bit, non-prefetchable
            #expect(config.capabilityList().map(\.offset) == capabilities)
            #expect(config.status & ConfigRegister.statusCapabilitiesList != 0)
            #expect(msi.pendingBits(in: config) & ~0xF == 0)                        // only the 4 capable vectors
            #expect(bridge.config.capabilityList().map(\.offset) == bridgeCapabilities)
            #expect(bridge.configRead(offset: ConfigRegister.headerType, size: 1) == 1)
            // An allocated, unmasked vector is never left pending while it could be sent.
            if msi.isEnabled(in: config), config.busMasterEnabled {
                let allocated = UInt32(truncatingIfNeeded: UInt64.lowMask(msi.allocatedVectors(in: config)))
                #expect(msi.pendingBits(in: config) & ~msi.maskBits(in: config) & allocated == 0)
            }
        }
    }

    @Test("random ECAM accesses never trap; unpopulated functions always read all-ones", arguments: [UInt64(3), 99])
    func randomECAM(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let f = try Fixture()
        let ecam = f.rootComplex.ecam
        for _ in 0..<3000 {
            let offset = rng.next() % (f.rootComplex.ecamSize + 0x1000)
            let size = [1, 2, 4, 8, 3, 0][Int(rng.next() % 6)]
            if rng.next() % 2 == 0 {
                try ecam.mmioWrite(offset: offset, size: size, value: rng.next(), requester: .cpu(0))
            } else {
                let value = try ecam.mmioRead(offset: offset, size: size, requester: .cpu(0))
                if let (rid, _) = ecam.decode(offset: offset), rid != f.function.requesterID, [1, 2, 4].contains(size) {
                    #expect(value == UInt64.lowMask(8 * size))
                }
            }
        }
        #expect(f.function.config.vendorID == 0x1AF4)
    }
}
