extension DeviceTreeNode {
    /// The node with `property` set: replacing the first property of that name, else appended.
    public func setting(_ property: DeviceTreeProperty) -> DeviceTreeNode {
        var copy = self
        if let index = copy.properties.firstIndex(where: { $0.name == property.name }) {
            copy.properties[index] = property
        } else {
            copy.properties.append(property)
        }
        return copy
    }
}

extension DeviceTree {
    /// The tree with `property` set on the node at `path` (see `DeviceTreeNode.setting`), nil
    /// when no node has that path. Memory reservations and the boot CPU are kept.
    public func setting(_ property: DeviceTreeProperty, at path: String) -> DeviceTree? {
        guard index(ofPath: path) != nil else { return nil }
        let components = path.split(separator: "/").map(String.init)
        func rebuild(_ node: DeviceTreeNode, _ rest: ArraySlice<String>) -> DeviceTreeNode {
            guard let name = rest.first else { return node.setting(property) }
            var copy = node
            guard let child = copy.children.firstIndex(where: { $0.name == name }) else { return node }
            copy.children[child] = rebuild(copy.children[child], rest.dropFirst())
            return copy
        }
        return DeviceTree(root: rebuild(root, components[...]), memoryReservations: memoryReservations, bootCPUID: bootCPUID)
    }
}
