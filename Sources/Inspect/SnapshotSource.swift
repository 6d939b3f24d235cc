/// Where `doorbell inspect` reads a machine from: a live root (`/`), a directory laid out like
/// one (ROOT/sys/…, ROOT/proc/…), or a snapshot archive. Paths are relative to the root and use
/// `/` (`sys/kernel/iommu_groups/0/type`). Every read is bounded, so a file that never ends
/// (a device, a FIFO, `/dev/zero` behind a link) is refused rather than read forever.
public protocol SnapshotSource: AnyObject {
    /// A name for messages: the root directory or the archive path.
    var name: String { get }
    /// The regular file at `path`, at most `limit` bytes, or nil when it does not exist.
    /// Throws when it exists but is not a regular file, cannot be read or is larger than `limit`.
    func read(_ path: String, limit: Int) throws(SnapshotError) -> [UInt8]?
    /// The target text of the symbolic link at `path` (as `readlink` returns it), or nil when
    /// there is no link there.
    func readLink(_ path: String) -> String?
    /// The names in the directory at `path`, sorted bytewise, or nil when there is no directory.
    func list(_ path: String) -> [String]?
}

/// A file of the machine that exists but cannot be used, named with its path.
public struct SnapshotError: Error, Hashable, Sendable, CustomStringConvertible {
    public var path: String
    public var problem: String

    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }
}

/// The largest file `inspect` reads. The largest it needs is a firmware table: a device tree
/// blob (QEMU's `virt` pads its blob to 1 MiB; server DTBs and IORTs stay well below that) or
/// `/proc/iomem`/`/proc/interrupts` on a many-CPU machine.
public enum SnapshotLimits {
    /// Firmware descriptions: `/sys/firmware/fdt`, ACPI tables.
    public static let firmware = 8 << 20
    /// `/proc/interrupts` (one line per interrupt, one column per CPU) and `/proc/iomem`.
    public static let procTable = 16 << 20
    /// A PCI function's configuration space (`config`: 256 bytes conventional, 4096 PCIe).
    public static let configSpace = 4096
    /// Any one-line sysfs attribute (`vendor`, `type`, `reserved_regions`, …).
    public static let attribute = 64 << 10
    /// Entries listed in one directory.
    public static let directoryEntries = 65_536
    /// A snapshot archive as a whole.
    public static let archive = 256 << 20
}
