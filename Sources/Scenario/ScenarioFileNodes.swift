import Yams

/// The YAML-shaped half of the reader: it turns Yams `Node`s into checked mappings, lists and
/// scalars and turns every mismatch into a `ScenarioFileError` at the node's mark. It knows
/// nothing of scenarios; `ScenarioFileReader` says which keys and values are allowed.
struct ScenarioFileNodes {
    let path: String
    let text: String

    /// One `key: value` pair of a mapping, with the key's node for locating key errors.
    struct Entry {
        let name: String
        let keyNode: Node
        let value: Node
    }

    /// A mapping whose keys have all been checked against an allowed list.
    struct Fields {
        let node: Node
        /// Where the mapping is: "" for the top level, `vm`, `devices[0]`, `events[2].fire`.
        let keyPath: String
        let entries: [Entry]

        func path(_ name: String) -> String { keyPath.isEmpty ? name : "\(keyPath).\(name)" }
        func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }
        func value(_ name: String) -> Node? { entry(name)?.value }
    }

    // MARK: Locating

    func error(at node: Node?, key: String?, _ message: String) -> ScenarioFileError {
        let mark = node?.mark
        return ScenarioFileError(path: path, line: mark?.line ?? 1, column: mark?.column ?? 1, key: key, message: message)
    }

    func error(at node: Node?, key: String?, _ mistake: Mistake) -> ScenarioFileError {
        error(at: node, key: key, mistake.message)
    }

    // MARK: Kinds of node

    /// YAML 1.2 core schema nulls (§10.3.2): an empty or `~`/`null` plain scalar. Quoted
    /// `"null"` is a string.
    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// How an error names what it found instead.
    static func describe(_ node: Node) -> String {
        if isNull(node) { return "nothing" }
        switch node {
        case .scalar(let scalar): return "'\(shortened(scalar.string))'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// Long values are cut in messages; the location already says where the whole value is.
    static func shortened(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard scalars.count > 40 else { return text }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars.prefix(37))
        return String(out) + "..."
    }

    // MARK: Mappings

    /// The entries of a mapping node, checked: every key a scalar, none repeated, each one of
    /// `allowed`. Yams already rejects repeated keys while composing (its error is mapped by
    /// `ScenarioFileSyntax`); this check stays for keys it considers different but that name
    /// the same field here (a tagged `!!str vm` next to `vm`).
    func fields(_ node: Node, keyPath: String, allowed: [String], what: String = "key",
                expecting: String = "a mapping") throws(ScenarioFileError) -> Fields {
        guard case .mapping(let mapping) = node else {
            throw error(at: node, key: keyPath.isEmpty ? nil : keyPath, "expected \(expecting), found \(Self.describe(node))")
        }
        var entries: [Entry] = []
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode, !Self.isNull(keyNode) else {
                throw error(at: keyNode, key: keyPath.isEmpty ? nil : keyPath,
                            "expected a \(what) name, found \(Self.describe(keyNode))")
            }
            let name = scalar.string
            let entryPath = keyPath.isEmpty ? name : "\(keyPath).\(name)"
            if let first = entries.first(where: { $0.name == name }) {
                let at = first.keyNode.mark.map { " (first at line \($0.line), column \($0.column))" } ?? ""
                throw error(at: keyNode, key: entryPath, "duplicate \(what) '\(Self.shortened(name))'\(at)")
            }
            guard allowed.contains(name) else {
                let list = allowed.isEmpty ? Mistake("\(what) '\(Self.shortened(name))' not allowed here (this takes no \(what)s)")
                    : ScenarioFileValues.unknown(what, Self.shortened(name), expected: allowed, listName: "allowed:")
                throw error(at: keyNode, key: entryPath, list)
            }
            entries.append(Entry(name: name, keyNode: keyNode, value: value))
        }
        return Fields(node: node, keyPath: keyPath, entries: entries)
    }

    /// A list's items, or an error naming what was found instead.
    func items(_ node: Node, key: String, of what: String) throws(ScenarioFileError) -> [Node] {
        guard case .sequence(let sequence) = node else {
            throw error(at: node, key: key, "expected a list of \(what), found \(Self.describe(node))")
        }
        return Array(sequence)
    }

    // MARK: Scalars

    /// The text of a scalar that is not null.
    func string(_ node: Node, key: String, expecting: String = "a string") throws(ScenarioFileError) -> String {
        guard case .scalar(let scalar) = node, !Self.isNull(node) else {
            throw error(at: node, key: key, "expected \(expecting), found \(Self.describe(node))")
        }
        return scalar.string
    }

    /// One of a fixed list of words; an unknown word gets "did you mean" and the list.
    func choice<T>(_ node: Node, key: String, _ options: [(String, T)]) throws(ScenarioFileError) -> T {
        let names = options.map(\.0)
        let word = try string(node, key: key, expecting: "one of \(names.joined(separator: ", "))")
        guard let match = options.first(where: { $0.0 == word }) else {
            throw error(at: node, key: key, ScenarioFileValues.unknown("value", Self.shortened(word), expected: names))
        }
        return match.1
    }

    func choice<E: RawRepresentable & CaseIterable>(_ node: Node, key: String, _ type: E.Type) throws(ScenarioFileError) -> E
    where E.RawValue == String {
        try choice(node, key: key, E.allCases.map { ($0.rawValue, $0) })
    }

    func number(_ node: Node, key: String) throws(ScenarioFileError) -> UInt64 {
        let text = try string(node, key: key, expecting: "a number")
        switch ScenarioFileValues.number(text) {
        case .success(let value): return value
        case .failure(let mistake): throw error(at: node, key: key, mistake)
        }
    }

    /// A number in `range`; `what` names it in the message ("vcpus 9 is out of range (1…8)").
    func integer(_ node: Node, key: String, in range: ClosedRange<Int>, what: String, why: String = "") throws(ScenarioFileError) -> Int {
        let value = try number(node, key: key)
        guard let int = Int(exactly: value), range.contains(int) else {
            let bounds = range.lowerBound == range.upperBound ? "only \(range.lowerBound)" : "\(range.lowerBound)…\(range.upperBound)"
            throw error(at: node, key: key, "\(what) \(value) is out of range (\(why.isEmpty ? "" : why + ": ")\(bounds))")
        }
        return int
    }
}
