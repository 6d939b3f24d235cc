import Bus
@testable import GIC

/// A QEMU-virt-shaped machine with the GIC attached and the ITS programmed the way Linux's ITS
/// driver does it (its_probe_one / its_cpu_init_lpis): tables allocated in RAM, GICR_PROPBASER
/// and GICR_PENDBASER written before EnableLPIs, GITS_BASER0/1 and GITS_CBASER written before
/// GITS_CTLR.Enabled. Everything goes through MMIO on the bus and bytes in RAM.
final class Fixture {
    static let ramBase: UInt64 = 0x4000_0000
    static let distributorBase = PhysicalAddress(0x0800_0000)
    static let itsBase = PhysicalAddress(0x0808_0000)
    static let redistributorBase = PhysicalAddress(0x080A_0000)
    static let commandQueue: UInt64 = 0x4000_0000
    static let deviceTable: UInt64 = 0x4001_0000
    static let collectionTable: UInt64 = 0x4008_0000
    static let propTable: UInt64 = 0x4010_0000
    static let pendTables: UInt64 = 0x4020_0000
    static let itts: UInt64 = 0x4100_0000
    static let level2Pages: UInt64 = 0x4200_0000

    let bus: SystemBus
    let gic: GICv3
    let its: ITS
    let configuration: GICConfiguration

    /// - Parameters:
    ///   - deviceTablePages: flat device-table pages (4 KiB, 512 DTEs each).
    ///   - indirectDeviceTable: make BASER0 a 2-level table (one L1 page, no L2 pages yet).
    ///   - enableLPIs: program PROPBASER/PENDBASER and set EnableLPIs on every redistributor.
    init(_ configuration: GICConfiguration = GICConfiguration(cpuCount: 2), deviceTablePages: UInt64 = 1,
         indirectDeviceTable: Bool = false, enableLPIs: Bool = true, enableITS: Bool = true) throws {
        self.configuration = configuration
        bus = SystemBus()
        try bus.addRAM(base: PhysicalAddress(Fixture.ramBase), size: 0x4000_0000)
        gic = GICv3(configuration: configuration)
        try gic.attach(to: bus, distributorBase: Fixture.distributorBase, redistributorBase: Fixture.redistributorBase)
        its = try gic.addITS(base: Fixture.itsBase)
        for cpu in 0..<gic.redistributors.count {
            // Linux's default config byte for every LPI: priority 0xA0, Group1, disabled.
            gic.setPriorityMask(cpu: cpu, 0xF0)
        }
        let lpiBytes = Int(configuration.normalized.lpiLimit) - 8192
        bus.ram.writeBytes(Fixture.propTable, [UInt8](repeating: 0xA2, count: lpiBytes))
        if enableLPIs {
            for cpu in 0..<gic.redistributors.count { try enableRedistributor(cpu) }
        }
        // GITS_BASER0: device table; BASER1: collection table (4 KiB pages).
        var baser0 = UInt64(Fixture.deviceTable) | (deviceTablePages - 1) | UInt64(1) << 63
        if indirectDeviceTable { baser0 |= UInt64(1) << 62 }
        try its64(ITS.Offset.baser, baser0)
        try its64(ITS.Offset.baser + 8, Fixture.collectionTable | UInt64(1) << 63)
        try its64(ITS.Offset.cbaser, Fixture.commandQueue | UInt64(1) << 63)  // 1 page = 128 commands
        try its64(ITS.Offset.cwriter, 0)
        if enableITS { try its32(ITS.Offset.ctlr, 1) }
    }

    func rdBase(_ cpu: Int) -> PhysicalAddress {
        PhysicalAddress(Fixture.redistributorBase.rawValue + UInt64(cpu) * configuration.normalized.redistributorStride)
    }

    func pendTable(_ cpu: Int) -> UInt64 { Fixture.pendTables + UInt64(cpu) * 0x1_0000 }

    func enableRedistributor(_ cpu: Int) throws {
        let rd = rdBase(cpu)
        let idBits = UInt64(configuration.normalized.lpiIDBits - 1)
        try bus.write(PhysicalAddress(rd.rawValue + Redistributor.Offset.propbaser), size: 8, value: Fixture.propTable | idBits, requester: .cpu(cpu))
        try bus.write(PhysicalAddress(rd.rawValue + Redistributor.Offset.pendbaser), size: 8, value: pendTable(cpu), requester: .cpu(cpu))
        try bus.write(PhysicalAddress(rd.rawValue + Redistributor.Offset.ctlr), size: 4, value: 1, requester: .cpu(cpu))
    }

    func its64(_ offset: UInt64, _ value: UInt64) throws {
        try bus.write(PhysicalAddress(Fixture.itsBase.rawValue + offset), size: 8, value: value, requester: .cpu(0))
    }

    func its32(_ offset: UInt64, _ value: UInt64) throws {
        try bus.write(PhysicalAddress(Fixture.itsBase.rawValue + offset), size: 4, value: value, requester: .cpu(0))
    }

    func itsRead(_ offset: UInt64, size: Int = 8) throws -> UInt64 {
        try bus.read(PhysicalAddress(Fixture.itsBase.rawValue + offset), size: size, requester: .cpu(0))
    }

    /// Appends raw command words at GITS_CWRITER and advances it, as Linux `its_send_single_command`.
    func send(words: [UInt64]) throws {
        let offset = its.cwriter
        try bus.writeWords(PhysicalAddress(Fixture.commandQueue + offset), words)
        try its64(ITS.Offset.cwriter, (offset + 32) % its.commandQueueBytes)
    }

    func send(_ commands: ITSCommand...) throws {
        for command in commands { try send(words: command.encode()) }
    }

    func ittAddress(_ device: UInt32) -> PhysicalAddress { PhysicalAddress(Fixture.itts + UInt64(device) * 0x1000) }

    /// MAPD with `eventBits` EventID bits, plus MAPC of collection `icid` → CPU `cpu`.
    func mapDevice(_ device: UInt32, eventBits: UInt8 = 5) throws {
        try send(.mapd(device: DeviceID(device), size: eventBits - 1, ittAddress: ittAddress(device), valid: true))
    }

    func mapCollection(_ icid: UInt16, cpu: Int) throws {
        try send(.mapc(collection: CollectionID(icid), target: gic.target(ofCPU: cpu), valid: true))
    }

    func mapEvent(_ device: UInt32, _ event: UInt32, intid: UInt32, icid: UInt16) throws {
        try send(.mapti(device: DeviceID(device), event: EventID(event), intid: INTID(intid), collection: CollectionID(icid)))
    }

    /// Writes an LPI's configuration byte in RAM (software's side; the redistributor sees it
    /// only after INV/INVALL).
    func configure(_ intid: UInt32, priority: UInt8 = 0xA0, enabled: Bool = true) {
        bus.ram.writeByte(Fixture.propTable + UInt64(intid - 8192), LPIConfigurationTable.entry(priority: priority, enabled: enabled))
    }

    /// Writes a config byte and sends INV for the (device, event) that maps it.
    func enable(_ intid: UInt32, device: UInt32, event: UInt32, priority: UInt8 = 0xA0) throws {
        configure(intid, priority: priority, enabled: true)
        try send(.inv(device: DeviceID(device), event: EventID(event)), .sync(target: gic.target(ofCPU: 0)))
    }

    /// A device's MSI: a 32-bit write of the EventID to GITS_TRANSLATER with the DeviceID sideband.
    @discardableResult
    func msi(device: UInt32, event: UInt32) throws -> ITSCounters {
        try bus.write(its.translaterAddress, size: 4, value: UInt64(event), requester: .device(DeviceID(device)))
        return its.counters
    }

    func ack(_ cpu: Int) -> UInt32 { gic.acknowledge(cpu: cpu) }

    func isPendingInRAM(_ intid: UInt32, cpu: Int) -> Bool {
        bus.ram.readByte(pendTable(cpu) + UInt64(intid / 8)) & UInt8(1 << (intid % 8)) != 0
    }

    /// The usual one-device setup: device `device` with 32 events, ICID 0 → CPU0, ICID 1 → CPU1,
    /// event 3 → LPI 8195 on ICID 1, enabled with priority 0xA0.
    func standardSetup(device: UInt32 = 0x10) throws {
        try mapDevice(device)
        try mapCollection(0, cpu: 0)
        try mapCollection(1, cpu: 1)
        try mapEvent(device, 3, intid: 8195, icid: 1)
        try enable(8195, device: device, event: 3)
    }
}
