import Yams

/// YAML text → Yams `Node` tree, with every Yams/libyaml error turned into a located
/// `ScenarioFileError`.
///
/// libyaml reports scanner, parser and composer errors with a mark (Yams makes it 1-based);
/// reader errors (bytes that are not allowed characters) with a character offset, which is
/// turned into a line and column here. libyaml caps nesting at 1000 levels
/// (`MAX_NESTING_LEVEL` in its parser.c), which bounds Yams' recursive composer.
///
/// Repeated keys: Yams (6.x, `Parser.checkDuplicates`) rejects them while composing, but its
/// error carries only the mark of the *first* occurrence (of the alphabetically first repeated
/// key). The reader then looks for the next occurrence of that key in the text (the same key
/// token followed by `:`) and reports that one, since the second key is the one to delete;
/// if it cannot find it, it reports the first.
enum ScenarioFileSyntax {
    static func compose(_ text: String, path: String) throws(ScenarioFileError) -> Node? {
        do {
            // `.basic` resolves no implicit types: the reader reads every scalar's raw text
            // itself. `.utf8` explicitly, so Yams does not consult YAMS_DEFAULT_ENCODING.
            return try Yams.compose(yaml: text, .basic, .default, .utf8)
        } catch let error as YamlError {
            throw located(error, text: text, path: path)
        } catch {
            throw ScenarioFileError(path: path, line: 1, column: 1, message: "YAML error: \(error)")
        }
    }

    static func located(_ error: YamlError, text: String, path: String) -> ScenarioFileError {
        func syntax(_ context: YamlError.Context?, _ problem: String, _ mark: Mark) -> ScenarioFileError {
            var message = "YAML syntax error: \(problem)"
            if let context {
                message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            return ScenarioFileError(path: path, line: mark.line, column: mark.column, message: message)
        }
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            return syntax(context, problem, mark)
        case .reader(let problem, let offset, let value, _):
            let (line, column) = offset.map { position(ofCharacter: $0, in: text) } ?? (1, 1)
            let code = value >= 0 ? " (character U+\(String(value, radix: 16, uppercase: true)))" : ""
            return ScenarioFileError(path: path, line: line, column: column, message: "YAML syntax error: \(problem)\(code)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let key = duplicates.first ?? "?"
            let first = (line: context.mark.line, column: context.mark.column)
            let later = laterOccurrence(of: key, afterLine: first.line, column: first.column, in: text)
            let mark = later ?? first
            let also = later == nil ? "" : " (first at line \(first.line), column \(first.column))"
            return ScenarioFileError(path: path, line: mark.line, column: mark.column, key: key,
                                     message: "duplicate key '\(ScenarioFileNodes.shortened(key))'\(also)")
        default:
            return ScenarioFileError(path: path, line: 1, column: 1, message: "YAML error: \(error)")
        }
    }

    /// YAML's line breaks (YAML 1.1 §4.1.4 b-char, libyaml's IS_BREAK): LF, CR, NEL, LS, PS;
    /// CR LF counts once. libyaml's marks count lines this way, so every position here does too.
    static func isLineBreak(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x0A, 0x0D, 0x85, 0x2028, 0x2029: true
        default: false
        }
    }

    /// The text's lines as YAML counts them, as Unicode scalars (columns count scalars).
    static func lines(of text: String) -> [[Unicode.Scalar]] {
        var lines: [[Unicode.Scalar]] = [[]]
        var previousCR = false
        for scalar in text.unicodeScalars {
            defer { previousCR = scalar == "\r" }
            if scalar == "\n" && previousCR { continue }
            if isLineBreak(scalar) {
                lines.append([])
            } else {
                lines[lines.count - 1].append(scalar)
            }
        }
        return lines
    }

    /// 1-based line and column of the `offset`-th Character (Yams counts reader offsets in
    /// Characters; CR LF is one Character and one break).
    static func position(ofCharacter offset: Int, in text: String) -> (Int, Int) {
        var line = 1
        var column = 1
        for (index, character) in text.enumerated() {
            if index >= offset { break }
            if let first = character.unicodeScalars.first, isLineBreak(first) {
                line += 1
                column = 1
            } else {
                column += character.unicodeScalars.count
            }
        }
        return (line, column)
    }

    /// Where `key` appears as a key again after `mark`: the key text (plain, or in single or
    /// double quotes) at the start of a line's content, after `- `, `{` or `,`, followed by
    /// optional blanks and `:`.
    static func laterOccurrence(of key: String, afterLine line: Int, column: Int, in text: String) -> (line: Int, column: Int)? {
        let lines = lines(of: text)
        let spellings = [key, "'\(key)'", "\"\(key)\""].map { Array($0.unicodeScalars) }
        var lineIndex = line - 1
        var start = column
        while lineIndex >= 0 && lineIndex < lines.count {
            let scalars = lines[lineIndex]
            var column = max(start, 0)
            while column < scalars.count {
                if isKeyBoundary(scalars, before: column) {
                    for spelling in spellings where matches(scalars, at: column, spelling) {
                        var after = column + spelling.count
                        while after < scalars.count, scalars[after] == " " || scalars[after] == "\t" { after += 1 }
                        if after < scalars.count, scalars[after] == ":" {
                            return (lineIndex + 1, column + 1)
                        }
                    }
                }
                column += 1
            }
            lineIndex += 1
            start = 0
        }
        return nil
    }

    private static func isKeyBoundary(_ scalars: [Unicode.Scalar], before column: Int) -> Bool {
        var i = column - 1
        while i >= 0, scalars[i] == " " || scalars[i] == "\t" { i -= 1 }
        guard i >= 0 else { return true }
        return scalars[i] == "-" || scalars[i] == "{" || scalars[i] == "," || scalars[i] == "?"
    }

    private static func matches(_ scalars: [Unicode.Scalar], at column: Int, _ spelling: [Unicode.Scalar]) -> Bool {
        guard column + spelling.count <= scalars.count else { return false }
        for (i, s) in spelling.enumerated() where scalars[column + i] != s { return false }
        return true
    }
}
