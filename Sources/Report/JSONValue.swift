import Bus
import Foundation

/// A JSON value built by a report: objects are dictionaries, written with sorted keys, so the
/// output never depends on Dictionary iteration order.
public indirect enum JSONValue: Encodable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    /// An unsigned number written exactly (a 64-bit seed).
    case uint(UInt64)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
    /// A value with its own Encodable shape (a `ReportJSON.Vector` inside a trace document).
    case encodable(any Encodable & Sendable)

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .uint(let u): try c.encode(u)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        case .encodable(let e): try c.encode(e)
        }
    }

    /// A number. Every number in the documents (IDs, counts, indices, INTIDs) fits in 32 bits.
    public static func number<T: BinaryInteger>(_ value: T) -> JSONValue { .int(Int64(clamping: value)) }
    /// A number, or `null` when absent.
    public static func number<T: BinaryInteger>(_ value: T?) -> JSONValue { value.map { .int(Int64(clamping: $0)) } ?? .null }
    /// A string, or `null` when absent.
    public static func string(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
    /// An address (or a register value) in the one form the JSON documents use: `0x` and
    /// lowercase hex digits without separators or leading zeros (`0x8090040`), which
    /// `parseInt(s, 16)`, `jq`'s `ltrimstr("0x")` and `strtoull(s, NULL, 0)` read as written.
    /// 64-bit values do not fit a JSON number without loss in most readers, so they are strings.
    public static func address(_ value: UInt64) -> JSONValue { .string(JSONDocument.hex(value)) }
    /// An address, or `null` when absent.
    public static func address(_ value: UInt64?) -> JSONValue { value.map(address) ?? .null }
    /// The trace records as JSON: layer, step, address, value (both hex strings or `null`), detail.
    public static func records(_ records: [TraceRecord]) -> JSONValue {
        .array(records.map { r in
            .object(["layer": .string(r.layer.rawValue), "step": .string(r.step), "address": .address(r.address),
                     "value": .address(r.value), "detail": .string(r.detail)])
        })
    }
}

/// The frame every `--format json` document shares: `schema` (the version, 2 since the
/// documents of every command were unified) and `command` (the subcommand that wrote it, the
/// discriminator of `Schemas/doorbell.schema.json`), then the command's own keys.
public enum JSONDocument {
    /// Version 2: every command has a document, addresses are separator-free lowercase hex
    /// strings, IDs are numbers, and each document names its `command`.
    public static let schema = 2

    /// `0x` and lowercase hex digits, no separators.
    public static func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

    /// The document of `command`: its `keys` plus `schema` and `command`, pretty-printed with
    /// sorted keys and a final newline.
    public static func render(command: String, _ keys: [String: JSONValue]) -> String {
        var all = keys
        all["schema"] = .number(schema)
        all["command"] = .string(command)
        return encode(JSONValue.object(all))
    }

    /// The document of `command` whose keys are those of the object `report` (a report's
    /// `json`) plus `extra`.
    public static func render(command: String, report: JSONValue, _ extra: [String: JSONValue] = [:]) -> String {
        guard case .object(let keys) = report else { return render(command: command, extra) }
        return render(command: command, keys.merging(extra) { _, new in new })
    }

    /// Any Encodable, pretty-printed with sorted keys and a final newline.
    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value), let text = String(data: data, encoding: .utf8) else { return "{}\n" }
        return text + "\n"
    }
}
