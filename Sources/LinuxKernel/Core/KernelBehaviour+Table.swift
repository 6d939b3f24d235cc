extension KernelBehaviour {
    /// The release table of docs/kernel-releases.md: one row per behaviour, one column per
    /// named release, "yes" where the release has it. A test renders it and compares it with
    /// the document, so the document cannot drift from the code.
    public static var markdownTable: String {
        let releases = KernelConfiguration.Version.allCases
        var text = "| behaviour | commit | " + releases.map(\.rawValue).joined(separator: " | ") + " |\n"
        text += "|---|---|" + releases.map { _ in "---|" }.joined() + "\n"
        for behaviour in allCases {
            let cells = releases.map { $0 >= behaviour.since ? "yes" : "no" }
            text += "| `\(behaviour.rawValue)`: \(behaviour.summary) | \(behaviour.commit) | " + cells.joined(separator: " | ") + " |\n"
        }
        return text
    }
}
