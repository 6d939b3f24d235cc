import Bus
@testable import SMMUv3

/// A bus with RAM, an SMMU at the QEMU `virt` address, and a recording MMIO target for MSIs.
/// Register accesses go through the bus (as a CPU's would), so the MMIO path is what is tested.
final class DeviceHarness {
    static let smmuBase: UInt64 = 0x0905_0000
    static let ramBase: UInt64 = 0x4000_0000
    static let ramSize: UInt64 = 0x1000_0000
    /// A recording device standing in for an interrupt controller's doorbell page.
    static let doorbellBase: UInt64 = 0x0809_0000

    let bus: SystemBus
    let smmu: SMMUv3
    let doorbell = RecordingDevice()

    init(configuration: SMMUConfiguration = .default) {
        bus = SystemBus()
        smmu = SMMUv3(configuration: configuration, bus: bus)
        // The layout is fixed and non-overlapping; a failure here is a broken test, not input.
        try? bus.addRAM(base: PhysicalAddress(Self.ramBase), size: Self.ramSize)
        try? bus.addDevice(smmu, base: PhysicalAddress(Self.smmuBase), size: SMMUv3.mmioSize)
        try? bus.addDevice(doorbell, base: PhysicalAddress(Self.doorbellBase), size: 0x1_0000)
    }

    func write32(_ offset: UInt64, _ value: UInt32) throws {
        try bus.write(PhysicalAddress(Self.smmuBase + offset), size: 4, value: UInt64(value), requester: .cpu(0))
    }

    func write64(_ offset: UInt64, _ value: UInt64) throws {
        try bus.write(PhysicalAddress(Self.smmuBase + offset), size: 8, value: value, requester: .cpu(0))
    }

    func read32(_ offset: UInt64) throws -> UInt32 {
        UInt32(truncatingIfNeeded: try bus.read(PhysicalAddress(Self.smmuBase + offset), size: 4, requester: .cpu(0)))
    }

    func read64(_ offset: UInt64) throws -> UInt64 {
        try bus.read(PhysicalAddress(Self.smmuBase + offset), size: 8, requester: .cpu(0))
    }

    typealias R = SMMURegisterOffset

    /// CMDQ_BASE, PROD = CONS = 0, then CMDQEN (docs/hardware.md §SMMUv3 bring-up, step 4), keeping other CR0 bits.
    func enableCommandQueue(base: UInt64, log2Size: Int) throws {
        try write64(R.cmdqBase, base | UInt64(log2Size))
        try write32(R.cmdqProd, 0)
        try write32(R.cmdqCons, 0)
        try write32(R.cr0, try read32(R.cr0) | SMMUControl0.commandQueueEnable.rawValue)
    }

    /// EVENTQ_BASE, page-1 PROD = CONS = 0, then EVENTQEN (§1.3 step 6).
    func enableEventQueue(base: UInt64, log2Size: Int) throws {
        try write64(R.eventqBase, base | UInt64(log2Size))
        try write32(R.eventqProd, 0)
        try write32(R.eventqCons, 0)
        try write32(R.cr0, try read32(R.cr0) | SMMUControl0.eventQueueEnable.rawValue)
    }

    /// Writes `commands` into the queue at `base` from slot `index` on (wrapping at 2^log2Size)
    /// and returns the producer pointer after them, with the wrap bit, starting from `producer`.
    func place(_ commands: [Command], queueBase base: UInt64, log2Size: Int, producer: UInt32) throws -> UInt32 {
        let geometry = QueueGeometry(log2Size: log2Size)
        var prod = producer
        for command in commands {
            let (w0, w1) = command.encode()
            try placeRaw(w0, w1, queueBase: base, slot: geometry.index(prod))
            prod = geometry.advanced(prod)
        }
        return prod
    }

    func placeRaw(_ w0: UInt64, _ w1: UInt64, queueBase base: UInt64, slot: UInt32) throws {
        let address = PhysicalAddress(base + UInt64(slot) * 16)
        try bus.writeWords(address, [w0, w1])
    }

    /// Reads the 32-byte event record in slot `index` of the queue at `base`.
    func eventRecord(queueBase base: UInt64, slot: UInt32) throws -> EventRecord? {
        EventRecord(words: try bus.readWords(PhysicalAddress(base + UInt64(slot) * 32), count: 4))
    }

    /// A transaction from a PCI function: StreamID = DeviceID = RID.
    static func write(_ address: UInt64, sid: UInt32 = 0x10, data: UInt64 = 0) -> DeviceTransaction {
        DeviceTransaction(kind: .write, address: IOVA(address), size: 4, data: data,
                          streamID: StreamID(sid), deviceID: DeviceID(sid))
    }
}

/// An MMIO device that records every write (an MSI doorbell stand-in).
final class RecordingDevice: MMIODevice {
    struct Write: Hashable {
        var offset: UInt64
        var size: Int
        var value: UInt64
        var requester: Requester
    }

    let mmioName = "doorbell"
    var writes: [Write] = []

    func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 { 0 }

    func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
        writes.append(Write(offset: offset, size: size, value: value, requester: requester))
    }
}
