/// The "did you mean" of the command line, the same rule scenario files use
/// (`ScenarioFileValues.suggestion`): an edit distance of at most a third of the longer word,
/// or a prefix of at least 3 characters; ties to the first candidate, so the answer is
/// deterministic.
public enum DidYouMean {
    /// The candidate `word` most likely meant, if any is close enough.
    public static func suggestion(for word: String, among candidates: [String]) -> String? {
        ScenarioFileValues.suggestion(for: word, among: candidates)
    }

    /// "unknown scenario 'sed' (did you mean 'seed'? one of seed, …)".
    public static func unknown(_ what: String, _ word: String, among candidates: [String]) -> String {
        let list = candidates.joined(separator: ", ")
        if let match = suggestion(for: word, among: candidates) {
            return "unknown \(what) '\(word)' (did you mean '\(match)'? one of \(list))"
        }
        return "unknown \(what) '\(word)' (one of \(list))"
    }
}
