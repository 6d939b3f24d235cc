import Bus

/// The Socionext SynQuacer "pre-ITS" (also integrated by TI's K3 SoCs): a SoC block in front of
/// an ITS that turns a 32-bit write at `base + (DeviceID << 2)` into a write of the same data
/// to GITS_TRANSLATER with that DeviceID. What it does, from Linux's description of it
/// (`its_irq_get_msi_base_pre_its`, drivers/irqchip/irq-gic-v3-its.c): it "maps 32-bit writes
/// targeted at a separate window of size '4 << device_id_bits' onto writes to GITS_TRANSLATER
/// with device ID taken from bits [device_id_bits + 1:2] of the window offset"; TI's
/// description on LKML (Kishon Vijay Abraham I, "PCIe controller instead of directly writing to
/// GITS_TRANSLATER, will write to a separate window and the device ID is taken from the offset
/// to which the PCIe device writes … every 4-byte register address in this window maps to a
/// unique ITS device id").
///
/// The DeviceID is the slot's, whoever wrote: a write's own DeviceID sideband is ignored, so
/// any agent that can reach slot N raises DeviceID N's events. That is why Linux clears
/// IRQ_DOMAIN_FLAG_ISOLATED_MSI on such an ITS ("the pre-ITS breaks isolation").
///
/// Choices where the sources are silent (each counted and traced, none aborts the write, as a
/// posted MSI write has no response to carry an error):
/// - only naturally aligned 4-byte writes are forwarded ("maps 32-bit writes"); any other size,
///   or a 4-byte write not on a slot boundary, is dropped. (TI's AM64x is documented on LKML to
///   drop even 4-byte-aligned writes not on an 8-byte boundary, "an invalid bridge configuration
///   in HW"; that SoC erratum is not modelled: every slot works here.)
/// - reads of the window are RAZ: it holds no registers.
public final class PreITS: MMIODevice {
    public var mmioName: String { "pre-its\(its.number)" }
    /// The ITS every forwarded write goes to.
    public unowned(safe) let its: ITS
    public let base: PhysicalAddress
    /// The window's size in bytes: `size / 4` DeviceIDs.
    public let size: UInt64

    /// What the window did with the writes it received.
    public struct Counters: Hashable, Sendable {
        /// Writes forwarded to the ITS as translation requests.
        public var forwarded = 0
        /// Writes dropped for not being 4 bytes.
        public var droppedSize = 0
        /// 4-byte writes dropped for not starting on a 4-byte slot.
        public var droppedMisaligned = 0
        public init() {}
    }

    public internal(set) var counters = Counters()
    public var trace: TraceLog?

    init(its: ITS, base: PhysicalAddress, size: UInt64) {
        self.its = its
        self.base = base
        self.size = size
    }

    /// The DeviceID a write at `offset` into the window names (`offset >> 2`), for an aligned
    /// offset inside the window.
    public func deviceID(atOffset offset: UInt64) -> DeviceID? {
        guard offset < size, offset & 3 == 0, offset >> 2 <= UInt64(UInt32.max) else { return nil }
        return DeviceID(UInt32(offset >> 2))
    }

    public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 { 0 }

    public func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
        let address = base.rawValue &+ offset
        guard size == 4 else {
            counters.droppedSize &+= 1
            its.journal?.append(.droppedWrite(address: address, size: size))
            trace?.append(.its, "pre-ITS write dropped", address: address, value: value, "\(size)-byte write: the pre-ITS forwards 32-bit writes only")
            return
        }
        guard let deviceID = deviceID(atOffset: offset) else {
            counters.droppedMisaligned &+= 1
            its.journal?.append(.droppedWrite(address: address, size: size))
            trace?.append(.its, "pre-ITS write dropped", address: address, value: value, "offset \(Hex.format(offset, minDigits: 1)) is not on a 4-byte slot")
            return
        }
        counters.forwarded &+= 1
        if let trace {
            var note = "slot \(Hex.format(offset, minDigits: 1)) → DeviceID \(deviceID)"
            if case .device(let sideband) = requester, sideband != deviceID { note += " (the write's own DeviceID \(sideband) is ignored)" }
            trace.append(.its, "pre-ITS", address: address, value: value, note + ", to GITS_TRANSLATER")
        }
        its.receiveTranslationRequest(deviceID: deviceID, eventID: EventID(UInt32(truncatingIfNeeded: value)))
    }
}

extension ITS {
    /// A write to GITS_TRANSLATER with its DeviceID (from the interconnect, or supplied by a SoC
    /// block in front of the ITS: the pre-ITS), translated and journalled.
    func receiveTranslationRequest(deviceID: DeviceID, eventID: EventID, counted: Bool = false) {
        if !counted { counters.translaterWrites &+= 1 }
        let result = translate(deviceID: deviceID, eventID: eventID)
        journal?.append(.itsTranslate(its: number, deviceID: deviceID, eventID: eventID.rawValue, result: result.journalResult))
    }
}

extension GICv3 {
    /// Places a pre-ITS window of `size` bytes at `base` in front of ITS `its` on the GIC's bus,
    /// and makes the interconnect's direct writes to that ITS's GITS_TRANSLATER carry DeviceID 0
    /// (`ITS.interconnectDeviceID`): on such a SoC the pre-ITS is how a DeviceID gets there.
    public func addPreITS(base: PhysicalAddress, size: UInt64, its: ITS) throws(BusError) -> PreITS {
        guard let bus else { throw .deviceError(base, "GIC not attached to a bus") }
        guard size >= 4 else { throw .deviceError(base, "a pre-ITS window of \(size) bytes holds no 4-byte slot") }
        let window = PreITS(its: its, base: base, size: size)
        try bus.addDevice(window, base: base, size: size, name: "pre-its\(its.number)")
        window.trace = trace
        its.interconnectDeviceID = DeviceID(0)
        return window
    }
}
