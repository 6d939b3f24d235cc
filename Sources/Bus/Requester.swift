/// Who issued a bus access. The bus passes it to MMIO devices because some registers behave
/// differently by requester: GITS_TRANSLATER takes its DeviceID from the sideband of a device
/// write (GICv3 §5.2) and a CPU store carries none.
public enum Requester: Hashable, Sendable, CustomStringConvertible {
    /// A processing element, by index.
    case cpu(Int)
    /// A device's transaction after the SMMU, with the DeviceID the root complex attached
    /// (`msi-map` of its requester ID).
    case device(DeviceID)
    /// A hardware unit's own access: an SMMU table walk or queue write, an ITS table read.
    case hardware

    public var description: String {
        switch self {
        case .cpu(let index): "cpu\(index)"
        case .device(let id): "device(DeviceID \(id))"
        case .hardware: "hardware"
        }
    }
}

/// A device's transaction as it leaves a PCIe function, before translation: SMMUv3 "incoming
/// transaction" (§3.1) with its sideband. The root complex fills StreamID and DeviceID from the
/// requester ID; the SMMU uses StreamID/SubstreamID; the ITS receives DeviceID with the write.
public struct DeviceTransaction: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable { case read, write }

    public var kind: Kind
    /// The address the device emitted: an IOVA, whatever the SMMU configuration makes of it.
    public var address: IOVA
    /// Access size in bytes (1, 2, 4 or 8).
    public var size: Int
    /// The data of a write (low `size` bytes); ignored for reads.
    public var data: UInt64
    public var streamID: StreamID
    /// Present when the transaction has a PASID (SMMUv3 SSV=1).
    public var substreamID: SubstreamID?
    public var deviceID: DeviceID
    /// SMMUv3 PnU: privileged (1) or unprivileged (0). PCIe requests without a PASID prefix are
    /// unprivileged data accesses.
    public var privileged: Bool
    /// SMMUv3 InD: instruction (1) or data (0).
    public var instruction: Bool

    public init(kind: Kind, address: IOVA, size: Int, data: UInt64 = 0, streamID: StreamID,
                substreamID: SubstreamID? = nil, deviceID: DeviceID,
                privileged: Bool = false, instruction: Bool = false) {
        self.kind = kind
        self.address = address
        self.size = size
        self.data = data
        self.streamID = streamID
        self.substreamID = substreamID
        self.deviceID = deviceID
        self.privileged = privileged
        self.instruction = instruction
    }

    public var isWrite: Bool { kind == .write }

    public var description: String {
        let op = kind == .write ? "write \(Hex.format(data, minDigits: 1))" : "read"
        let ssid = substreamID.map { " SSID \($0)" } ?? ""
        return "\(op) \(size)B @ \(address) (StreamID \(streamID)\(ssid), DeviceID \(deviceID))"
    }
}
