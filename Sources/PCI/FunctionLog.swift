import Bus

/// What a function was asked to emit.
public enum FunctionRequest: Hashable, Sendable, CustomStringConvertible {
    case dma(DeviceTransaction.Kind)
    case msi(vector: Int)
    case msix(vector: Int)

    public var description: String {
        switch self {
        case .dma(let kind): kind == .read ? "DMA read" : "DMA write"
        case .msi(let vector): "MSI vector \(vector)"
        case .msix(let vector): "MSI-X vector \(vector)"
        }
    }
}

/// Why a function did not put a request on the link.
public enum NotSentReason: Hashable, Sendable, CustomStringConvertible {
    /// Command.Bus Master Enable is 0: the function may issue no memory request, and MSI/MSI-X
    /// messages are memory writes (PCIe r6.0 §7.5.1.1.3). The request is dropped, not latched:
    /// the spec defines no pending state for it. (A vector already pending stays pending and is
    /// sent by the next event that re-examines it once bus mastering is back.)
    case busMasterDisabled
    /// MSI Enable is 0 (and the function has no MSI-X to latch into): no message may be sent.
    case interruptsDisabled
    /// The vector is outside the MSI vectors allocated (2^MME) or the MSI-X table.
    case noSuchVector
    /// The function has no MSI or MSI-X capability of the kind asked for.
    case noCapability
    /// The function is not attached to a root complex.
    case notAttached
    /// A DMA size other than 1, 2, 4 or 8 bytes.
    case unsupportedSize

    public var description: String {
        switch self {
        case .busMasterDisabled: "Bus Master Enable is clear"
        case .interruptsDisabled: "MSI is disabled"
        case .noSuchVector: "no such vector"
        case .noCapability: "no such capability"
        case .notAttached: "not attached"
        case .unsupportedSize: "unsupported size"
        }
    }
}

/// The result of one request.
public enum RequestOutcome: Hashable, Sendable, CustomStringConvertible {
    /// The request left the function; the root complex tagged it (the transaction shows the
    /// StreamID and DeviceID it carried) and this is what came back.
    case sent(DeviceTransaction, TransactionResult)
    /// An interrupt whose vector is masked: its Pending bit is now set (§6.1.4.5).
    case pending
    case notSent(NotSentReason)

    public var transaction: DeviceTransaction? {
        if case .sent(let transaction, _) = self { return transaction }
        return nil
    }

    public var result: TransactionResult? {
        if case .sent(_, let result) = self { return result }
        return nil
    }

    public var description: String {
        switch self {
        case .sent(let t, let r): "sent \(t) → \(r.status)"
        case .pending: "pending"
        case .notSent(let why): "not sent (\(why))"
        }
    }
}

/// One line of a function's log: what it tried to send and what happened. Messages sent later
/// from a Pending bit (on unmask) appear as their own `.sent` entries.
public struct FunctionLogEntry: Hashable, Sendable {
    public var request: FunctionRequest
    public var outcome: RequestOutcome

    public init(request: FunctionRequest, outcome: RequestOutcome) {
        self.request = request
        self.outcome = outcome
    }
}
