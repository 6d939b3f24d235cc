/// The System Description Table Header every ACPI table starts with (ACPI 6.5 §5.2.6,
/// Table 5.4; ACPICA `ACPI_TABLE_HEADER`): 36 bytes.
///
/// Checksum policy: a mismatch is not an error. The reader records it in `checksumIsValid`
/// and goes on, as Linux does (`acpi_tb_verify_checksum` only warns unless the table is
/// loaded from an initrd override); a caller that wants strictness checks the flag.
public struct ACPITableHeader: Hashable, Sendable {
    /// Byte length of the header.
    public static let size = 36

    /// The 4-byte signature, as ASCII ("IORT", "APIC", "MCFG").
    public var signature: String
    /// Length of the whole table, header included, as the table states it.
    public var length: UInt32
    public var revision: UInt8
    /// The checksum byte as read (the writer recomputes it).
    public var checksum: UInt8
    /// All bytes of the table (over `length`) sum to zero mod 256.
    public var checksumIsValid: Bool
    /// OEM ID, 6 bytes.
    public var oemID: [UInt8]
    /// OEM Table ID, 8 bytes.
    public var oemTableID: [UInt8]
    public var oemRevision: UInt32
    /// Creator ID ("Asl Compiler ID" in iasl), 4 bytes.
    public var creatorID: [UInt8]
    /// Creator Revision ("Asl Compiler Revision").
    public var creatorRevision: UInt32

    public init(signature: String, length: UInt32 = 0, revision: UInt8, checksum: UInt8 = 0, checksumIsValid: Bool = true,
                oemID: [UInt8] = Array("DOORBL".utf8), oemTableID: [UInt8] = Array("DOORBELL".utf8), oemRevision: UInt32 = 1,
                creatorID: [UInt8] = Array("DRBL".utf8), creatorRevision: UInt32 = 1) {
        self.signature = signature
        self.length = length
        self.revision = revision
        self.checksum = checksum
        self.checksumIsValid = checksumIsValid
        self.oemID = oemID
        self.oemTableID = oemTableID
        self.oemRevision = oemRevision
        self.creatorID = creatorID
        self.creatorRevision = creatorRevision
    }

    /// The signature of a table in `bytes`, when it has at least 4 bytes.
    public static func signature(of bytes: [UInt8]) -> String? {
        guard bytes.count >= 4 else { return nil }
        return ascii(Array(bytes[0..<4]))
    }

    /// ASCII text of a fixed field; bytes outside printable ASCII become "?".
    static func ascii(_ raw: [UInt8]) -> String {
        String(decoding: raw.map { (0x20...0x7E).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }

    /// The sum of `bytes` mod 256 (zero for a valid table).
    static func sum(_ bytes: [UInt8]) -> UInt8 {
        bytes.reduce(0) { $0 &+ $1 }  // mod-256 sum: the wrap is the definition
    }

    /// Reads the header and returns it with the table's bytes cut to its `length`. Throws when
    /// the table is shorter than the header, the length is below 36, or beyond the bytes given,
    /// or the signature is not `expected` (when given).
    static func read(_ bytes: [UInt8], expected: String?) throws(ACPIError) -> (ACPITableHeader, ACPIBytes) {
        let sig = signature(of: bytes) ?? "ACPI"
        let raw = ACPIBytes(bytes, signature: expected ?? sig)
        guard bytes.count >= size else {
            throw raw.error("header", 0, "Table Length", "\(bytes.count) bytes given, the header alone needs \(size)")
        }
        if let expected, sig != expected {
            throw raw.error("header", 0, "Signature", "\"\(sig)\" is not \"\(expected)\"")
        }
        let length = try raw.u32(4, "header", 0, "Table Length")
        guard length >= UInt32(size) else {
            throw raw.error("header", 0, "Table Length", "\(ACPIHex.format(length)) below the header size \(ACPIHex.format(size))")
        }
        guard UInt64(length) <= UInt64(bytes.count) else {
            throw raw.error("header", 0, "Table Length", "\(ACPIHex.format(length)) beyond the \(ACPIHex.format(bytes.count)) bytes given")
        }
        let table = Array(bytes[0..<Int(length)])
        let header = ACPITableHeader(
            signature: sig, length: length, revision: table[8], checksum: table[9],
            checksumIsValid: sum(table) == 0, oemID: Array(table[10..<16]), oemTableID: Array(table[16..<24]),
            oemRevision: try raw.u32(24, "header", 0, "Oem Revision"), creatorID: Array(table[28..<32]),
            creatorRevision: try raw.u32(32, "header", 0, "Asl Compiler Revision"))
        return (header, ACPIBytes(table, signature: sig))
    }

    /// Appends the header with a zero length and checksum; `finish` fills both in.
    func write(into writer: inout ACPIByteWriter) {
        writer.ascii(Array(signature.utf8), width: 4)
        writer.append(UInt32(0))
        writer.append(revision)
        writer.append(UInt8(0))
        writer.ascii(oemID, width: 6)
        writer.ascii(oemTableID, width: 8)
        writer.append(oemRevision)
        writer.ascii(creatorID, width: 4)
        writer.append(creatorRevision)
    }

    /// Sets Table Length and Checksum of a finished table.
    static func finish(_ writer: inout ACPIByteWriter) throws(ACPIError) -> [UInt8] {
        guard let length = UInt32(exactly: writer.bytes.count) else {
            throw ACPIError(signature: signature(of: writer.bytes) ?? "ACPI", structure: "header", offset: 0,
                            field: "Table Length", problem: "\(writer.bytes.count) bytes do not fit 32 bits")
        }
        writer.put(length, at: 4)
        writer.bytes[9] = 0
        writer.bytes[9] = 0 &- sum(writer.bytes)  // two's complement: the checksum's definition
        return writer.bytes
    }

    /// iasl's rows for the header (`iasl -d`: "Signature" … "Asl Compiler Revision").
    var fields: [ACPIField] {
        [
            ACPIField(offset: 0, length: 4, label: "Signature", value: "\"\(signature)\""),
            .hex(4, 4, "Table Length", UInt64(length)),
            .hex(8, 1, "Revision", UInt64(revision)),
            .hex(9, 1, "Checksum", UInt64(checksum)),
            ACPIField(offset: 10, length: 6, label: "Oem ID", value: "\"\(Self.ascii(oemID))\""),
            ACPIField(offset: 16, length: 8, label: "Oem Table ID", value: "\"\(Self.ascii(oemTableID))\""),
            .hex(24, 4, "Oem Revision", UInt64(oemRevision)),
            ACPIField(offset: 28, length: 4, label: "Asl Compiler ID", value: "\"\(Self.ascii(creatorID))\""),
            .hex(32, 4, "Asl Compiler Revision", UInt64(creatorRevision)),
        ]
    }
}
