/// How a device's transaction ends, as the device sees it.
///
/// PCIe reports a terminated request as a completion with Unsupported Request or Completer Abort
/// status; the SMMU chooses between an abort and RAZ/WI per CD.A / STE (SMMUv3 §5.5, "terminate
/// with abort" vs "terminate with RAZ/WI"). The details of why (an event record, a bus decode
/// error) stay with the layer that decided it; this is only what comes back down the link.
public enum TransactionStatus: Hashable, Sendable, CustomStringConvertible {
    /// The access completed; for a read, `TransactionResult.data` holds the data.
    case completed
    /// Terminated with an abort (PCIe UR/CA completion).
    case aborted
    /// Terminated as read-as-zero / write-ignored.
    case readAsZeroWriteIgnored

    public var description: String {
        switch self {
        case .completed: "completed"
        case .aborted: "aborted"
        case .readAsZeroWriteIgnored: "RAZ/WI"
        }
    }
}

/// The completion of one device transaction.
public struct TransactionResult: Hashable, Sendable {
    public var status: TransactionStatus
    /// Read data (zero for writes and for terminated reads).
    public var data: UInt64

    public init(status: TransactionStatus, data: UInt64 = 0) {
        self.status = status
        self.data = data
    }

    public static let completedWrite = TransactionResult(status: .completed)
}

/// Where a root complex sends its devices' transactions: the SMMU and the system bus behind it,
/// or straight to the bus when no SMMU translates them. The PCI module only knows this protocol,
/// so it never depends on the SMMU; the machine wires the two together.
public protocol UpstreamPort: AnyObject {
    func issue(_ transaction: DeviceTransaction) -> TransactionResult
}
