import Bus

/// What the translator decided for one transaction.
public enum TranslationOutcome: Hashable, Sendable {
    case translated(TranslationResult)
    /// The device (`SMMUv3`) records it if `fault.record` and the event queue is enabled, then
    /// terminates the transaction with an abort or RAZ/WI per `fault.abort`.
    case fault(SMMUFault)
    /// STE.Config = abort (§5.2: the transaction is aborted and no event is recorded).
    case abortedWithoutEvent
}

/// A successful translation.
public struct TranslationResult: Hashable, Sendable {
    public var output: PhysicalAddress
    /// The stage-1 output (nested or S1+S2), if there was a stage 2.
    public var intermediate: IPA?
    /// The size of the translation (combined: the smaller of the two stages); for bypass, the
    /// smallest granule (4 KiB), since no descriptor gives a size.
    public var pageSize: UInt64
    /// Effective permissions (S1 ∩ S2) for the transaction's privilege and instruction kind.
    public var readable: Bool
    public var writable: Bool
    /// Whether the translation came from the TLB (no descriptor read).
    public var fromTLB: Bool

    public init(output: PhysicalAddress, intermediate: IPA? = nil, pageSize: UInt64, readable: Bool, writable: Bool, fromTLB: Bool) {
        self.output = output
        self.intermediate = intermediate
        self.pageSize = pageSize
        self.readable = readable
        self.writable = writable
        self.fromTLB = fromTLB
    }
}
