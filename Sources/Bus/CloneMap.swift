/// An object of the simulated world that can be copied, with everything it references, into an
/// independent world.
///
/// A world is a graph of classes: the machine's bus holds its devices, the devices point back at
/// the bus, kernels and the VMM share objects (an eventfd is the VFIO device's trigger and KVM's
/// irqfd). A copy must keep that shape: an object reached twice is copied once, and a cycle stays a
/// cycle. `CloneMap` keeps the correspondence old object → copy; `clone(into:)` is the one place a
/// class says how it is copied, and it reaches every other object through `map.clone(_:)`.
///
/// Rules for an implementation:
/// - value-typed state is copied as is (structs, enums, arrays of them);
/// - a reference the object owns or shares is `map.clone(reference)`;
/// - a back-reference to an owner (a device's `weak`/`unowned` bus) is taken from the map with
///   `map.copy(of:)` once the owner has recorded its copy, or filled in by the owner after it has
///   cloned the child; an object records its copy (`map.record`) before it clones anything that
///   can lead back to it;
/// - a part that an owner creates in its own `init` (a GIC's distributor) is copied by the
///   owner, which records the part's copy; the part's own `clone(into:)` clones its owner and
///   returns what the owner recorded;
/// - a stored closure is never copied (it would still capture the original objects): the owner
///   installs the copy's closure again in `map.afterCloning`, from the copied objects.
/// A clone is complete after `map.finish()`.
public protocol WorldCloneable: AnyObject {
    /// This object's copy, made through `map` (call `map.clone(self)`, which memoises, rather than
    /// this method directly).
    func clone(into map: inout CloneMap) -> Self
}

/// The correspondence between a world's objects and their copies during one clone.
///
/// Keyed by `ObjectIdentifier` of the original: the originals are kept alive while the map
/// exists, so no identifier is reused by an unrelated object mid-clone.
public struct CloneMap {
    private var copies: [ObjectIdentifier: AnyObject] = [:]
    private var originals: [AnyObject] = []
    private var deferred: [(inout CloneMap) -> Void] = []

    public init() {}

    /// How many distinct objects have been copied.
    public var count: Int { copies.count }

    /// The copy of `object`, made on first request and the same copy every later time.
    public mutating func clone<T: WorldCloneable>(_ object: T) -> T {
        if let done = copy(of: object) { return done }
        let made = object.clone(into: &self)
        if copies[ObjectIdentifier(object)] == nil { record(object, as: made) }
        return made
    }

    public mutating func clone<T: WorldCloneable>(_ object: T?) -> T? {
        guard let object else { return nil }
        let copy: T = clone(object)
        return copy
    }

    public mutating func clone<T: WorldCloneable>(_ objects: [T]) -> [T] {
        var out: [T] = []
        out.reserveCapacity(objects.count)
        for object in objects {
            let copy: T = clone(object)
            out.append(copy)
        }
        return out
    }

    /// The copy of an object held through a protocol existential (`any MMIODevice`), or nil when
    /// its class does not conform to `WorldCloneable`.
    public mutating func cloneDynamic(_ object: AnyObject) -> AnyObject? {
        if let done = copies[ObjectIdentifier(object)] { return done }
        guard let cloneable = object as? any WorldCloneable else { return nil }
        return cloneOpened(cloneable)
    }

    private mutating func cloneOpened<T: WorldCloneable>(_ object: T) -> AnyObject {
        let copy: T = clone(object)
        return copy
    }

    /// Records `copy` as the copy of `original`, so later references (including ones reached
    /// while `original`'s own clone is still being made) resolve to it.
    public mutating func record<T: AnyObject>(_ original: T, as copy: T) {
        let key = ObjectIdentifier(original)
        precondition(copies[key] == nil || copies[key] === copy, "CloneMap: two copies recorded for one \(T.self)")
        if copies[key] == nil { originals.append(original) }
        copies[key] = copy
    }

    /// The copy already recorded for `original`, if any.
    public func copy<T: AnyObject>(of original: T) -> T? {
        guard let found = copies[ObjectIdentifier(original)] else { return nil }
        guard let typed = found as? T else {
            preconditionFailure("CloneMap: the copy of a \(T.self) is a \(type(of: found))")
        }
        return typed
    }

    /// Runs `action` in `finish()`, once the objects reachable the ordinary way have been copied:
    /// where stored closures are installed again on the copies, from copied objects only, and
    /// where a bus copies its devices (so each device is copied by its owner when the owner is
    /// reachable, and on its own otherwise). An action may clone more and defer more.
    public mutating func afterCloning(_ action: @escaping (inout CloneMap) -> Void) {
        deferred.append(action)
    }

    /// Runs the deferred actions, in the order they were registered (and those they defer,
    /// after them), until none is left.
    public mutating func finish() {
        while !deferred.isEmpty {
            let actions = deferred
            deferred = []
            for action in actions { action(&self) }
        }
    }
}
