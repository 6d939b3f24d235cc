/// Structured trace records. Every layer reports what it did (which descriptor it read, what the
/// value meant, which table it looked up) so that a report can show one MSI step by step.
///
/// Tracing is off unless a `TraceLog` is attached: hot paths test one optional and do nothing
/// else, so an untraced translation allocates nothing.
public struct TraceLayer: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let bus = TraceLayer(rawValue: "bus")
    public static let smmu = TraceLayer(rawValue: "smmu")
    public static let its = TraceLayer(rawValue: "its")
    /// A GICv2m MSI frame (Arm Server Base System Architecture's MSI_SETSPI_NS frame): it turns a
    /// device write into an SPI with no ITS in between, so its steps are not the ITS's.
    public static let v2m = TraceLayer(rawValue: "v2m")
    public static let redistributor = TraceLayer(rawValue: "redistributor")
    public static let cpu = TraceLayer(rawValue: "cpu")
    public static let pci = TraceLayer(rawValue: "pci")
    public static let rootComplex = TraceLayer(rawValue: "root-complex")
}

/// One thing a layer did.
public struct TraceRecord: Hashable, Sendable, CustomStringConvertible {
    /// What sort of record it is, so that readers select records by kind rather than by words.
    public enum Kind: Hashable, Sendable {
        /// A step of what is being followed.
        case step
        /// An MMIO register read on the bus (software polling a register, not a step of a
        /// device's transaction); traces of one MSI leave these out.
        case mmioRead
    }

    public var kind: Kind
    public var layer: TraceLayer
    /// A short name of the step ("STE fetch", "S1 L2 descriptor", "ITT lookup").
    public var step: String
    /// The address the step read or wrote, if it touched memory or a register.
    public var address: UInt64?
    /// The value read or written.
    public var value: UInt64?
    /// What the value meant, in words ("table → 0x4000_2000", "page, AF=1, AP=RW").
    public var detail: String

    public init(layer: TraceLayer, step: String, address: UInt64? = nil, value: UInt64? = nil, detail: String = "",
                kind: Kind = .step) {
        self.kind = kind
        self.layer = layer
        self.step = step
        self.address = address
        self.value = value
        self.detail = detail
    }

    public var description: String {
        var parts = ["[\(layer)] \(step)"]
        if let address { parts.append("@ \(Hex.format(address))") }
        if let value { parts.append("= \(Hex.format(value, minDigits: 16))") }
        if !detail.isEmpty { parts.append("— \(detail)") }
        return parts.joined(separator: " ")
    }
}

/// An append-only log of trace records, shared by the layers of one simulation.
public final class TraceLog {
    public private(set) var records: [TraceRecord] = []
    /// The typed journal of the traced MSI (every layer's records, in order), for renderings
    /// that follow another tool's event names (`trace --format qemu-trace`).
    public var journal: [JournalEntry] = []

    public init() {}

    public func append(_ record: TraceRecord) { records.append(record) }

    public func append(_ layer: TraceLayer, _ step: String, address: UInt64? = nil, value: UInt64? = nil, _ detail: String = "",
                       kind: TraceRecord.Kind = .step) {
        records.append(TraceRecord(layer: layer, step: step, address: address, value: value, detail: detail, kind: kind))
    }

    public func removeAll() { records.removeAll() }
}
