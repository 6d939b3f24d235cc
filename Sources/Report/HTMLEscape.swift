/// Text into HTML: `&`, `<`, `>`, `"` and `'` as character references (HTML Living Standard
/// §13.1.4, "escaping a string"), and control characters as `SafeText` writes them, so a
/// scenario name from a file can neither open a tag nor move a terminal's cursor.
enum HTMLEscape {
    static func text(_ s: String) -> String {
        var out = ""
        for ch in SafeText.escape(s) {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }
}
