/// An append-only record of what a model did, for tests and reports, whose storage does not
/// grow with the length of a run: it counts every element appended and keeps the most recent
/// `capacity` of them (a ring), or all of them when `capacity` is nil.
///
/// A long-running world appends per MSI (an eventfd's signals, KVM's injections, a CPU
/// interface's acknowledges, a function's requests, the guest handlers' calls); with an
/// unbounded array its memory grows with every MSI and an occasional append reallocates and
/// copies the whole history. Here the ring grows to `capacity` once and is then overwritten in
/// place, so a steady stream of appends allocates nothing. Callers that need the whole history
/// (a test replaying it) pass `capacity: nil`.
///
/// `count` is the number of elements ever appended (since the last `removeAll`), not the number
/// retained: "how many injections so far" stays exact however many were dropped from the ring.
/// Iterating yields the retained elements, oldest first.
public struct BoundedLog<Element>: Sequence {
    /// Retained elements in a ring: `storage[head]` is the oldest once the ring is full.
    private var storage: ContiguousArray<Element> = []
    private var head = 0
    /// Elements appended since creation or the last `removeAll`.
    public private(set) var count = 0
    /// How many elements are kept; nil keeps all. Lowering it drops the oldest.
    public var capacity: Int? {
        didSet { if let capacity, capacity < storage.count { keepNewest(Swift.max(capacity, 0)) } }
    }

    public init(capacity: Int?) {
        self.capacity = capacity.map { Swift.max($0, 0) }
    }

    /// Appends `element` (counted; kept unless the ring has capacity 0).
    public mutating func append(_ element: Element) {
        count &+= 1
        guard let capacity else {
            storage.append(element)
            return
        }
        if storage.count < capacity {
            // Grow by doubling, but never past the capacity: the storage ends at `capacity`
            // elements (plus the allocator's rounding) whatever the array's own growth would do.
            if storage.count == storage.capacity {
                storage.reserveCapacity(Swift.min(capacity, Swift.max(storage.count &* 2, 4)))
            }
            storage.append(element)
        } else if capacity > 0 {
            storage[head] = element
            head = head &+ 1 == capacity ? 0 : head &+ 1
        }
    }

    /// The most recently appended element, if it is retained.
    public var last: Element? {
        guard !storage.isEmpty else { return nil }
        return storage[(head == 0 ? storage.count : head) &- 1]
    }

    /// Whether nothing was appended.
    public var isEmpty: Bool { count == 0 }

    /// How many elements are retained (≤ `capacity`).
    public var retainedCount: Int { storage.count }

    /// Elements the storage holds room for: at most `capacity` plus the allocator's rounding.
    public var storageCapacity: Int { storage.capacity }

    /// The retained elements, oldest first.
    public var retained: [Element] { Array(self) }

    /// The retained elements appended after the first `total` (a `count` read earlier), oldest
    /// first: what happened since then, less whatever the ring has already dropped.
    public func since(_ total: Int) -> [Element] {
        let new = count &- total
        guard new > 0 else { return [] }
        return Array(retained.suffix(new))
    }

    /// Forgets every element and resets `count`; the ring keeps its storage.
    public mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
        head = 0
        count = 0
    }

    private mutating func keepNewest(_ n: Int) {
        let kept = Array(retained.suffix(n))
        storage = ContiguousArray(kept)
        head = 0
    }

    public struct Iterator: IteratorProtocol {
        let storage: ContiguousArray<Element>
        let head: Int
        var offset = 0
        public mutating func next() -> Element? {
            guard offset < storage.count else { return nil }
            var index = head &+ offset
            if index >= storage.count { index &-= storage.count }
            offset &+= 1
            return storage[index]
        }
    }

    public func makeIterator() -> Iterator { Iterator(storage: storage, head: head) }

    public var underestimatedCount: Int { storage.count }
}

extension BoundedLog: Equatable where Element: Equatable {
    public static func == (a: BoundedLog, b: BoundedLog) -> Bool {
        a.count == b.count && a.capacity == b.capacity && a.elementsEqual(b)
    }
}

extension BoundedLog: Sendable where Element: Sendable {}
