import Bus
import Firmware
import GIC

/// The GICv3 ITS driver (drivers/irqchip/irq-gic-v3-its.c) for one ITS node: what
/// `its_probe_one` sets up (device and collection tables from GITS_BASER<n>, the command queue
/// at GITS_CBASER, GITS_CTLR.Enabled), `its_cpu_init_collection` (MAPC + INVALL per CPU), and
/// the ITS irq domain (`its_msi_prepare` → `its_create_device`, `its_irq_domain_alloc`,
/// `…_activate`/`…_deactivate`/`…_free`, `its_irq_compose_msi_msg`, `its_set_affinity`,
/// `its_mask_irq`/`its_unmask_irq`).
///
/// Everything reaches the ITS through its registers (`kernel.mmio`) and tables and commands in
/// RAM (`kernel.bus`); the command words come from `ITSCommand.encodeWords()`.
public final class GICv3ITSDriver {
    unowned(safe) let kernel: LinuxKernel
    public let index: Int
    public let node: ITSDescription

    /// `its->phys_base`.
    public var base: PhysicalAddress { node.region.base }
    /// `its_irq_get_msi_base`: `phys_base + GITS_TRANSLATER` (0x1_0040), the doorbell every
    /// MSI of this ITS is composed with unless the pre-ITS quirk replaced `get_msi_base`.
    public var msiBase: UInt64 { base.rawValue &+ ITS.Offset.translater }
    /// `its->pre_its_base`, set by `its_enable_quirk_socionext_synquacer` (nil: no pre-ITS).
    public private(set) var preITSBase: UInt64?
    /// IRQ_DOMAIN_FLAG_ISOLATED_MSI in `its->msi_domain_flags` (set by `its_node_init` /
    /// `its_probe_one`, cleared by the pre-ITS quirk), which the ITS MSI domain carries and
    /// `msi_device_has_isolated_msi` tests.
    public var isolatedMSI: Bool { preITSBase == nil }

    /// `its->get_msi_base(its_dev)`: `its_irq_get_msi_base` (GITS_TRANSLATER), or with the
    /// pre-ITS quirk `its_irq_get_msi_base_pre_its`: `pre_its_base + (device_id << 2)`. This is
    /// the address `its_irq_domain_alloc` hands `iommu_dma_prepare_msi` and
    /// `its_irq_compose_msi_msg` composes.
    public func msiBase(forDeviceID deviceID: UInt32) -> UInt64 {
        guard let preITSBase else { return msiBase }
        return preITSBase &+ (UInt64(deviceID) << 2)
    }

    /// GITS_TYPER as read at probe.
    public private(set) var typer: UInt64 = 0
    /// `its->ite_size`: GITS_TYPER.ITT_entry_size + 1.
    public var iteSize: Int { Int(typer.bits(7, 4)) + 1 }
    /// `device_ids(its)`: GITS_TYPER.Devbits + 1.
    public var deviceIDBits: Int { Int(typer.bits(17, 13)) + 1 }
    /// GITS_TYPER.IDbits + 1: the widest ITT (MAPD Size + 1) the ITS accepts.
    public var eventIDBits: Int { Int(typer.bits(12, 8)) + 1 }
    /// GITS_TYPER.PTA: MAPC/SYNC/MOVALL targets are redistributor addresses rather than
    /// processor numbers (`its->flags` / `col->target_address` in `its_cpu_init_collection`).
    public var physicalTargets: Bool { typer.bit(19) }
    /// `is_v4(its)`: GITS_TYPER.Virtual (`GITS_TYPER_VLPIS`).
    public var isV4: Bool { typer.bit(1) }
    /// `is_v4_1(its)`: GITS_TYPER.VMAPP (`GITS_TYPER_VMAPP`, bit 40).
    public var isV41: Bool { typer.bit(40) }
    /// GITS_TYPER.VMOVP: one VMOVP reaches every ITS ("Single VMOVP capable"); without it
    /// `its_probe_one` gives the ITS an ITSList number (`its_compute_its_list_map`).
    public var singleVMOVP: Bool { typer.bit(37) }

    /// The command queue (`its->cmd_base`, `ITS_CMD_QUEUE_SZ` = 64 KiB).
    public private(set) var commandQueue = PhysicalAddress(0)
    public static let commandQueueBytes: UInt64 = 0x1_0000
    /// `its->cmd_write`: the byte offset of the next free slot.
    public private(set) var commandWriteOffset: UInt64 = 0

    /// The tables `its_alloc_tables` programmed, by GITS_BASER index.
    public private(set) var tables: [ITSTableAllocation] = []
    /// `its->collections[cpu]`: the MAPC target of each CPU's collection (ICID = CPU number).
    public private(set) var collectionTargets: [ITSTarget] = []

    /// `its->its_device_list`, keyed by DeviceID.
    public private(set) var devices: [UInt32: ITSDevice] = [:]

    /// Every command issued, in order (the SYNCs `its_send_single_command` appends included).
    public private(set) var issuedCommands: [ITSCommand] = []
    /// Commands issued per opcode (`ITSCommand.Opcode`).
    public private(set) var commandCounts: [UInt8: Int] = [:]
    /// Every GICv4 command issued (VMAPP, VMAPTI, VMOVI, VMOVP, VSYNC, VINVALL, INVDB), in
    /// order, the VSYNCs `its_send_single_vcommand` appends included (`ITSVirtualCommands.swift`).
    public private(set) var issuedVirtualCommands: [ITSVirtualCommand] = []
    /// Every command issued, physical and virtual, as its description, in queue order.
    public private(set) var commandLog: [String] = []

    init(kernel: LinuxKernel, index: Int, node: ITSDescription) {
        self.kernel = kernel
        self.index = index
        self.node = node
    }

    /// How many commands of `opcode` were issued.
    public func count(of opcode: UInt8) -> Int { commandCounts[opcode] ?? 0 }

    /// The devices in DeviceID order.
    public var sortedDevices: [ITSDevice] { devices.keys.sorted().compactMap { devices[$0] } }

    func register(_ device: ITSDevice) { devices[device.deviceID] = device }
    func unregister(_ device: ITSDevice) { devices[device.deviceID] = nil }

    func record(_ command: ITSCommand) {
        issuedCommands.append(command)
        commandCounts[command.opcode, default: 0] += 1
        commandLog.append(command.description)
    }

    func record(_ command: ITSVirtualCommand) {
        issuedVirtualCommands.append(command)
        commandCounts[command.opcode, default: 0] += 1
        commandLog.append(command.description)
    }

    func setProbed(typer: UInt64, queue: PhysicalAddress, tables: [ITSTableAllocation]) {
        self.typer = typer
        self.commandQueue = queue
        self.tables = tables
        commandWriteOffset = 0
    }

    func setPreITS(base: UInt64) { preITSBase = base }

    /// A forked world's driver: everything `original` probed, programmed and logged, with
    /// `devices` its devices' copies.
    func copyState(of original: GICv3ITSDriver, devices: [UInt32: ITSDevice]) {
        preITSBase = original.preITSBase
        typer = original.typer
        commandQueue = original.commandQueue
        commandWriteOffset = original.commandWriteOffset
        tables = original.tables
        collectionTargets = original.collectionTargets
        self.devices = devices
        issuedCommands = original.issuedCommands
        commandCounts = original.commandCounts
        issuedVirtualCommands = original.issuedVirtualCommands
        commandLog = original.commandLog
    }

    func setCollectionTargets(_ targets: [ITSTarget]) { collectionTargets = targets }
    func advanceWriteOffset(to offset: UInt64) { commandWriteOffset = offset }
}

/// One GITS_BASER<n> as `its_setup_baser` programmed it.
public struct ITSTableAllocation: Hashable, Sendable {
    /// The register index n.
    public var index: Int
    /// GITS_BASER.Type (1 devices, 4 collections).
    public var type: UInt64
    /// The level-1 (or flat) table.
    public var base: PhysicalAddress
    /// `baser->psz`.
    public var pageSize: UInt64
    /// Entry size in bytes (GITS_BASER.Entry_Size + 1).
    public var entrySize: UInt64
    /// Pages of `pageSize` allocated (GITS_BASER.Size + 1).
    public var pages: UInt64
    /// GITS_BASER.Indirect as the ITS accepted it.
    public var indirect: Bool
    /// The value written to the register (and read back).
    public var register: UInt64
}

/// `struct its_device`: one DeviceID mapped on an ITS, with its ITT and event map.
public final class ITSDevice {
    public let deviceID: UInt32
    /// `its_dev->itt`: 256-byte aligned, `max(nr_ites × ite_size, ITS_ITT_ALIGN)` bytes.
    public let ittAddress: PhysicalAddress
    public let ittBytes: UInt64
    /// `its_dev->nr_ites`: a power of two ≥ 2; MAPD Size = log2(nr_ites) − 1.
    public let eventCount: Int
    /// `event_map.lpi_base` / `nr_lpis`: the LPIs reserved for the device; event e is LPI
    /// lpi_base + e.
    public let lpiBase: UInt32
    public let lpiCount: Int
    /// `event_map.lpi_map`: events in use.
    public internal(set) var eventsInUse: [Bool]
    /// `event_map.col_map`: the CPU (collection) each event targets.
    public internal(set) var collectionMap: [Int]
    /// `event_map.vm`: the VM the device's forwarded events belong to (one at a time).
    public internal(set) var vm: ITSVM?
    /// `event_map.nr_vlpis`.
    public internal(set) var vlpiCount = 0

    init(deviceID: UInt32, ittAddress: PhysicalAddress, ittBytes: UInt64, eventCount: Int, lpiBase: UInt32, lpiCount: Int) {
        self.deviceID = deviceID
        self.ittAddress = ittAddress
        self.ittBytes = ittBytes
        self.eventCount = eventCount
        self.lpiBase = lpiBase
        self.lpiCount = lpiCount
        eventsInUse = Array(repeating: false, count: lpiCount)
        collectionMap = Array(repeating: 0, count: lpiCount)
    }

    /// MAPD Size: EventID bits − 1 (`its_build_mapd_cmd`: `ilog2(nr_ites) − 1`).
    public var mapdSize: UInt8 {
        var bits = 0
        while (1 << (bits + 1)) <= eventCount { bits += 1 }
        return UInt8(max(bits - 1, 0))
    }

    public var isEmpty: Bool { !eventsInUse.contains(true) }
}
