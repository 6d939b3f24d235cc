/// POSIX ustar archives (POSIX.1-1988 `ustar` interchange format, as `pax` in POSIX.1-2017
/// describes it), enough for snapshots: regular files, directories and symbolic links, with the
/// GNU long-name records (`L`, `K`) and pax extended headers (`x`: `path`, `linkpath`) that GNU
/// and busybox tar write for long paths. Reading is bounded by the archive's length: every
/// size is checked against the bytes left, so a corrupt header is an error naming its offset.
public enum TarArchive {
    /// One member.
    public enum Member: Hashable, Sendable {
        case file([UInt8])
        case symbolicLink(target: String)
        case directory
    }

    /// A header or size that does not fit, with the offset of its 512-byte block.
    public struct FormatError: Error, Hashable, Sendable, CustomStringConvertible {
        public var offset: Int
        public var problem: String
        public var description: String { "offset \(offset): \(problem)" }
    }

    static let block = 512

    /// The members of `bytes` by path (leading `./` and `/` removed), in archive order; a later
    /// member of the same path replaces an earlier one, as extraction would.
    public static func read(_ bytes: [UInt8]) throws(FormatError) -> [(path: String, member: Member)] {
        var members: [(path: String, member: Member)] = []
        var index: [String: Int] = [:]
        var offset = 0
        var longName: String?
        var longLink: String?
        while offset + block <= bytes.count {
            let header = bytes[offset..<offset + block]
            if header.allSatisfy({ $0 == 0 }) { break }   // end-of-archive blocks
            guard checksumMatches(header) else { throw FormatError(offset: offset, problem: "header checksum does not match") }
            let size = try number(header, at: 124, length: 12, offset: offset)
            let type = header[header.startIndex + 156]
            let dataStart = offset + block
            guard size <= bytes.count - dataStart else {
                throw FormatError(offset: offset, problem: "member of \(size) bytes runs past the archive's end (\(bytes.count) bytes)")
            }
            let data = Array(bytes[dataStart..<dataStart + size])
            let padded = (size + block - 1) / block * block
            offset = dataStart + padded
            switch type {
            case UInt8(ascii: "L"): longName = cString(data[...]); continue
            case UInt8(ascii: "K"): longLink = cString(data[...]); continue
            case UInt8(ascii: "x"):
                let records = paxRecords(data)
                longName = records["path"] ?? longName
                longLink = records["linkpath"] ?? longLink
                continue
            case UInt8(ascii: "g"): continue
            default: break
            }
            var name = longName ?? {
                let prefix = field(header, at: 345, length: 155)
                let base = field(header, at: 0, length: 100)
                return prefix.isEmpty ? base : prefix + "/" + base
            }()
            let linkName = longLink ?? field(header, at: 157, length: 100)
            longName = nil
            longLink = nil
            while name.hasPrefix("./") { name.removeFirst(2) }
            while name.hasPrefix("/") { name.removeFirst() }
            while name.hasSuffix("/") { name.removeLast() }
            let member: Member
            switch type {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): member = .file(data)
            case UInt8(ascii: "2"): member = .symbolicLink(target: linkName)
            case UInt8(ascii: "5"): member = .directory
            default: continue   // hard links, devices, FIFOs: nothing a snapshot holds
            }
            if name.isEmpty || name == "." { continue }
            if let existing = index[name] { members[existing].member = member } else {
                index[name] = members.count
                members.append((name, member))
            }
        }
        return members
    }

    /// An archive of `members` (paths relative, `/`-separated), with every parent directory
    /// before its contents, in bytewise path order, mtime 0 and owner root: the same members
    /// give the same bytes. A path that fits neither the 100-byte name nor a 155-byte prefix
    /// split gets a GNU `L` record.
    public static func write(_ members: [(path: String, member: Member)]) -> [UInt8] {
        var all: [String: Member] = [:]
        for (path, member) in members {
            all[path] = member
            var parent = path
            while let slash = parent.lastIndex(of: "/") {
                parent = String(parent[..<slash])
                if all[parent] == nil { all[parent] = .directory }
            }
        }
        let paths = all.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        var out: [UInt8] = []
        for path in paths {
            guard let member = all[path] else { continue }
            switch member {
            case .file(let data):
                out += header(path: path, type: UInt8(ascii: "0"), size: data.count, mode: 0o644, link: "")
                out += data
                out += [UInt8](repeating: 0, count: (block - data.count % block) % block)
            case .symbolicLink(let target):
                out += header(path: path, type: UInt8(ascii: "2"), size: 0, mode: 0o777, link: target)
            case .directory:
                out += header(path: path + "/", type: UInt8(ascii: "5"), size: 0, mode: 0o755, link: "")
            }
        }
        out += [UInt8](repeating: 0, count: 2 * block)
        return out
    }

    static func header(path: String, type: UInt8, size: Int, mode: Int, link: String) -> [UInt8] {
        var out: [UInt8] = []
        var name = Array(path.utf8)
        var prefix: [UInt8] = []
        if name.count > 100 {
            // Split at a slash so the name part fits 100 bytes and the prefix 155.
            if let split = name.indices.last(where: { name[$0] == UInt8(ascii: "/") && $0 <= 155 && name.count - $0 - 1 <= 100 && $0 > 0 }) {
                prefix = Array(name[..<split])
                name = Array(name[(split + 1)...])
            } else {
                let long = Array(path.utf8) + [0]
                out += header(path: "././@LongLink", type: UInt8(ascii: "L"), size: long.count, mode: 0o644, link: "")
                out += long + [UInt8](repeating: 0, count: (block - long.count % block) % block)
                name = Array(name.prefix(100))
            }
        }
        if link.utf8.count > 100 {
            let long = Array(link.utf8) + [0]
            out += header(path: "././@LongLink", type: UInt8(ascii: "K"), size: long.count, mode: 0o644, link: "")
            out += long + [UInt8](repeating: 0, count: (block - long.count % block) % block)
        }
        var h = [UInt8](repeating: 0, count: block)
        func put(_ bytes: [UInt8], at: Int, length: Int) {
            for (i, b) in bytes.prefix(length).enumerated() { h[at + i] = b }
        }
        func octal(_ value: Int, length: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: max(0, length - 1 - digits.count)) + digits).utf8) + [0]
        }
        put(name, at: 0, length: 100)
        put(octal(mode, length: 8), at: 100, length: 8)
        put(octal(0, length: 8), at: 108, length: 8)
        put(octal(0, length: 8), at: 116, length: 8)
        put(octal(size, length: 12), at: 124, length: 12)
        put(octal(0, length: 12), at: 136, length: 12)
        h[156] = type
        put(Array(link.utf8), at: 157, length: 100)
        put(Array("ustar\0".utf8), at: 257, length: 6)
        put(Array("00".utf8), at: 263, length: 2)
        put(Array("root".utf8), at: 265, length: 32)
        put(Array("root".utf8), at: 297, length: 32)
        put(prefix, at: 345, length: 155)
        for i in 148..<156 { h[i] = UInt8(ascii: " ") }
        let sum = h.reduce(0) { $0 + Int($1) }
        put(octal(sum, length: 7) + [UInt8(ascii: " ")], at: 148, length: 8)
        return out + h
    }

    /// The header checksum: the byte sum with the checksum field read as spaces (unsigned, as
    /// POSIX defines it; some old writers summed signed bytes, accepted too).
    static func checksumMatches(_ header: ArraySlice<UInt8>) -> Bool {
        let base = header.startIndex
        guard let stored = try? number(header, at: 148, length: 8, offset: 0) else { return false }
        var unsigned = 0
        var signed = 0
        for i in 0..<block {
            let b = (148..<156).contains(i) ? UInt8(ascii: " ") : header[base + i]
            unsigned += Int(b)
            signed += Int(Int8(bitPattern: b))
        }
        return stored == unsigned || stored == signed
    }

    /// An octal number field (NUL- or space-terminated), or GNU base-256 when the top bit is set.
    static func number(_ header: ArraySlice<UInt8>, at: Int, length: Int, offset: Int) throws(FormatError) -> Int {
        let bytes = header[(header.startIndex + at)..<(header.startIndex + at + length)]
        if let first = bytes.first, first & 0x80 != 0 {
            var value = 0
            for (i, b) in bytes.enumerated() {
                let digit = i == 0 ? Int(b & 0x7F) : Int(b)
                let (shifted, o1) = value.multipliedReportingOverflow(by: 256)
                let (sum, o2) = shifted.addingReportingOverflow(digit)
                guard !o1, !o2 else { throw FormatError(offset: offset, problem: "size field overflows") }
                value = sum
            }
            return value
        }
        var value = 0
        var seenDigit = false
        for b in bytes {
            if b == 0 || (b == UInt8(ascii: " ") && seenDigit) { break }
            if b == UInt8(ascii: " ") { continue }
            guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(b) else {
                throw FormatError(offset: offset, problem: "numeric field at byte \(at) is not octal")
            }
            seenDigit = true
            let (shifted, o1) = value.multipliedReportingOverflow(by: 8)
            let (sum, o2) = shifted.addingReportingOverflow(Int(b - UInt8(ascii: "0")))
            guard !o1, !o2 else { throw FormatError(offset: offset, problem: "numeric field overflows") }
            value = sum
        }
        return value
    }

    static func field(_ header: ArraySlice<UInt8>, at: Int, length: Int) -> String {
        cString(header[(header.startIndex + at)..<(header.startIndex + at + length)])
    }

    static func cString(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// pax records: `"%d %s=%s\n"`, the length counting the whole record.
    static func paxRecords(_ data: [UInt8]) -> [String: String] {
        var records: [String: String] = [:]
        var i = 0
        while i < data.count {
            // The length counts the whole record, so it must reach past its own digits and
            // space; a shorter one (a corrupt "1 x") would make the value's range run backwards.
            guard let space = data[i...].firstIndex(of: UInt8(ascii: " ")),
                  let length = Int(String(decoding: data[i..<space], as: UTF8.self)), length > space - i,
                  length <= data.count - i else { break }
            let record = data[(space + 1)..<(i + length)]
            if let eq = record.firstIndex(of: UInt8(ascii: "=")) {
                let key = String(decoding: record[record.startIndex..<eq], as: UTF8.self)
                var value = Array(record[(eq + 1)...])
                if value.last == UInt8(ascii: "\n") { value.removeLast() }
                records[key] = String(decoding: value, as: UTF8.self)
            }
            i += length
        }
        return records
    }
}
