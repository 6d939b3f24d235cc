import Testing
import Bus
@testable import Firmware

/// No input traps the reader or the topology (docs/architecture.md: "bad input is data").
/// Seeds are fixed, so a failure reproduces; FuzzTesting/Sources/FuzzDTB explores further.
@Suite("FDT property tests")
struct FDTPropertyTests {
    /// Reads a blob all the way to a topology and back through the writer; any error is fine,
    /// a trap is not. Returns whether the blob was a valid DTB.
    @discardableResult
    static func exercise(_ bytes: [UInt8]) -> Bool {
        guard let fdt = try? FlattenedDeviceTree(bytes: bytes) else { return false }
        _ = try? Topology(deviceTree: fdt.tree)
        if let written = try? DeviceTreeWriter.write(fdt.tree) {
            // Whatever the reader accepts, the writer writes and the reader reads back the same.
            #expect((try? DeviceTree(dtb: written)) == fdt.tree)
        }
        return true
    }

    @Test("random bytes, with and without a valid magic, never trap")
    func randomBytes() {
        var generator = SeededGenerator(seed: 0xD00D_FEED)
        for iteration in 0..<3000 {
            var bytes = generator.bytes(Int(generator.next() % 600))
            if iteration % 2 == 0, bytes.count >= 64 {
                // A real-looking header in front: magic, version 17, offsets inside the blob, so
                // the structure walker sees random tokens.
                let total = UInt32(bytes.count)
                let fields: [UInt32] = [0xD00D_FEED, total, 40 + 16, 40 + 16 + (total - 56) / 2, 40, 17, 16, 0,
                                        (total - 56) / 2 - 1, (total - 56) / 2]
                bytes.replaceSubrange(0..<40, with: fields.flatMap { BigEndian.bytes($0) })
                bytes.replaceSubrange(40..<56, with: [UInt8](repeating: 0, count: 16))
            }
            Self.exercise(bytes)
        }
    }

    @Test("random mutations of real fixtures never trap", arguments: ["qemu-virt/virt-smmu.dtb", "boards/cavium_thunder2-99xx.dtb", "boards/marvell_armada-8080-db.dtb"])
    func mutatedFixtures(name: String) throws {
        let original = try Fixtures.bytes(name)
        var generator = SeededGenerator(seed: 0x5EED_0000 &+ UInt64(original.count))
        var accepted = 0
        for _ in 0..<500 {
            var bytes = original
            for _ in 0..<(1 + generator.next() % 4) {
                let position = Int(generator.next() % UInt64(bytes.count))
                switch generator.next() % 4 {
                case 0: bytes[position] = UInt8(truncatingIfNeeded: generator.next())
                case 1: bytes[position] ^= 1 << UInt8(generator.next() % 8)
                case 2:
                    // A 32-bit word set to an extreme: where lengths and offsets overflow.
                    let word = position & ~3
                    let value: UInt32 = [0, 1, 0xFFFF_FFFF, 0x8000_0000, 0xFFFF_FFFC][Int(generator.next() % 5)]
                    if word + 4 <= bytes.count { bytes.replaceSubrange(word..<(word + 4), with: BigEndian.bytes(value)) }
                default: bytes.removeSubrange(position..<min(bytes.count, position + Int(generator.next() % 16)))
                }
            }
            if Self.exercise(bytes) { accepted += 1 }
        }
        // Mutating property values leaves a valid blob, so some are accepted and reach the
        // topology reader: the test would be empty otherwise.
        #expect(accepted > 50)
    }

    @Test("every 8-byte cut of size_dt_struct gives a structure error inside the cut block")
    func cutStructure() throws {
        let bytes = try Fixtures.qemu("virt-smmu")
        let start = 0x38, size = 0x1C60
        for cut in stride(from: 0, to: size, by: 8) {
            var copy = bytes
            copy.replaceSubrange(36..<40, with: BigEndian.bytes(UInt32(cut)))
            do {
                _ = try FlattenedDeviceTree(bytes: copy)
                Issue.record("cut at \(cut) was accepted")
            } catch {
                // The error points into the remaining block (or at its end).
                #expect(error.offset >= start && error.offset <= start + cut, "cut \(cut): \(error)")
                switch error.kind {
                case .missingEnd, .truncatedStructure, .unterminatedNodeName, .propertyValueOutOfBounds: break
                default: Issue.record("cut \(cut): unexpected \(error)")
                }
            }
        }
    }
}
