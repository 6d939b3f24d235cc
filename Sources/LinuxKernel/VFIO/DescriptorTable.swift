/// The free-descriptor bookkeeping of one process's file table (`alloc_fd` → `find_next_fd`):
/// the lowest free descriptor at or above the first one handed out (3: 0–2 are stdio).
///
/// Linux finds it with the `open_fds` bitmap (`find_next_zero_bit` over `full_fds_bits`); the
/// model keeps a high-water mark (every descriptor at or above it is free) and a binary min-heap
/// of the descriptors closed below it, so an allocation or a close is O(log n) and the answer is
/// the same lowest free number POSIX requires (open(2): "the lowest-numbered file descriptor not
/// currently open").
struct DescriptorTable {
    /// Every descriptor at or above this one is free.
    private(set) var highWater: Int32
    /// The free descriptors below `highWater`, as a binary min-heap.
    private var freed: [Int32] = []

    init(first: Int32) { highWater = first }

    /// Takes the lowest free descriptor.
    mutating func allocate() -> Int32 {
        guard let lowest = freed.first else {
            defer { highWater &+= 1 }
            return highWater
        }
        let last = freed.removeLast()
        if !freed.isEmpty {
            freed[0] = last
            siftDown(0)
        }
        return lowest
    }

    /// Returns an open descriptor (one `allocate` handed out and not yet released).
    mutating func release(_ fd: Int32) {
        freed.append(fd)
        siftUp(freed.count - 1)
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard freed[child] < freed[parent] else { return }
            freed.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < freed.count else { return }
            var smallest = left
            if left + 1 < freed.count, freed[left + 1] < freed[left] { smallest = left + 1 }
            guard freed[smallest] < freed[parent] else { return }
            freed.swapAt(smallest, parent)
            parent = smallest
        }
    }
}
