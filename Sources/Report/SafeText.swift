/// Makes user-supplied text (scenario names and summaries, file names, device tree node
/// names) safe to print on a terminal, in a Markdown table or in a Mermaid diagram.
///
/// Every control character — C0 (U+0000–U+001F, newline and tab included), DEL (U+007F) and
/// C1 (U+0080–U+009F) — is written as a Swift-style escape, `\u{1b}` for ESC, so a name cannot
/// move the cursor, recolour the terminal, set its title, or start a new table row or diagram
/// line. Everything else, including non-ASCII letters, is kept. This is the one function the
/// reports and error messages use for it.
public enum SafeText {
    /// `text` with every control character escaped; `keepingNewlines` keeps U+000A, for
    /// multi-line text the program itself composed around user strings (error messages,
    /// topology summaries).
    public static func escape(_ text: String, keepingNewlines: Bool = false) -> String {
        guard text.unicodeScalars.contains(where: { isControl($0) && !(keepingNewlines && $0 == "\n") }) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isControl(scalar) && !(keepingNewlines && scalar == "\n") {
                out.append(contentsOf: "\\u{\(String(scalar.value, radix: 16))}".unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    /// C0, DEL or C1.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }
}
