import CYaml
import Firmware

/// Bounds a scenario file's aliases before Yams composes it.
///
/// Composing is where an alias bomb hurts: Yams (6.x, `Parser.loadMapping`) checks every
/// mapping for repeated keys by hashing its keys, and hashing a `Node` walks it through every
/// alias, so a 400-byte file whose key is ten levels of ten aliases costs 10¹⁰ steps. Yams has
/// no option to bound this, so the reader first walks libyaml's event stream itself (the same
/// `yaml_parser_parse` events Yams composes from, nothing built) and counts the nodes the
/// document would have with every alias expanded:
/// - more than `InputLimits.maximumYAMLNodes` is refused, naming the limit and the alias that
///   crossed it;
/// - a mapping key that is an alias of a sequence or a mapping is refused outright: no
///   scenario key is a collection, and such a key is only ever a way to make hashing expensive.
/// Sizes saturate at the limit, so the count itself cannot overflow. A syntax error ends the
/// scan quietly: composing reports it with its position.
enum ScenarioFileAliases {
    /// A node's expanded size and whether it is a collection.
    private struct Size { var nodes: Int; var collection: Bool }

    /// An open sequence or mapping: its expanded size so far, its anchor, and (for a mapping)
    /// how many children have been seen, so even counts are keys.
    private struct Open { var nodes = 1; var anchor: String?; var isMapping: Bool; var children = 0 }

    static func check(_ text: String, path: String, limit: Int = InputLimits.maximumYAMLNodes) throws(ScenarioFileError) {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        var utf8 = Array(text.utf8)
        try utf8.withUnsafeMutableBufferPointer { (buffer) throws(ScenarioFileError) in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var anchors: [String: Size] = [:]
            var stack: [Open] = []
            var total = 0
            func anchorName(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
                pointer.map { String(cString: $0) }
            }
            func tooMany(_ line: Int, _ column: Int, _ what: String) -> ScenarioFileError {
                ScenarioFileError(path: path, line: line, column: column,
                                  message: "\(what): with its aliases expanded the document has more nodes than \(InputLimits.describe("YAML node", limit, unit: "nodes"))")
            }
            /// Counts `nodes` more in the expanded document.
            func count(_ nodes: Int, line: Int, column: Int, alias: String?) throws(ScenarioFileError) {
                total = min(limit + 1, total + nodes)
                if total > limit { throw tooMany(line, column, alias.map { "alias *\($0)" } ?? "this node") }
            }
            /// Adds a finished node to its parent, refusing an alias of a collection as a key.
            func finish(_ size: Size, line: Int, column: Int, alias: String?) throws(ScenarioFileError) {
                guard var parent = stack.popLast() else { return }
                if parent.isMapping, parent.children % 2 == 0, size.collection, let alias {
                    throw ScenarioFileError(path: path, line: line, column: column,
                                            message: "a mapping key is the alias *\(alias) of a sequence or mapping; keys must be plain words")
                }
                parent.children += 1
                parent.nodes = min(limit + 1, parent.nodes + size.nodes)
                stack.append(parent)
            }
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return }
                defer { yaml_event_delete(&event) }
                let line = Int(event.start_mark.line) + 1
                let column = Int(event.start_mark.column) + 1
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return
                case YAML_SCALAR_EVENT:
                    let size = Size(nodes: 1, collection: false)
                    if let anchor = anchorName(event.data.scalar.anchor) { anchors[anchor] = size }
                    try count(1, line: line, column: column, alias: nil)
                    try finish(size, line: line, column: column, alias: nil)
                case YAML_ALIAS_EVENT:
                    let name = anchorName(event.data.alias.anchor) ?? ""
                    // An undefined alias: composing reports it.
                    let size = anchors[name] ?? Size(nodes: 1, collection: false)
                    try finish(size, line: line, column: column, alias: name)
                    try count(size.nodes, line: line, column: column, alias: name)
                case YAML_SEQUENCE_START_EVENT:
                    try count(1, line: line, column: column, alias: nil)
                    stack.append(Open(anchor: anchorName(event.data.sequence_start.anchor), isMapping: false))
                case YAML_MAPPING_START_EVENT:
                    try count(1, line: line, column: column, alias: nil)
                    stack.append(Open(anchor: anchorName(event.data.mapping_start.anchor), isMapping: true))
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    guard let open = stack.popLast() else { return }
                    let size = Size(nodes: open.nodes, collection: true)
                    if let anchor = open.anchor { anchors[anchor] = size }
                    try finish(size, line: line, column: column, alias: nil)
                default:
                    continue
                }
            }
        }
    }
}
