#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
import Firmware

/// A machine read from a directory: `/` for the live machine, or an unpacked snapshot. Files
/// are read by `InputFile.read` (opened with `O_NONBLOCK`, `fstat`ed, only regular files, with
/// a bound), so a FIFO or a device node is refused by type; symbolic links inside the tree are
/// followed for files (sysfs reaches every device through one), and read as text by `readLink`.
public final class DirectorySnapshot: SnapshotSource {
    public let root: String
    public var name: String { root }

    public init(root: String) {
        self.root = root
    }

    func fullPath(_ path: String) -> String {
        root.hasSuffix("/") ? root + path : root + "/" + path
    }

    public func read(_ path: String, limit: Int) throws(SnapshotError) -> [UInt8]? {
        let full = fullPath(path)
        // A missing file is an answer (not available), not an error; stat follows links, as
        // sysfs's device directories need.
        var info = stat()
        guard stat(full, &info) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw SnapshotError(path: full, problem: "cannot be examined (\(String(cString: strerror(errno))))")
        }
        // The bounded, regular-files-only reader every input goes through; sysfs and procfs
        // report sizes that are not the content's (4096, 0), and its bound is on what is read.
        do { return try InputFile.read(full, maximumSize: limit) } catch {
            throw SnapshotError(path: full, problem: error.problem)
        }
    }

    public func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let count = readlink(fullPath(path), &buffer, 4096)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func list(_ path: String) -> [String]? {
        guard let dir = opendir(fullPath(path)) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir), names.count < SnapshotLimits.directoryEntries {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }
}

