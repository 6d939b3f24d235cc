/// A machine read from a snapshot archive (`doorbell inspect --snapshot` writes one): the
/// members are the files `inspect` read, under their paths relative to the root, and the links
/// it read as symbolic-link members holding the target text.
public final class ArchiveSnapshot: SnapshotSource {
    public let name: String
    private var members: [String: TarArchive.Member] = [:]
    private var children: [String: Set<String>] = [:]

    public init(name: String, bytes: [UInt8]) throws(SnapshotError) {
        self.name = name
        let list: [(path: String, member: TarArchive.Member)]
        do { list = try TarArchive.read(bytes) } catch { throw SnapshotError(path: name, problem: "not a usable tar archive: \(error)") }
        for (path, member) in list {
            members[path] = member
            // Every ancestor is a directory holding the next component.
            var child = path
            while let slash = child.lastIndex(of: "/") {
                let parent = String(child[..<slash])
                children[parent, default: []].insert(String(child[child.index(after: slash)...]))
                child = parent
            }
            children["", default: []].insert(child)
        }
    }

    public func read(_ path: String, limit: Int) throws(SnapshotError) -> [UInt8]? {
        switch members[path] {
        case .file(let bytes)?:
            guard bytes.count <= limit else { throw SnapshotError(path: "\(name):\(path)", problem: "larger than the \(limit) bytes accepted") }
            return bytes
        case .directory?: throw SnapshotError(path: "\(name):\(path)", problem: "not a regular file")
        case .symbolicLink?, nil: return nil
        }
    }

    public func readLink(_ path: String) -> String? {
        if case .symbolicLink(let target)? = members[path] { return target }
        return nil
    }

    public func list(_ path: String) -> [String]? {
        if case .file? = members[path] { return nil }
        if case .symbolicLink? = members[path] { return nil }
        guard let names = children[path] else { return members[path] == .directory ? [] : nil }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }
}

/// A source that remembers what was read through it, so `inspect --snapshot` can write exactly
/// those files and links and nothing else.
public final class RecordingSnapshot: SnapshotSource {
    public let base: any SnapshotSource
    public private(set) var recorded: [String: TarArchive.Member] = [:]
    public var name: String { base.name }

    public init(_ base: any SnapshotSource) {
        self.base = base
    }

    public func read(_ path: String, limit: Int) throws(SnapshotError) -> [UInt8]? {
        let bytes = try base.read(path, limit: limit)
        if let bytes { recorded[path] = .file(bytes) }
        return bytes
    }

    public func readLink(_ path: String) -> String? {
        let target = base.readLink(path)
        if let target { recorded[path] = .symbolicLink(target: target) }
        return target
    }

    /// Lists through the base; a directory that was listed is recorded too, so an empty one
    /// (no IOMMU groups) reads back as empty rather than missing.
    public func list(_ path: String) -> [String]? {
        let names = base.list(path)
        if names != nil, recorded[path] == nil { recorded[path] = .directory }
        return names
    }

    /// The archive of everything read, in path order.
    public func archive() -> [UInt8] {
        let paths = recorded.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        return TarArchive.write(paths.compactMap { path in recorded[path].map { (path, $0) } })
    }
}
