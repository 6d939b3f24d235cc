/// The root complex's memory-window decoder: every BAR window its functions decode now, sorted
/// by address, so that a CPU access finds its function and BAR in O(log n) instead of asking
/// every function in turn.
///
/// What decodes is what PCIe says a function decodes (r6.0 §7.5.1.1.3, §7.5.1.2.1): each
/// implemented memory BAR's window [BAR address, + size) while the function's Command.Memory
/// Space Enable is set, nothing while it is clear. The root complex refreshes a function's
/// windows whenever its configuration space may have changed them (every configuration write —
/// BAR sizing writes of all-ones included — a Function Level Reset, the attach), so the index
/// always equals a scan of the functions.
///
/// Overlapping windows are a software error PCIe leaves undefined; the model keeps the answer
/// the scan gave: the function attached first wins, and within a function the lowest BAR index.
/// A window whose end would pass 2^64 decodes up to the top of the address space (the scan's
/// `address − base < size` reads so too).
struct BARDecodeIndex {
    struct Window: Hashable {
        var base: UInt64
        /// The window's last byte.
        var last: UInt64
        /// The function's position in attach order (lower wins an overlap).
        var order: Int
        var bar: Int
    }

    /// Every window, sorted by (base, order, bar).
    private(set) var windows: [Window] = []
    /// `maxLast[k]`: the highest `last` among `windows[0...k]`, so a lookup stops walking back
    /// as soon as no earlier window can reach the address.
    private var maxLast: [UInt64] = []
    /// The windows of each function, by attach order.
    private var byFunction: [[Window]] = []

    /// The windows of the function at `order` are now `new` (any order); a no-op when they did
    /// not change.
    mutating func replace(order: Int, with new: [Window]) {
        guard order >= 0 else { return }
        while byFunction.count <= order { byFunction.append([]) }
        let sorted = new.sorted { ($0.base, $0.bar) < ($1.base, $1.bar) }
        guard byFunction[order] != sorted else { return }
        var firstChanged = windows.count
        if !byFunction[order].isEmpty {
            if let first = windows.firstIndex(where: { $0.order == order }) { firstChanged = first }
            windows.removeAll { $0.order == order }
        }
        for window in sorted {
            let at = insertionPoint(window)
            windows.insert(window, at: at)
            firstChanged = min(firstChanged, at)
        }
        byFunction[order] = sorted
        recomputeMaxLast(from: firstChanged)
    }

    /// The index of the first window ordered after `window`.
    private func insertionPoint(_ window: Window) -> Int {
        var low = 0
        var high = windows.count
        while low < high {
            let mid = low + (high - low) / 2
            let w = windows[mid]
            if (w.base, w.order, w.bar) < (window.base, window.order, window.bar) { low = mid + 1 } else { high = mid }
        }
        return low
    }

    private mutating func recomputeMaxLast(from start: Int) {
        if maxLast.count > windows.count { maxLast.removeLast(maxLast.count - windows.count) }
        while maxLast.count < windows.count { maxLast.append(0) }
        var running: UInt64 = start > 0 && start - 1 < maxLast.count ? maxLast[start - 1] : 0
        for k in max(start, 0)..<windows.count {
            running = k == 0 ? windows[0].last : max(running, windows[k].last)
            maxLast[k] = running
        }
    }

    /// The window holding `address` (the lowest attach order, then the lowest BAR, when several
    /// do).
    func lookup(_ address: UInt64) -> Window? {
        // The last window starting at or below the address.
        var low = 0
        var high = windows.count
        while low < high {
            let mid = low + (high - low) / 2
            if windows[mid].base <= address { low = mid + 1 } else { high = mid }
        }
        var k = low - 1
        var best: Window?
        while k >= 0, maxLast[k] >= address {
            let w = windows[k]
            if w.last >= address, best.map({ (w.order, w.bar) < ($0.order, $0.bar) }) ?? true { best = w }
            k -= 1
        }
        return best
    }

    /// The windows `config` decodes now, for the function at `order`.
    static func windows(of config: ConfigurationSpace, order: Int) -> [Window] {
        guard config.memorySpaceEnabled else { return [] }
        var out: [Window] = []
        for (index, definition) in config.bars.enumerated() {
            guard let definition, definition.size > 0, let base = config.barAddress(index) else { continue }
            let (last, overflow) = base.addingReportingOverflow(definition.size - 1)
            out.append(Window(base: base, last: overflow ? .max : last, order: order, bar: index))
        }
        return out
    }
}
