import Firmware

extension IORTWalker {
    /// `iort_node_map_id(node, id_in, &id_out, type_mask)`: follows ID mappings from `node`
    /// until a node whose type is in `typeMask` (`IORT_TYPE_MASK`), translating the ID at each
    /// step. Per node:
    /// - its type in the mask → that node, with the current ID;
    /// - no mappings → failure; the first mapping without an output node (Linux: a zero Output
    ///   Reference) → "ID map has NULL parent reference", failure;
    /// - every mapping but the node's own-ID one (`iort_get_id_mapping_index`) is tried in order
    ///   with `iort_id_map`, passing whether an earlier mapping already matched at its last ID
    ///   (-EAGAIN): the first full match (0) wins; an -EAGAIN match is remembered and used when
    ///   no later mapping takes over;
    /// - no match and nothing remembered → failure; otherwise on to the chosen output node.
    ///
    /// On failure the result is (nil, `id`): "Map input ID to output ID unchanged on mapping
    /// failure". Linux loops without bound; the model gives up after `hopLimit` nodes (see
    /// there), and a mapping whose output node is not in the table (only possible for an `IORT`
    /// built in code; the reader rejects such references) ends the walk as a failure.
    public func mapID(from start: Int, id idIn: UInt32, typeMask: UInt32) -> (node: Int?, id: UInt32) {
        var node = start
        var id = idIn
        for _ in 0..<Self.hopLimit {
            guard iort.nodes.indices.contains(node) else { break }
            let current = iort.nodes[node]
            if Self.typeMask(current.type) & typeMask != 0 { return (node, id) }
            guard let first = current.mappings.first else { break }
            guard iort.nodes.indices.contains(first.outputNode) else {
                fwBug("\(nodeName(node)) ID map has NULL parent reference")
                break
            }
            let special = idMappingIndex(node)
            let mapID = id
            var remembered: Int?        // out_ref
            var matched: Int?
            for index in current.mappings.indices where index != special {
                switch idMap(node: node, mapping: index, id: mapID, checkOverlap: remembered != nil) {
                case .mapped(let out):
                    id = out
                    matched = index
                case .endOfRange(let out):
                    id = out
                    remembered = current.mappings[index].outputNode
                case .noMatch:
                    break
                }
                if matched != nil { break }
            }
            if let index = matched {
                node = current.mappings[index].outputNode
            } else if let next = remembered {
                node = next
            } else {
                break
            }
        }
        return (nil, idIn)
    }
}
