import Bus

/// Why the kernel said no: the function that decided, the errno it returned and the address
/// window or ID it was deciding about. A uAPI call still fails with the bare `Errno` (that is
/// all user space sees); the deciding function also records one of these in its kernel's
/// `KernelRefusals`, so a report can name the cause — the function a kernel engineer would
/// grep for — instead of the ioctl that surfaced it.
public struct KernelRefusal: Hashable, Sendable, CustomStringConvertible {
    /// The Linux function that returned the errno (`iopt_check_iova`,
    /// `arm_smmu_attach_prepare_vmaster`, …).
    public var function: String
    public var errno: Errno
    /// The window or ID it refused: "IOVA 0x0800_0000–0x080f_ffff", "StreamID 0x100".
    public var subject: String
    /// Why, in the function's own terms: "intersects the reserved SW_MSI window 0x0800_0000–0x080f_ffff".
    public var reason: String

    public init(function: String, errno: Errno, subject: String, reason: String) {
        self.function = function
        self.errno = errno
        self.subject = subject
        self.reason = reason
    }

    /// "`iopt_check_iova` returned EINVAL for IOVA 0x0800_0000–0x0bff_ffff: it intersects …".
    public var description: String { "\(function) returned \(errno.name) for \(subject): \(reason)" }

    /// "0x0800_0000–0x080f_ffff": an inclusive address window as reports print it.
    public static func window(_ start: UInt64, _ last: UInt64) -> String {
        "\(Hex.format(start))–\(Hex.format(last))"
    }
}

/// The refusals one kernel recorded, oldest first: what `dmesg` plus a reading of the source
/// would tell the engineer. Bounded to the last `capacity`, so a long run cannot grow it.
public final class KernelRefusals {
    public private(set) var all: [KernelRefusal] = []
    static let capacity = 64
    public init() {}

    /// Records `refusal` and returns its errno, for `throw kernel.refusals.record(…)`.
    @discardableResult
    public func record(_ refusal: KernelRefusal) -> Errno {
        if all.count == Self.capacity { all.removeFirst() }
        all.append(refusal)
        recordedCount += 1
        return refusal.errno
    }

    /// `record(KernelRefusal(…))`.
    public func refuse(_ errno: Errno, in function: String, for subject: String, because reason: String) -> Errno {
        record(KernelRefusal(function: function, errno: errno, subject: subject, reason: reason))
    }

    /// A mark to pass to `latest(since:matching:)`.
    public var mark: Int { recordedCount }
    private var recordedCount = 0

    /// The newest refusal recorded after `mark` whose errno is `errno`: the cause of a call that
    /// failed with `errno` (a refusal recorded and then tolerated by a caller has another
    /// errno or comes before the mark, or the failing call's own refusal comes after it).
    public func latest(since mark: Int, matching errno: Errno) -> KernelRefusal? {
        let fresh = min(max(recordedCount - mark, 0), all.count)
        return all.suffix(fresh).last { $0.errno == errno }
    }
}

/// A forked world's refusals start with the original's, and the same mark, so a step's
/// `latest(since:matching:)` in the fork sees what it would have seen in the original.
extension KernelRefusals: WorldCloneable {
    public func clone(into map: inout CloneMap) -> KernelRefusals {
        let copy = KernelRefusals()
        copy.all = all
        copy.recordedCount = recordedCount
        return copy
    }
}
