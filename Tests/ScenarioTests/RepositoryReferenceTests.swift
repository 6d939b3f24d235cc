import Foundation
import Testing

/// The repository explains itself: its sources, tests, docs and READMEs cite only documents that
/// are in it (docs/contributing.md). A clone has nothing else, so a reference to a Markdown file
/// that does not exist, an absolute path on someone's machine, or the name of a private work item
/// is a dead end for the reader.
@Suite("repository references")
struct RepositoryReferenceTests {
    /// One reference that points nowhere.
    struct Finding: CustomStringConvertible, Equatable {
        var file: String
        var line: Int
        var text: String
        var description: String { "\(file):\(line): \(text)" }
    }

    /// Absolute paths of a developer's machine.
    static let absolutePaths = ["/" + "work/", "/" + "home/", "/" + "Users/"]

    /// Names of private notes and work items that once stood in comments. Built from pieces so
    /// that this file does not contain them.
    static let workItemNames = [
        "K1" + "Host", "K2" + "Host", "K3" + "Host", "STRATEGY" + "-CONTRACT", "DESIGN" + " principle",
        "helper" + " A", "helper" + " B", "helper" + " C", "../" + "shared", "../" + "seed",
    ]

    /// The repository's root, from this file's path (Tests/ScenarioTests/…).
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Every file under the root, as paths relative to it, sorted; hidden directories (.git,
    /// .build, .swiftpm) are skipped.
    static func repositoryFiles() -> [String] {
        let rootPath = root.standardizedFileURL.path
        guard let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey],
                                                               options: [.skipsHiddenFiles]) else { return [] }
        var files: [String] = []
        for case let url as URL in enumerator {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            let path = url.standardizedFileURL.path
            guard path.hasPrefix(rootPath + "/") else { continue }
            files.append(String(path.dropFirst(rootPath.count + 1)))
        }
        return files.sorted()
    }

    /// The files whose text is checked: Swift, Markdown and shell files of the package, its tests,
    /// docs and side packages. Fixtures are third-party data, so only their README is ours.
    static func scannedFiles(_ files: [String]) -> [String] {
        let tops = ["Sources/", "Tests/", "docs/", "FuzzTesting/", "Benchmarks/", "Examples/", "Scripts/"]
        return files.filter { path in
            if path == "README.md" || path == "Package.swift" { return true }
            guard tops.contains(where: { path.hasPrefix($0) }) else { return false }
            if path.hasPrefix("Tests/Fixtures/") { return path.hasSuffix(".md") }
            if path.hasPrefix("FuzzTesting/Corpus/") || path.hasPrefix("FuzzTesting/FailCases/") { return false }
            return path.hasSuffix(".swift") || path.hasSuffix(".md") || path.hasSuffix(".sh")
        }
    }

    /// `a/b/../c` → `a/c`; nil when it climbs above the root.
    static func normalize(_ path: String) -> String? {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
            } else {
                parts.append(part)
            }
        }
        return parts.joined(separator: "/")
    }

    /// The tokens ending in `.md` of a line (letters, digits, `_ . / -` before `.md`, and no letter or
    /// digit after it), leaving out URLs.
    static func markdownReferences(in line: Substring) -> [String] {
        let chars = Array(line)
        func isNameChar(_ c: Character) -> Bool { c.isLetter || c.isNumber || "_./-".contains(c) }
        var tokens: [String] = []
        var i = 0
        while i + 3 <= chars.count {
            defer { i += 1 }
            guard chars[i] == ".", chars[i + 1] == "m", chars[i + 2] == "d" else { continue }
            if i + 3 < chars.count, chars[i + 3].isLetter || chars[i + 3].isNumber { continue }
            var start = i
            while start > 0, isNameChar(chars[start - 1]) { start -= 1 }
            let name = String(chars[start..<i])
            guard !name.isEmpty, name.contains(where: { $0.isLetter || $0.isNumber }) else { continue }
            // The whitespace-delimited word around the token: a URL is not a repository reference.
            var wordStart = start
            while wordStart > 0, !chars[wordStart - 1].isWhitespace { wordStart -= 1 }
            if String(chars[wordStart..<i]).contains("://") { continue }
            tokens.append(name + ".md")
        }
        return tokens
    }

    /// The broken references in `text` of file `file`, given the repository's Markdown files.
    static func findings(file: String, text: String, markdownFiles: Set<String>) -> [Finding] {
        let basenames = Set(markdownFiles.map { $0.split(separator: "/").last.map(String.init) ?? $0 })
        let directory = file.split(separator: "/").dropLast().joined(separator: "/")
        var result: [Finding] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            for token in markdownReferences(in: line) {
                let candidates = [directory.isEmpty ? token : directory + "/" + token, token].compactMap(normalize)
                let found = candidates.contains(where: markdownFiles.contains)
                    || (!token.contains("/") && basenames.contains(token))
                if !found { result.append(Finding(file: file, line: index + 1, text: "no such document: \(token)")) }
            }
            for path in absolutePaths where line.contains(path) {
                result.append(Finding(file: file, line: index + 1, text: "absolute path: \(path)"))
            }
            for name in workItemNames where containsWord(line, name) {
                result.append(Finding(file: file, line: index + 1, text: "work-item name: \(name)"))
            }
        }
        return result
    }

    /// `name` in `line` with no letter or digit right after it.
    static func containsWord(_ line: Substring, _ name: String) -> Bool {
        var rest = line[...]
        while let range = rest.range(of: name) {
            if range.upperBound == rest.endIndex { return true }
            let next = rest[range.upperBound]
            if !(next.isLetter || next.isNumber) { return true }
            rest = rest[range.upperBound...]
        }
        return false
    }

    @Test("every cited document, path and name exists in the repository")
    func referencesResolve() throws {
        let files = Self.repositoryFiles()
        let markdown = Set(files.filter { $0.hasSuffix(".md") })
        #expect(markdown.contains("docs/hardware.md"), "the repository root was not found from \(#filePath)")
        let scanned = Self.scannedFiles(files)
        #expect(scanned.count > 100)
        var findings: [Finding] = []
        for file in scanned {
            let text = try String(contentsOf: Self.root.appendingPathComponent(file), encoding: .utf8)
            findings += Self.findings(file: file, text: text, markdownFiles: markdown)
        }
        #expect(findings.isEmpty, "\(findings.map(\.description).joined(separator: "\n"))")
    }

    @Test("the scanner reports planted bad references and accepts good ones")
    func scannerFindsPlants() {
        let markdown: Set<String> = ["README.md", "docs/hardware.md", "docs/strategies.md", "FuzzTesting/README.md"]
        let missing = "NOTES" + ".md"
        let text = """
            /// Field positions from \(missing) §1.5.
            /// See docs/hardware.md §STE and [strategies](strategies.md) and \("../" + "README.md").
            /// The recipe is in README.md here; https://example.org/\(missing) is a URL.
            /// Built at /\("work")/main on a laptop.
            let h = \("K2" + "Host").identity()
            /// Design notes in docs/\("Hardware" + ".md") (wrong case).
            """
        let file = "docs/" + "guide" + ".md"
        let found = Self.findings(file: file, text: text, markdownFiles: markdown)
        #expect(found == [
            Finding(file: file, line: 1, text: "no such document: \(missing)"),
            Finding(file: file, line: 4, text: "absolute path: \(Self.absolutePaths[0])"),
            Finding(file: file, line: 5, text: "work-item name: \("K2" + "Host")"),
            Finding(file: file, line: 6, text: "no such document: docs/\("Hardware" + ".md")"),
        ])
    }
}
