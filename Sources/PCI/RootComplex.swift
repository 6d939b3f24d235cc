import Bus

/// What the root complex attaches to requests from one Requester ID.
public struct RequesterRoute: Hashable, Sendable, CustomStringConvertible {
    /// The Requester ID as it arrives at the root complex (after any bridge aliasing).
    public var requesterID: RequesterID
    /// `iommu-map(rid)`; nil when the RID has no IOMMU (no map, no matching entry, or an invalid
    /// map): such requests take `RootComplex.untranslatedUpstream`.
    public var streamID: StreamID?
    /// `msi-map(rid)`, or the RID itself (see `RootComplex`).
    public var deviceID: DeviceID
    /// How each map answered; nil when the property is absent.
    public var iommuLookup: RequesterIDMap.Lookup?
    public var msiLookup: RequesterIDMap.Lookup?

    public var description: String {
        let stream = streamID.map { "StreamID \($0)" } ?? "no StreamID (untranslated)"
        return "RID \(requesterID.hex) → \(stream), DeviceID \(deviceID)"
    }
}

/// A PCIe root complex: ECAM configuration access, a memory window for BARs, and the upstream
/// side where every request from its functions is tagged with StreamID and DeviceID and handed
/// to an `UpstreamPort`.
///
/// ID mapping (`iommuMap`, `msiMap`; DT `iommu-map`/`msi-map` with their masks, or the same
/// mapping an IORT root complex node gives). The RID used is the DMA alias (see
/// `PCIToPCIBridge`):
/// - StreamID = iommu-map(alias). If `iommuMap` is nil (property absent) or has no entry for
///   the RID, or is invalid, the RID is not behind the IOMMU (Linux `of_iommu_configure` gives it
///   no IOMMU), and its requests go to `untranslatedUpstream` — wire that to the system bus
///   directly, or leave it nil to terminate them (Unsupported Request → `.aborted`). The
///   transaction's `streamID` field then carries the RID, which nothing downstream interprets.
/// - DeviceID = msi-map(alias). If `msiMap` is nil the RID is the DeviceID (`of_map_id`: "no map
///   implies no translation"; the MSI controller comes from `msi-parent`, DT pci-msi.txt). If the
///   map has no entry for the RID (or is invalid), the DeviceID is also the RID — what
///   `of_map_id`'s bypass returns — while Linux would have given such a device no MSI domain;
///   the trace says so.
/// - With `upstream` nil, translated requests are terminated (`.aborted`).
public final class RootComplex {
    public let name: String
    /// Bus numbers the ECAM window decodes; its size is `busRange.count << 20` bytes.
    public let busRange: ClosedRange<UInt8>
    /// The PCI bus address of the memory window's offset 0. With the usual identity `ranges`
    /// (QEMU `virt`: 0x1000_0000) this is the window's physical base.
    public let memoryWindowBase: UInt64
    public var iommuMap: RequesterIDMap?
    public var msiMap: RequesterIDMap?
    /// Where requests with a StreamID go: the SMMU.
    public var upstream: UpstreamPort?
    /// Where requests without an `iommu-map` entry go: the system bus, bypassing the SMMU.
    public var untranslatedUpstream: UpstreamPort?
    public var trace: TraceLog?
    /// The host bridge's INTx inputs: (devfn of the root-bus device, pin 1…4 after the
    /// bridges' swizzle, level). The machine wires it as the platform description says.
    public var intxSink: ((_ rootDevfn: UInt8, _ pin: UInt8, _ asserted: Bool) -> Void)?
    /// The journal of the message being followed: each request's route (RID → StreamID/DeviceID).
    public var journal: Journal?

    public private(set) var functions: [PCIFunction] = []
    public private(set) var bridges: [PCIToPCIBridge] = []
    private var functionsByRID: [UInt16: PCIFunction] = [:]
    private var bridgesByRID: [UInt16: PCIToPCIBridge] = [:]
    /// Each function's position in `functions` (its attach order), by Requester ID.
    private var attachOrder: [UInt16: Int] = [:]
    /// The BAR windows the functions decode now, by address (`BARDecodeIndex`).
    private var barIndex = BARDecodeIndex()

    public private(set) lazy var ecam = ECAM(rootComplex: self)
    public private(set) lazy var memoryWindow = PCIMemoryWindow(rootComplex: self)

    public init(name: String = "pcie", busRange: ClosedRange<UInt8> = 0...255, memoryWindowBase: UInt64 = 0x1000_0000) {
        self.name = name
        self.busRange = busRange
        self.memoryWindowBase = memoryWindowBase
    }

    /// Bytes of ECAM space the bus range needs (1 MiB per bus).
    public var ecamSize: UInt64 { UInt64(busRange.count) << 20 }

    // MARK: Topology

    /// Attaches `function`, on the root bus or behind `bridge` (which must already be attached).
    public func attach(_ function: PCIFunction, behind bridge: PCIToPCIBridge? = nil) throws(PCIConfigurationError) {
        let rid = function.requesterID.rawValue
        guard functionsByRID[rid] == nil, bridgesByRID[rid] == nil else {
            throw .invalidCapability("Requester ID \(function.requesterID) is already attached")
        }
        if let bridge, bridge.rootComplex !== self {
            throw .invalidCapability("bridge \(bridge.requesterID) is not attached to \(name)")
        }
        function.rootComplex = self
        function.parentBridge = bridge
        attachOrder[rid] = functions.count
        functions.append(function)
        functionsByRID[rid] = function
        decodeMayHaveChanged(function)
    }

    /// Re-reads which BAR windows `function` decodes (its Command register and BARs): called by
    /// the function after every configuration write and reset.
    func decodeMayHaveChanged(_ function: PCIFunction) {
        guard let order = attachOrder[function.requesterID.rawValue], functions[order] === function else { return }
        barIndex.replace(order: order, with: BARDecodeIndex.windows(of: function.config, order: order))
    }

    public func attach(_ bridge: PCIToPCIBridge, behind parent: PCIToPCIBridge? = nil) throws(PCIConfigurationError) {
        let rid = bridge.requesterID.rawValue
        guard functionsByRID[rid] == nil, bridgesByRID[rid] == nil else {
            throw .invalidCapability("Requester ID \(bridge.requesterID) is already attached")
        }
        if let parent, parent.rootComplex !== self {
            throw .invalidCapability("bridge \(parent.requesterID) is not attached to \(name)")
        }
        bridge.rootComplex = self
        bridge.parentBridge = parent
        bridges.append(bridge)
        bridgesByRID[rid] = bridge
    }

    // MARK: Requester IDs

    /// The Requester ID requests from `function` carry when they reach the root complex, and the
    /// bridge (nearest the root) that last re-tagged them, if any.
    public func requesterIDSeen(for function: PCIFunction) -> (requesterID: RequesterID, aliasedBy: PCIToPCIBridge?) {
        var rid = function.requesterID
        var aliasedBy: PCIToPCIBridge?
        var bridge = function.parentBridge
        var hops = 0
        while let current = bridge, hops < 256 {
            let next = current.alias(ofForwarded: rid)
            if next != rid {
                aliasedBy = current
                rid = next
            }
            bridge = current.parentBridge
            hops += 1
        }
        return (rid, aliasedBy)
    }

    /// StreamID and DeviceID for requests arriving with `rid`.
    public func route(for rid: RequesterID) -> RequesterRoute {
        let iommuLookup = iommuMap?.lookup(rid)
        let msiLookup = msiMap?.lookup(rid)
        let streamID = iommuLookup?.id.map { StreamID($0) }
        let deviceID = DeviceID(msiLookup?.id ?? UInt32(rid.rawValue))
        return RequesterRoute(requesterID: rid, streamID: streamID, deviceID: deviceID,
                              iommuLookup: iommuLookup, msiLookup: msiLookup)
    }

    /// The route of `function`'s requests.
    public func route(for function: PCIFunction) -> RequesterRoute {
        route(for: requesterIDSeen(for: function).requesterID)
    }

    // MARK: Upstream

    /// Tags a request from `function` and sends it upstream. A bridge on the path with Bus
    /// Master Enable clear terminates it as an Unsupported Request.
    func forward(from function: PCIFunction, kind: DeviceTransaction.Kind, address: IOVA, size: Int, data: UInt64)
        -> (DeviceTransaction, TransactionResult) {
        let (rid, aliasedBy) = requesterIDSeen(for: function)
        let route = route(for: rid)
        let transaction = DeviceTransaction(kind: kind, address: address, size: size, data: kind == .write ? data : 0,
                                            streamID: route.streamID ?? StreamID(UInt32(rid.rawValue)),
                                            deviceID: route.deviceID)
        journal?.append(.route(requesterID: rid.rawValue, streamID: transaction.streamID, deviceID: route.deviceID,
                               translated: route.streamID != nil))
        if let trace {
            if let aliasedBy {
                trace.append(.rootComplex, "RID \(function.requesterID.hex) aliased to \(rid.hex)",
                             "by \(aliasedBy.kind) bridge \(aliasedBy.requesterID)")
            }
            var detail = ""
            if case .noMatch = route.iommuLookup { detail += "no iommu-map entry; " }
            if case .invalidEntry(let e) = route.iommuLookup { detail += "iommu-map entry \(e) invalid; " }
            if case .noMatch = route.msiLookup { detail += "no msi-map entry (Linux would give no MSI domain); " }
            if case .invalidEntry(let e) = route.msiLookup { detail += "msi-map entry \(e) invalid; " }
            let stream = route.streamID.map { "StreamID \($0)" } ?? "no StreamID"
            trace.append(.rootComplex, "RID \(rid.hex) → \(stream), DeviceID \(route.deviceID)",
                         address: address.rawValue, detail)
        }
        var bridge = function.parentBridge
        var hops = 0
        while let current = bridge, hops < 256 {
            if !current.forwardsUpstream {
                trace?.append(.rootComplex, "blocked", "bridge \(current.requesterID) has Bus Master Enable clear: UR")
                return (transaction, TransactionResult(status: .aborted))
            }
            bridge = current.parentBridge
            hops += 1
        }
        guard let port = route.streamID != nil ? upstream : untranslatedUpstream else {
            return (transaction, TransactionResult(status: .aborted))
        }
        return (transaction, port.issue(transaction))
    }

    // MARK: Configuration and memory access

    /// Configuration read of the function or bridge at `rid`; nil if none is there.
    public func configRead(_ rid: RequesterID, offset: Int, size: Int) -> UInt32? {
        if let function = functionsByRID[rid.rawValue] { return function.configRead(offset: offset, size: size) }
        if let bridge = bridgesByRID[rid.rawValue] { return bridge.configRead(offset: offset, size: size) }
        return nil
    }

    /// Configuration write; dropped if nothing is at `rid`.
    public func configWrite(_ rid: RequesterID, offset: Int, size: Int, value: UInt32) {
        if let function = functionsByRID[rid.rawValue] {
            function.configWrite(offset: offset, size: size, value: value)
        } else if let bridge = bridgesByRID[rid.rawValue] {
            bridge.configWrite(offset: offset, size: size, value: value)
        }
    }

    /// The function and BAR that decode PCI bus address `address`: an enabled BAR window holding
    /// it, the first attached function's (then its lowest BAR) when windows overlap. A lookup in
    /// `BARDecodeIndex`, O(log n) in the windows; the same answer as `decodeByScan`.
    public func decode(_ address: UInt64) -> (function: PCIFunction, bar: Int, offset: UInt64)? {
        guard let window = barIndex.lookup(address), functions.indices.contains(window.order) else { return nil }
        return (functions[window.order], window.bar, address &- window.base)
    }

    /// The same decode by asking every function in attach order (`ConfigurationSpace.decodeBAR`):
    /// the definition the index is tested against.
    public func decodeByScan(_ address: UInt64) -> (function: PCIFunction, bar: Int, offset: UInt64)? {
        for function in functions {
            if let (bar, offset) = function.config.decodeBAR(address) { return (function, bar, offset) }
        }
        return nil
    }
}

/// The Enhanced Configuration Access Mechanism window of a root complex (PCIe r6.0 §7.2.2):
/// offset = (bus − first bus) << 20 | device << 15 | function << 12 | register.
///
/// Unpopulated functions and buses beyond the range read all-ones (a configuration read that
/// ends in Unsupported Request returns all 1s to the CPU; Linux detects absent functions by
/// Vendor ID 0xFFFF) and ignore writes. Accesses of 1, 2 or 4 bytes go to the function; an
/// 8-byte access is split into two 4-byte ones (the spec does not require root complexes to
/// support it; this is the model's choice). Other sizes are `BusError.badAccess` from the bus.
public final class ECAM: MMIODevice {
    public weak var rootComplex: RootComplex?
    public var mmioName: String { "\(rootComplex?.name ?? "pcie")-ecam" }

    init(rootComplex: RootComplex) { self.rootComplex = rootComplex }

    /// The requester ID and register an ECAM offset selects; nil beyond the bus range.
    public func decode(offset: UInt64) -> (requesterID: RequesterID, register: Int)? {
        guard let rc = rootComplex else { return nil }
        let busIndex = offset >> 20
        guard busIndex < UInt64(rc.busRange.count) else { return nil }
        let bus = UInt8(truncatingIfNeeded: UInt64(rc.busRange.lowerBound) + busIndex)
        let device = UInt8(truncatingIfNeeded: (offset >> 15) & 0x1F)
        let function = UInt8(truncatingIfNeeded: (offset >> 12) & 0x7)
        return (RequesterID(bus: bus, device: device, function: function), Int(offset & 0xFFF))
    }

    public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
        if size == 8 {
            let low = try mmioRead(offset: offset, size: 4, requester: requester)
            let high = try mmioRead(offset: offset &+ 4, size: 4, requester: requester)
            return high << 32 | low
        }
        let allOnes = UInt64.lowMask(8 * min(max(size, 1), 4))
        guard let (rid, register) = decode(offset: offset),
              let value = rootComplex?.configRead(rid, offset: register, size: size) else { return allOnes }
        return UInt64(value)
    }

    public func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
        if size == 8 {
            try mmioWrite(offset: offset, size: 4, value: value & 0xFFFF_FFFF, requester: requester)
            try mmioWrite(offset: offset &+ 4, size: 4, value: value >> 32, requester: requester)
            return
        }
        guard let (rid, register) = decode(offset: offset) else { return }
        rootComplex?.configWrite(rid, offset: register, size: size, value: UInt32(truncatingIfNeeded: value))
    }
}

/// The root complex's memory window: CPU accesses to BARs (MSI-X table and PBA among them),
/// routed to the function whose enabled BAR decodes `memoryWindowBase + offset`. An address no
/// BAR claims is an Unsupported Request: reads return all-ones, writes are dropped (what a
/// root complex returns to the CPU for an unclaimed non-posted request; the model's choice over
/// raising an external abort).
public final class PCIMemoryWindow: MMIODevice {
    public weak var rootComplex: RootComplex?
    public var mmioName: String { "\(rootComplex?.name ?? "pcie")-mmio" }

    init(rootComplex: RootComplex) { self.rootComplex = rootComplex }

    public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
        guard let rc = rootComplex, let (function, bar, barOffset) = rc.decode(rc.memoryWindowBase &+ offset) else {
            return UInt64.lowMask(8 * min(max(size, 1), 8))
        }
        return function.barRead(bar: bar, offset: barOffset, size: size)
    }

    public func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
        guard let rc = rootComplex, let (function, bar, barOffset) = rc.decode(rc.memoryWindowBase &+ offset) else { return }
        function.barWrite(bar: bar, offset: barOffset, size: size, value: value)
    }
}
