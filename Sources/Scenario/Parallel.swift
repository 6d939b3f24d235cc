import Dispatch

/// Runs independent jobs on every core and returns their results in job order, so the output
/// never depends on scheduling. Each job builds its own worlds; the model has no shared
/// mutable state (no mutable statics), so separate worlds can run on separate threads.
public enum Parallel {
    final class Slots<T>: @unchecked Sendable {
        var values: [T?]
        init(_ count: Int) { values = Array(repeating: nil, count: count) }
    }

    public static func map<T: Sendable, R: Sendable>(_ items: [T], _ body: @Sendable (T) -> R) -> [R] {
        let slots = Slots<R>(items.count)
        // Each iteration writes only its own slot: no two threads touch the same element.
        slots.values.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let base = buffer
            DispatchQueue.concurrentPerform(iterations: items.count) { index in
                base[index] = body(items[index])
            }
        }
        return slots.values.compactMap { $0 }
    }
}
