import Testing
import Bus

/// A small object graph with sharing, a cycle through a back-reference, a protocol existential
/// and a stored closure: what `CloneMap` must preserve when a world is copied.
private protocol Node: AnyObject { var label: String { get } }

private final class Owner: WorldCloneable, Node {
    var label: String
    var children: [Child] = []
    var shared: Leaf?
    var any: (any Node)?
    /// Stored closure: re-installed on the copy after cloning, never copied.
    var onPoke: (() -> Void)?
    var pokes = 0

    init(label: String) { self.label = label }

    func installPoke() { onPoke = { [unowned self] in self.pokes += 1 } }

    func clone(into map: inout CloneMap) -> Owner {
        let copy = Owner(label: label)
        map.record(self, as: copy)
        copy.pokes = pokes
        copy.children = map.clone(children)
        copy.shared = map.clone(shared)
        if let any { copy.any = map.cloneDynamic(any) as? any Node }
        if onPoke != nil { map.afterCloning { _ in copy.installPoke() } }
        return copy
    }
}

private final class Child: WorldCloneable {
    unowned let owner: Owner
    var leaf: Leaf
    init(owner: Owner, leaf: Leaf) { self.owner = owner; self.leaf = leaf }
    func clone(into map: inout CloneMap) -> Child {
        guard let owner = map.copy(of: owner) else { preconditionFailure("owner cloned first") }
        return Child(owner: owner, leaf: map.clone(leaf))
    }
}

private final class Leaf: WorldCloneable, Node {
    var label: String
    init(label: String) { self.label = label }
    func clone(into map: inout CloneMap) -> Leaf { Leaf(label: label) }
}

private final class Opaque: Node { let label = "opaque" }

@Suite("CloneMap")
struct CloneMapTests {
    @Test("sharing, back-references and existentials keep their shape; copies are independent")
    func shape() {
        let owner = Owner(label: "o")
        let leaf = Leaf(label: "l")
        owner.children = [Child(owner: owner, leaf: leaf), Child(owner: owner, leaf: leaf)]
        owner.shared = leaf
        owner.any = leaf
        var map = CloneMap()
        let copy = map.clone(owner)
        map.finish()
        #expect(copy !== owner)
        #expect(copy.children.allSatisfy { $0.owner === copy })
        let copiedLeaf = copy.shared
        #expect(copiedLeaf !== leaf)
        #expect(copy.children.allSatisfy { $0.leaf === copiedLeaf })
        #expect(copy.any === copiedLeaf)
        #expect(map.count == 4, "owner, two children and one leaf")
        copiedLeaf?.label = "changed"
        #expect(leaf.label == "l")
    }

    @Test("a stored closure is re-bound to the copy after finish(), the original keeps its own")
    func closuresRebound() {
        let owner = Owner(label: "o")
        owner.installPoke()
        var map = CloneMap()
        let copy = map.clone(owner)
        #expect(copy.onPoke == nil, "not installed before finish()")
        map.finish()
        copy.onPoke?()
        copy.onPoke?()
        owner.onPoke?()
        #expect(copy.pokes == 2 && owner.pokes == 1)
    }

    @Test("an existential whose class is not cloneable is reported as nil, not copied by reference")
    func notCloneable() {
        var map = CloneMap()
        #expect(map.cloneDynamic(Opaque()) == nil)
        let leaf = Leaf(label: "x")
        #expect(map.cloneDynamic(leaf) !== leaf)
    }
}
