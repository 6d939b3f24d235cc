import Foundation

/// A JSON document as the schema validator reads it. Decoded with `JSONDecoder`, which keeps
/// `true`/`false` apart from numbers and integers apart from fractions.
indirect enum JSONTree: Decodable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONTree])
    case object([String: JSONTree])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .integer(i) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONTree].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONTree].self)) }
    }

    static func parse(_ text: String) throws -> JSONTree {
        try JSONDecoder().decode(JSONTree.self, from: Data(text.utf8))
    }

    subscript(key: String) -> JSONTree? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    /// The number as a Double, for `minimum` and numeric `const`/`enum` comparison.
    var numeric: Double? {
        switch self {
        case .integer(let i): Double(i)
        case .number(let d): d
        default: nil
        }
    }
}

/// A validator for the subset of JSON Schema draft 2020-12 that `Schemas/doorbell.schema.json`
/// uses, and nothing more: `type` (a name or an array of names), `properties`, `required`,
/// `additionalProperties` (`false` or a schema), `items` (one schema), `enum`, `const`,
/// `pattern` (`NSRegularExpression`, searched anywhere in the string as the spec says),
/// `$ref` to `#/$defs/NAME`, `oneOf` (exactly one branch valid), `minimum`. The annotations
/// `$schema`, `title`, `description` and `$defs` are accepted and ignored. Any other keyword is
/// reported as an error, so the schema cannot grow a keyword this validator silently skips.
struct JSONSchemaSubset {
    let root: JSONTree

    static let annotations: Set<String> = ["$schema", "title", "description", "$defs"]
    static let keywords: Set<String> = ["type", "properties", "required", "additionalProperties", "items", "enum", "const",
                                        "pattern", "$ref", "oneOf", "minimum"]

    init(_ schema: JSONTree) { root = schema }

    /// Every place `instance` breaks the schema, each as "PATH: what"; empty when it is valid.
    func errors(_ instance: JSONTree) -> [String] {
        errors(instance, root, path: "$")
    }

    func errors(_ instance: JSONTree, _ schema: JSONTree, path: String) -> [String] {
        guard case .object(let s) = schema else { return ["\(path): the schema here is not an object"] }
        var found: [String] = []
        for key in s.keys.sorted() where !Self.keywords.contains(key) && !Self.annotations.contains(key) {
            found.append("\(path): unsupported schema keyword \(key)")
        }
        if case .string(let reference)? = s["$ref"] {
            let prefix = "#/$defs/"
            guard reference.hasPrefix(prefix), let target = root["$defs"]?[String(reference.dropFirst(prefix.count))] else {
                return found + ["\(path): unresolved $ref \(reference)"]
            }
            found += errors(instance, target, path: path)
        }
        if let type = s["type"] {
            let names: [String]
            switch type {
            case .string(let name): names = [name]
            case .array(let list): names = list.compactMap { if case .string(let n) = $0 { n } else { nil } }
            default: names = []
            }
            if !names.contains(where: { Self.matches(instance, type: $0) }) {
                found.append("\(path): expected \(names.joined(separator: " or ")), found \(Self.typeName(instance))")
            }
        }
        if let constant = s["const"], !Self.equal(instance, constant) {
            found.append("\(path): expected the constant \(constant)")
        }
        if case .array(let allowed)? = s["enum"], !allowed.contains(where: { Self.equal(instance, $0) }) {
            found.append("\(path): \(instance) is not one of the allowed values")
        }
        if let minimum = s["minimum"]?.numeric, let value = instance.numeric, value < minimum {
            found.append("\(path): \(value) is below the minimum \(minimum)")
        }
        if case .string(let pattern)? = s["pattern"], case .string(let text) = instance {
            if let regex = try? NSRegularExpression(pattern: pattern) {
                if regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) == nil {
                    found.append("\(path): \"\(text)\" does not match \(pattern)")
                }
            } else {
                found.append("\(path): the pattern \(pattern) is not a regular expression")
            }
        }
        if case .object(let members) = instance {
            let properties: [String: JSONTree]
            if case .object(let p)? = s["properties"] { properties = p } else { properties = [:] }
            if case .array(let required)? = s["required"] {
                for case .string(let key) in required where members[key] == nil { found.append("\(path): the required key \"\(key)\" is missing") }
            }
            for key in members.keys.sorted() {
                guard let value = members[key] else { continue }
                if let property = properties[key] {
                    found += errors(value, property, path: "\(path).\(key)")
                } else if let additional = s["additionalProperties"] {
                    if additional == .bool(false) { found.append("\(path): the key \"\(key)\" is not allowed") }
                    else if case .object = additional { found += errors(value, additional, path: "\(path).\(key)") }
                }
            }
        }
        if case .array(let elements) = instance, let items = s["items"] {
            for (i, element) in elements.enumerated() { found += errors(element, items, path: "\(path)[\(i)]") }
        }
        if case .array(let branches)? = s["oneOf"] {
            let results = branches.map { errors(instance, $0, path: path) }
            let valid = results.filter(\.isEmpty).count
            if valid != 1 {
                // The closest branch (fewest errors) says best what is wrong.
                let closest = results.min { $0.count < $1.count } ?? []
                found.append("\(path): \(valid) of \(branches.count) oneOf branches match" + (valid == 0 ? "; the closest: \(closest.prefix(3).joined(separator: "; "))" : ""))
            }
        }
        return found
    }

    static func matches(_ value: JSONTree, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object): true
        case ("integer", .integer), ("number", .integer), ("number", .number): true
        case ("integer", .number(let d)): d.rounded() == d
        default: false
        }
    }

    static func typeName(_ value: JSONTree) -> String {
        switch value {
        case .null: "null"
        case .bool: "boolean"
        case .integer: "integer"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// JSON equality: numbers by value (1 equals 1.0), everything else structurally.
    static func equal(_ a: JSONTree, _ b: JSONTree) -> Bool {
        if let x = a.numeric, let y = b.numeric { return x == y }
        return a == b
    }
}
