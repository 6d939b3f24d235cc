import ArgumentParser
import Bus
import Firmware
import Foundation
import Machine

/// A platform description named by path, recognised by its contents rather than its name: a
/// flattened device tree starts with the magic 0xd00dfeed (Devicetree Specification v0.4
/// §5.2), so `/sys/firmware/fdt` and a blob called anything work alike.
enum PlatformFile {
    /// The description's topology, with a default RAM window when it gives no usable RAM
    /// (`Topology.withDefaultMemory`). Errors name the file.
    static func topology(at path: String) throws -> Topology {
        // Neither a preset nor an existing file: the argument itself is wrong (usage, exit 64).
        guard FileManager.default.fileExists(atPath: path) else {
            throw ValidationError("unknown platform '\(path)': not a preset (\(MachinePreset.allCases.map(\.rawValue).joined(separator: ", "))) and no such file")
        }
        let bytes = try readFile(path)
        guard bytes.count >= 4, bytes[0] == 0xD0, bytes[1] == 0x0D, bytes[2] == 0xFE, bytes[3] == 0xED else {
            throw CommandFailure("\(path): not a platform description (no device tree magic 0xd00dfeed)")
        }
        do { return try Topology(dtb: bytes).withDefaultMemory() } catch { throw CommandFailure("\(path): \(error)") }
    }
}
