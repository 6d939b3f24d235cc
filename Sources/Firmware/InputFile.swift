#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif

/// Reading an input file with a bound, using libc calls so the hardware modules need no
/// Foundation. The file is opened non-blocking (so a FIFO cannot block the open) and its type
/// is checked with `fstat` before any read: only a regular file is read, so `/dev/zero`, a
/// FIFO, a socket or a directory (even behind a symbolic link called `board.dtb`) is refused
/// by what it is, never read forever. A file that grows past the bound while being read is
/// refused as well.
public enum InputFile {
    /// Why a file was not read; `description` is a sentence naming the file.
    public struct ReadError: Error, Hashable, Sendable, CustomStringConvertible {
        public let path: String
        public let problem: String
        public var description: String { "\(path): \(problem)" }
    }

    /// What the file type bits of `st_mode` say, in words.
    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFSOCK: return "a socket"
        default: return "not a regular file"
        }
    }

    /// True when `path` names a directory (after following symbolic links).
    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The bytes of the regular file at `path`, at most `maximumSize` of them.
    public static func read(_ path: String, maximumSize: Int = InputLimits.maximumFileSize) throws(ReadError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else {
            let reason = errno == ENOENT ? "no such file" : errno == EACCES ? "permission denied" : "cannot be opened (errno \(errno))"
            throw ReadError(path: path, problem: reason)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ReadError(path: path, problem: "cannot be examined (fstat failed)") }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw ReadError(path: path, problem: "is \(kind(info.st_mode)), not a regular file")
        }
        let limit = InputLimits.describe("file size", maximumSize, unit: "bytes")
        guard Int64(info.st_size) <= Int64(maximumSize) else {
            throw ReadError(path: path, problem: "\(info.st_size) bytes is more than \(limit)")
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glue.read(fd, $0.baseAddress, $0.count) }
            if count < 0 { throw ReadError(path: path, problem: "read failed (errno \(errno))") }
            if count == 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
            guard bytes.count <= maximumSize else {
                throw ReadError(path: path, problem: "grew past \(limit) while being read")
            }
        }
        return bytes
    }
}

/// The libc `read`, named apart from `InputFile.read`.
private enum Glue {
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
