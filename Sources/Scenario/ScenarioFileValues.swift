import Bus
import PCI

/// The scalar grammars of scenario files that are not plain enumerations: numbers, BDFs,
/// page sizes, and the "did you mean" used by every unknown key and value. Each parser answers
/// a value or the sentence that explains the mistake (the caller adds file, line, column and key).
enum ScenarioFileValues {
    /// A non-negative number: decimal or `0x` hex, either with `_` separators anywhere after the
    /// prefix (`0x0800_0000`, `1_000`), as `Hex.parse` reads them. Signs, floats and YAML 1.1's
    /// octal/sexagesimal forms are not numbers here: a scenario says exactly one thing.
    static func number(_ text: String) -> Result<UInt64, Mistake> {
        var body = Substring(text)
        var isHex = false
        if body.hasPrefix("0x") || body.hasPrefix("0X") {
            isHex = true
            body = body.dropFirst(2)
        }
        let digits = body.filter { $0 != "_" }
        let isDigit: (Character) -> Bool = isHex ? { $0.isHexDigit } : { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.allSatisfy(isDigit) else {
            if text.hasPrefix("-") { return .failure(Mistake("expected a non-negative number, found '\(text)'")) }
            return .failure(Mistake("expected a number (decimal or 0x-hex), found '\(text)'"))
        }
        guard let value = UInt64(String(digits), radix: isHex ? 16 : 10) else {
            return .failure(Mistake("number '\(text)' does not fit in 64 bits"))
        }
        return .success(value)
    }

    /// A host PCI function as `lspci` prints it, `bus:device.function` in hex (PCIe r6.0
    /// §2.2.6.2: an 8-bit bus, a 5-bit device, a 3-bit function). Each part is 1–2 hex digits
    /// (1 for the function); values that do not fit their field are rejected rather than
    /// truncated the way `RequesterID(bus:device:function:)` would.
    static func requesterID(_ text: String) -> Result<RequesterID, Mistake> {
        let expected = "expected bus:device.function in hex, e.g. 00:01.0"
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            return .failure(Mistake("bad BDF '\(text)' (\(expected))"))
        }
        let devfn = parts[1].split(separator: ".", omittingEmptySubsequences: false)
        guard devfn.count == 2 else {
            return .failure(Mistake("bad BDF '\(text)' (\(expected))"))
        }
        func field(_ s: Substring, maxDigits: Int) -> UInt8? {
            guard !s.isEmpty, s.count <= maxDigits, s.allSatisfy(\.isHexDigit) else { return nil }
            return UInt8(s, radix: 16)
        }
        guard let bus = field(parts[0], maxDigits: 2), let device = field(devfn[0], maxDigits: 2),
              let function = field(devfn[1], maxDigits: 1) else {
            return .failure(Mistake("bad BDF '\(text)' (\(expected))"))
        }
        guard device < 32 else {
            return .failure(Mistake("bad BDF '\(text)': device 0x\(String(device, radix: 16)) does not fit in 5 bits (0…1f)"))
        }
        guard function < 8 else {
            return .failure(Mistake("bad BDF '\(text)': function \(function) does not fit in 3 bits (0…7)"))
        }
        return .success(RequesterID(bus: bus, device: device, function: function))
    }

    /// Page sizes a scenario may choose: Linux arm64 `PAGE_SIZE` as the host and guest models
    /// build it (CONFIG_ARM64_4K_PAGES / CONFIG_ARM64_64K_PAGES).
    static let pageSizes: [(String, Granule)] = [("4K", .size4K), ("64K", .size64K)]

    static func pageSizeName(_ granule: Granule) -> String { granule.description }

    /// MSI's Multiple Message Capable/Enable encodings allow 1, 2, 4, 8, 16 or 32 vectors
    /// (PCIe r6.0 §7.7.1.2, a 3-bit log2 field with 0b110/0b111 reserved); MSI-X's Table Size
    /// is 11 bits holding N−1, so 1…2048 (PCIe r6.0 §7.7.2.2).
    static func checkVectors(_ vectors: UInt64, _ interrupts: DeviceDescription.Interrupts) -> Mistake? {
        switch interrupts {
        case .msix:
            if (1...2048).contains(vectors) { return nil }
            return Mistake("\(vectors) MSI-X vectors is out of range (1…2048: Table Size is 11 bits of N−1)")
        case .msi:
            if [1, 2, 4, 8, 16, 32].contains(vectors) { return nil }
            return Mistake("\(vectors) MSI vectors is not a power of two from 1 to 32 (Multiple Message Enable)")
        }
    }

    /// The allowed word closest to `word`, if close enough to be what was meant: an edit
    /// distance of at most max(1, a third of the longer word), or `word` being a prefix of
    /// at least 3 characters (which counts as the closest match: `dma` suggests `dma-strict`).
    /// Case is ignored, so `Legacy` suggests `legacy`. Ties go to the first in `candidates`'
    /// order, so the answer is deterministic.
    static func suggestion(for word: String, among candidates: [String]) -> String? {
        let lowered = word.lowercased()
        var best: (String, Int)?
        for candidate in candidates {
            let other = candidate.lowercased()
            let distance = editDistance(Array(lowered.unicodeScalars), Array(other.unicodeScalars))
            let limit = max(1, max(lowered.unicodeScalars.count, other.unicodeScalars.count) / 3)
            let prefix = lowered.unicodeScalars.count >= 3 && other.hasPrefix(lowered)
            guard distance <= limit || prefix else { continue }
            let score = prefix ? 0 : distance
            if let current = best, current.1 <= score { continue }
            best = (candidate, score)
        }
        return best?.0
    }

    /// Levenshtein distance, two rows. Inputs are scenario-file words, so the quadratic cost is
    /// bounded by the caller: words longer than 64 scalars are not compared (no suggestion).
    static func editDistance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        guard a.count <= 64, b.count <= 64 else { return Int.max }
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = Array(repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }

    /// "unknown value 'smmuv' (did you mean 'smmuv3-accel'? expected none, smmuv3-accel)";
    /// `listName` is what precedes the list ("expected", "allowed keys:").
    static func unknown(_ what: String, _ word: String, expected candidates: [String], listName: String = "expected") -> Mistake {
        let list = candidates.joined(separator: ", ")
        if let match = suggestion(for: word, among: candidates) {
            return Mistake("unknown \(what) '\(word)' (did you mean '\(match)'? \(listName) \(list))")
        }
        return Mistake("unknown \(what) '\(word)' (\(listName) \(list))")
    }
}

/// A message without a place yet; the reader locates it.
struct Mistake: Error, Hashable, Sendable {
    var message: String
    init(_ message: String) { self.message = message }
}

extension RequesterID {
    /// A BDF as scenario files and `lspci` write it (`bus:device.function` in hex, see
    /// `ScenarioFileValues.requesterID`), or the sentence saying what is wrong with it.
    public static func parsing(bdf text: String) -> Result<RequesterID, ScenarioValueMistake> {
        ScenarioFileValues.requesterID(text).mapError { ScenarioValueMistake(message: $0.message) }
    }
}

/// Why a value a user typed is not one (the sentence only).
public struct ScenarioValueMistake: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
