/// Bounded little-endian reads from a table's bytes (ACPI 6.5 §5.2: all multi-byte fields are
/// little-endian). Every read checks its range and throws an `ACPIError` naming the structure
/// and field; nothing here traps.
struct ACPIBytes {
    let bytes: [UInt8]
    let signature: String

    init(_ bytes: [UInt8], signature: String) {
        self.bytes = bytes
        self.signature = signature
    }

    var count: Int { bytes.count }

    func error(_ structure: String, _ offset: Int, _ field: String, _ problem: String) -> ACPIError {
        ACPIError(signature: signature, structure: structure, offset: offset, field: field, problem: problem)
    }

    /// `width` bytes at `at` (absolute), little-endian; `structure`/`base` name the structure in errors.
    func uint(_ at: Int, _ width: Int, _ structure: String, _ base: Int, _ field: String) throws(ACPIError) -> UInt64 {
        guard at >= 0, width >= 1, width <= 8, at <= bytes.count, bytes.count - at >= width else {
            throw error(structure, base, field, "at \(ACPIHex.format(at)) (\(width) bytes) beyond table end \(ACPIHex.format(bytes.count))")
        }
        var value: UInt64 = 0
        for i in 0..<width { value |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
        return value
    }

    func u8(_ at: Int, _ structure: String, _ base: Int, _ field: String) throws(ACPIError) -> UInt8 {
        UInt8(truncatingIfNeeded: try uint(at, 1, structure, base, field))
    }
    func u16(_ at: Int, _ structure: String, _ base: Int, _ field: String) throws(ACPIError) -> UInt16 {
        UInt16(truncatingIfNeeded: try uint(at, 2, structure, base, field))
    }
    func u32(_ at: Int, _ structure: String, _ base: Int, _ field: String) throws(ACPIError) -> UInt32 {
        UInt32(truncatingIfNeeded: try uint(at, 4, structure, base, field))
    }
    func u64(_ at: Int, _ structure: String, _ base: Int, _ field: String) throws(ACPIError) -> UInt64 {
        try uint(at, 8, structure, base, field)
    }

    func slice(_ at: Int, _ length: Int, _ structure: String, _ base: Int, _ field: String) throws(ACPIError) -> [UInt8] {
        guard at >= 0, length >= 0, at <= bytes.count, bytes.count - at >= length else {
            throw error(structure, base, field, "at \(ACPIHex.format(at)) (\(length) bytes) beyond table end \(ACPIHex.format(bytes.count))")
        }
        return Array(bytes[at..<(at + length)])
    }
}

/// Little-endian appends for the writers.
struct ACPIByteWriter {
    var bytes: [UInt8] = []

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
    mutating func append(_ raw: [UInt8]) { bytes.append(contentsOf: raw) }
    mutating func zeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: max(0, count))) }
    /// A fixed-width ASCII field, padded with `pad` or cut to `width`.
    mutating func ascii(_ text: [UInt8], width: Int, pad: UInt8 = 0x20) {
        var field = Array(text.prefix(width))
        field += repeatElement(pad, count: width - field.count)
        bytes.append(contentsOf: field)
    }
    mutating func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { raw in
            for (i, byte) in raw.enumerated() where offset + i < bytes.count { bytes[offset + i] = byte }
        }
    }
}
