/// The small text formats of sysfs and procfs, each parsed to a value or an error naming the
/// file and line.
public struct SysfsParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public var path: String
    public var line: Int
    public var problem: String

    public init(path: String, line: Int, problem: String) {
        self.path = path
        self.line = line
        self.problem = problem
    }

    public var description: String { "\(path):\(line): \(problem)" }
}

enum SysfsText {
    /// The lines of a text file, without their newline.
    static func lines(_ bytes: [UInt8]) -> [String] {
        var text = String(decoding: bytes, as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        return text.isEmpty ? [] : text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// A one-line attribute, trimmed of its newline and surrounding spaces.
    static func value(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self).trimmingSpaces
    }

    /// A `0x`-prefixed (or bare) hexadecimal number, as `vendor`, `device` and `class` hold.
    static func hex(_ text: String) -> UInt64? {
        var digits = Substring(text)
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") { digits = digits.dropFirst(2) }
        guard !digits.isEmpty, digits.count <= 16 else { return nil }
        return UInt64(digits, radix: 16)
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\n" || f == "\t" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\n" || l == "\t" || l == "\r" { s.removeLast() }
        return String(s)
    }
}
