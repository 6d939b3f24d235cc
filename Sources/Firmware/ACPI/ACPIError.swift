/// Why an ACPI table could not be read: the table signature, the byte offset (from the start
/// of the table) of the structure that is wrong, what kind of structure it is, the field, and
/// the problem. Rendered as `IORT: node at 0x48: ID mapping array offset 0x1000 beyond node
/// length 0x58`.
public struct ACPIError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The 4-character table signature ("IORT", "APIC", "MCFG"), or "ACPI" before the header
    /// could be read.
    public var signature: String
    /// "header", "node", "ID mapping", "GICC structure", "entry", …
    public var structure: String
    /// Byte offset of the structure from the start of the table.
    public var offset: Int
    /// The field, in the spec's words.
    public var field: String
    /// What was wrong, with the values involved.
    public var problem: String

    public init(signature: String, structure: String, offset: Int, field: String, problem: String) {
        self.signature = signature
        self.structure = structure
        self.offset = offset
        self.field = field
        self.problem = problem
    }

    public var description: String {
        "\(signature): \(structure) at \(ACPIHex.format(offset)): \(field) \(problem)"
    }
}

/// Hex rendering shared by errors and paths: `0x48`.
enum ACPIHex {
    static func format<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }
}
