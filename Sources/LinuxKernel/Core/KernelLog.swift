import Bus

/// The kernel log (dmesg): what the model's subsystems report as they probe and run, in order.
/// Tests read it; reports quote it.
public final class KernelLog {
    public private(set) var lines: [String] = []
    public init() {}

    /// Appends one line, prefixed with the subsystem ("arm-smmu-v3", "GICv3", "vfio-pci").
    public func log(_ subsystem: String, _ message: String) {
        lines.append("\(subsystem): \(message)")
    }

    public func removeAll() { lines.removeAll() }
}

/// A forked world's kernel log starts with the original's lines.
extension KernelLog: WorldCloneable {
    public func clone(into map: inout CloneMap) -> KernelLog {
        let copy = KernelLog()
        copy.lines = lines
        return copy
    }
}
