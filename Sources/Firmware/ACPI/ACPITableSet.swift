#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif

/// The ACPI tables a platform description is read from: IORT, MADT ("APIC") and MCFG. Tables
/// are recognised by the signature in their header, never by file name, so a copy of
/// `/sys/firmware/acpi/tables` works as well as a directory of `*.dat`/`*.aml` files with any
/// names. Other tables (DSDT, FACP, …) are ignored.
public struct ACPITableSet: Hashable, Sendable {
    public var iort: IORT?
    public var madt: MADT?
    public var mcfg: MCFG?

    public init(iort: IORT? = nil, madt: MADT? = nil, mcfg: MCFG? = nil) {
        self.iort = iort
        self.madt = madt
        self.mcfg = mcfg
    }

    /// Files larger than this are refused (the largest real IORT/MADT are a few tens of KiB;
    /// a DSDT can reach a few MiB).
    public static let maximumFileSize = InputLimits.maximumFileSize

    /// Why a table set could not be loaded: the file, and what was wrong.
    public enum LoadError: Error, Hashable, Sendable, CustomStringConvertible {
        case file(path: String, problem: String)
        case table(path: String, ACPIError)

        public var description: String {
            switch self {
            case .file(let path, let problem): return "\(path): \(problem)"
            case .table(let path, let error): return "\(path): \(error)"
            }
        }
    }

    /// Adds one table's bytes; unknown signatures are ignored. A second table of a kind already
    /// present is an error (Linux uses the first instance; a set that has two is ambiguous).
    public mutating func add(_ bytes: [UInt8], name: String = "table") throws(LoadError) {
        do {
            switch ACPITableHeader.signature(of: bytes) {
            case "IORT":
                guard iort == nil else { throw LoadError.file(path: name, problem: "a second IORT") }
                iort = try IORT(bytes: bytes)
            case "APIC":
                guard madt == nil else { throw LoadError.file(path: name, problem: "a second MADT (APIC)") }
                madt = try MADT(bytes: bytes)
            case "MCFG":
                guard mcfg == nil else { throw LoadError.file(path: name, problem: "a second MCFG") }
                mcfg = try MCFG(bytes: bytes)
            default:
                return
            }
        } catch let error as LoadError {
            throw error
        } catch let error as ACPIError {
            throw .table(path: name, error)
        } catch {
            throw .file(path: name, problem: "\(error)")
        }
    }

    /// Loads a single table file, or every regular file of a directory (not recursive; file
    /// names in sorted order so the outcome does not depend on directory order; names starting
    /// with "." skipped; symbolic links followed, devices, FIFOs and sockets skipped).
    public init(contentsOf path: String) throws(LoadError) {
        self.init()
        var info = stat()
        guard stat(path, &info) == 0 else { throw .file(path: path, problem: "no such file or directory") }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            for name in try Self.directoryEntries(path) where !name.hasPrefix(".") {
                let file = path.hasSuffix("/") ? path + name : path + "/" + name
                var entry = stat()
                guard stat(file, &entry) == 0, (entry.st_mode & S_IFMT) == S_IFREG else { continue }
                try add(try Self.read(file), name: file)
            }
        } else {
            try add(try Self.read(path), name: path)
        }
    }

    /// The entry names of a directory, sorted.
    static func directoryEntries(_ path: String) throws(LoadError) -> [String] {
        guard let directory = opendir(path) else { throw .file(path: path, problem: "cannot list directory") }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Reads a regular file of at most `maximumFileSize` bytes (`InputFile.read`: devices,
    /// FIFOs, sockets and directories are refused before any read).
    public static func read(_ path: String) throws(LoadError) -> [UInt8] {
        do { return try InputFile.read(path, maximumSize: maximumFileSize) } catch { throw .file(path: path, problem: error.problem) }
    }
}
