/// A mistake in a scenario file, located the way compilers locate theirs, so editors and
/// terminals can jump to it: `examples/bad.yaml:7:11: vm.viommu: unknown value 'smmu'
/// (expected none, smmuv3-accel)`.
///
/// `line` and `column` are 1-based, as libyaml's marks (which Yams reports 1-based) count
/// them: columns in Unicode scalars, lines at every YAML line break (LF, CR, CR LF, and also
/// NEL, LS and PS, which some editors do not break at). They are 0 only for a mistake that belongs to no place in the text: a file that
/// cannot be read at all.
public struct ScenarioFileError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file as it was named to `ScenarioFile.load` or `parse` (`<scenario>` by default).
    public var path: String
    public var line: Int
    public var column: Int
    /// The dotted path of the key concerned (`vm.viommu`, `devices[1].bdf`,
    /// `events[3].host-affinity.cpu`); nil for YAML syntax errors, which have no key.
    public var key: String?
    public var message: String

    public init(path: String, line: Int, column: Int, key: String? = nil, message: String) {
        self.path = path
        self.line = line
        self.column = column
        self.key = key
        self.message = message
    }

    public var description: String {
        let location = line > 0 ? "\(path):\(line):\(column)" : path
        if let key { return "\(location): \(key): \(message)" }
        return "\(location): \(message)"
    }
}
