#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif

/// A machine read from a directory: `/` for the live machine, or an unpacked snapshot. Files
/// are opened with `O_NONBLOCK` and `fstat`ed before reading, so only regular files are read
/// (a FIFO or a device node is refused by type); symbolic links inside the tree are followed
/// for files (sysfs reaches every device through one), and read as text by `readLink`.
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
        let fd = open(full, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw SnapshotError(path: full, problem: "cannot open (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SnapshotError(path: full, problem: "cannot stat") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw SnapshotError(path: full, problem: "not a regular file") }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = buffer.withUnsafeMutableBytes { LibC.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                // sysfs answers some attributes with an error (EIO, EINVAL, ENODEV) rather than
                // text; that is the machine's answer, named as such.
                throw SnapshotError(path: full, problem: "read failed (\(String(cString: strerror(errno))))")
            }
            if count == 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
            // sysfs and procfs report sizes that are not the content's (4096, 0), so the bound is
            // on what was read, not on st_size.
            guard bytes.count <= limit else { throw SnapshotError(path: full, problem: "larger than the \(limit) bytes accepted") }
        }
        return bytes
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

/// The libc calls, named apart from the protocol's `read`.
enum LibC {
    static func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
        #if canImport(Glibc)
        return Glibc.read(fd, buffer, count)
        #elseif canImport(Darwin)
        return Darwin.read(fd, buffer, count)
        #else
        return Musl.read(fd, buffer, count)
        #endif
    }
}
