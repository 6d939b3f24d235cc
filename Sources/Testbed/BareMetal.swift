import Bus
import Machine
import Firmware
import GIC
import PCI
import SMMUv3

/// Firmware-style programming of a `Machine`, for hardware-level demos and tests: the smallest
/// straight-line sequence that brings up the SMMU, the ITS, the redistributors and one PCIe
/// function and routes one MSI. It is not a model of Linux (that is the LinuxKernel layer); it
/// exists so the hardware can be exercised end to end before any kernel model runs.
///
/// Every step goes through the architected interface: MMIO register writes by CPU 0, tables
/// and queues written into RAM, commands through the SMMU's and ITS's command queues. Table
/// memory comes from a bump allocator at the top of the first RAM window.
public final class BareMetal {
    public let machine: Machine
    public let allocator: PageAllocator
    let cpu = Requester.cpu(0)
    /// Structures of each SMMU brought up by `resetSMMU`, by SMMU index.
    var smmuLayouts: [Int: SMMULayout] = [:]
    /// Command queue of each ITS enabled by `enableITS`, by ITS index.
    var itsQueues: [Int: PhysicalAddress] = [:]
    /// The LPI configuration table shared by every redistributor, once `enableLPIs` ran.
    var lpiConfigurationTable: PhysicalAddress?

    /// What went wrong while programming: a register access that faulted, an allocation that
    /// did not fit, a command the hardware rejected.
    public enum Failure: Error, Hashable, Sendable, CustomStringConvertible {
        case bus(BusError)
        case outOfTableMemory
        case noSuchComponent(String)
        case pci(String)
        case smmuCommandError(UInt32)
        case itsCommandError(UInt32)

        public var description: String {
            switch self {
            case .bus(let e): "bus: \(e)"
            case .outOfTableMemory: "table memory exhausted"
            case .noSuchComponent(let what): "no \(what) on this machine"
            case .pci(let why): "PCI: \(why)"
            case .smmuCommandError(let cons): "SMMU command error (CMDQ_CONS \(Hex.format(UInt64(cons))))"
            case .itsCommandError(let code): "ITS command error \(Hex.format(UInt64(code), minDigits: 6))"
            }
        }
    }

    /// The largest usable RAM span of the platform (`Topology.usableMemory`: memory nodes less
    /// `no-map` reservations), which holds every table and the nested demo's guest RAM.
    public let ramSpan: MemoryRange

    /// `tableMemory` bytes (at most half the span) at the top of the largest usable RAM span
    /// hold every table and queue. Platforms place RAM anywhere (0x4000_0000 on QEMU `virt`,
    /// 0x8000_0000 on Arm's reference map, several windows on servers), so nothing here is at
    /// a fixed address.
    public init(machine: Machine, tableMemory: UInt64 = 0x0400_0000) throws(Failure) {
        guard let span = machine.topology.usableMemory.max(by: { $0.size < $1.size }), span.size >= BareMetal.minimumRAM else {
            throw .noSuchComponent("usable RAM window of at least \(Hex.format(BareMetal.minimumRAM, minDigits: 1)) bytes (the description's memory nodes, less no-map reservations)")
        }
        let tables = min(tableMemory, span.size / 2) & ~0xFFFF
        self.machine = machine
        self.ramSpan = span
        self.allocator = PageAllocator(base: span.base.rawValue &+ span.size &- tables, size: tables)
    }

    /// The smallest RAM span the bring-up works in: tables, queues, LPI tables and a guest RAM
    /// window need a few MiB.
    public static let minimumRAM: UInt64 = 0x100_0000

    // MARK: - Memory and registers

    func allocate(_ bytes: UInt64, alignment: UInt64 = 4096) throws(Failure) -> PhysicalAddress {
        guard let address = allocator.allocate(bytes: bytes, alignment: alignment) else { throw .outOfTableMemory }
        return PhysicalAddress(address)
    }

    func write(_ address: PhysicalAddress, _ size: Int, _ value: UInt64) throws(Failure) {
        do { try machine.bus.write(address, size: size, value: value, requester: cpu) } catch { throw .bus(error) }
    }

    func read(_ address: PhysicalAddress, _ size: Int) throws(Failure) -> UInt64 {
        do { return try machine.bus.read(address, size: size, requester: cpu) } catch { throw .bus(error) }
    }

    func register(_ base: PhysicalAddress, _ offset: UInt64) -> PhysicalAddress {
        PhysicalAddress(base.rawValue &+ offset)
    }
}
