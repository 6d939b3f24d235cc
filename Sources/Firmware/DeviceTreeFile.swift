#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif

/// Reading a device tree blob (or any file) from disk, with C stdio so the hardware modules need
/// no Foundation. Used by the command line for `--platform file.dtb` and by the tests for
/// Tests/Fixtures.
public enum DeviceTreeFile {
    public struct ReadError: Error, Hashable, Sendable, CustomStringConvertible {
        public let path: String
        public var description: String { "cannot open \(path)" }
    }

    /// The whole file at `path`.
    public static func read(path: String) throws(ReadError) -> [UInt8] {
        guard let file = fopen(path, "rb") else { throw ReadError(path: path) }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        return bytes
    }
}
