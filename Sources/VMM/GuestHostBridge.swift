import Bus
import PCI

/// The guest's PCIe host bridge: its ECAM window (`pci-host-ecam-generic`, PCIe r6.0 §7.2.2:
/// bus[27:20], device[19:15], function[14:12], register[11:0]) with the passthrough functions
/// and the emulated root ports above functions on other buses, and its memory windows,
/// decoding accesses into the functions' BARs. An empty slot reads all-ones (Vendor ID 0xFFFF:
/// no function), writes are ignored.
///
/// A root port (QEMU `pcie-root-port`, 1b36:000c) is a type-1 header from the PCI module
/// (`PCIToPCIBridge`, kind `.rootPort`) whose bus numbers the VMM sets before the guest boots,
/// as firmware does on a real machine: the guest kernel model keeps the numbers it finds (its
/// `pci_scan_bridge` pass 0). Simplification, documented: configuration cycles are routed by
/// RID, not by the port's bus-number registers, and memory accesses reach a function's BARs
/// without checking the port's window registers — a guest that assigned the BARs inside the
/// window it programmed sees no difference.
public final class GuestHostBridge {
    public internal(set) var functions: [PassthroughFunction] = []
    public internal(set) var rootPorts: [PCIToPCIBridge] = []
    /// The function and root port each configuration access reaches, by guest RID: every ECAM
    /// access is one lookup instead of a walk over the plugged functions. When two are plugged
    /// at one RID the first plugged answers (what the walk in plug order found).
    var functionsByRID: [UInt16: PassthroughFunction] = [:]
    var rootPortsByRID: [UInt16: PCIToPCIBridge] = [:]

    public init() {}

    public func plug(_ function: PassthroughFunction) {
        functions.append(function)
        let rid = function.guestRequesterID.rawValue
        if functionsByRID[rid] == nil { functionsByRID[rid] = function }
    }

    public func plug(_ rootPort: PCIToPCIBridge) {
        rootPorts.append(rootPort)
        let rid = rootPort.requesterID.rawValue
        if rootPortsByRID[rid] == nil { rootPortsByRID[rid] = rootPort }
    }

    /// Takes the function at `requesterID` off the bridge (QEMU `pcie_unplug_device` →
    /// `object_unparent`): its config space reads all-ones from then on and its BARs decode
    /// nothing.
    public func unplug(requesterID: RequesterID) {
        functions.removeAll { $0.guestRequesterID == requesterID }
        functionsByRID[requesterID.rawValue] = nil
    }

    func function(at rid: UInt16) -> PassthroughFunction? { functionsByRID[rid] }

    func rootPort(at rid: UInt16) -> PCIToPCIBridge? { rootPortsByRID[rid] }

    /// The ECAM window as an MMIO device.
    public final class ECAM: MMIODevice {
        public let mmioName = "guest-ecam"
        unowned(safe) let bridge: GuestHostBridge
        init(bridge: GuestHostBridge) { self.bridge = bridge }

        public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
            guard size == 1 || size == 2 || size == 4 else { throw .badAccess(PhysicalAddress(offset), size: size) }
            let rid = UInt16(truncatingIfNeeded: offset >> 12)
            guard offset >> 28 == 0 else { return (UInt64(1) << UInt64(size * 8)) - 1 }
            if let port = bridge.rootPort(at: rid) { return UInt64(port.configRead(offset: Int(offset & 0xFFF), size: size)) }
            guard let f = bridge.function(at: rid) else { return (UInt64(1) << UInt64(size * 8)) - 1 }
            return UInt64(f.readConfig(Int(offset & 0xFFF), size: size))
        }

        public func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
            guard size == 1 || size == 2 || size == 4 else { throw .badAccess(PhysicalAddress(offset), size: size) }
            let rid = UInt16(truncatingIfNeeded: offset >> 12)
            guard offset >> 28 == 0 else { return }
            if let port = bridge.rootPort(at: rid) {
                port.configWrite(offset: Int(offset & 0xFFF), size: size, value: UInt32(truncatingIfNeeded: value))
                return
            }
            guard let f = bridge.function(at: rid) else { return }
            f.writeConfig(Int(offset & 0xFFF), size: size, value: UInt32(truncatingIfNeeded: value))
        }
    }

    /// One memory window (32-bit or 64-bit) as an MMIO device: an access that hits no enabled
    /// BAR is unsupported-request-like (reads all-ones, writes dropped), as a root port answers.
    public final class Window: MMIODevice {
        public let mmioName: String
        unowned(safe) let bridge: GuestHostBridge
        let base: UInt64
        init(bridge: GuestHostBridge, base: UInt64, name: String) {
            self.bridge = bridge
            self.base = base
            self.mmioName = name
        }

        public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
            let gpa = base &+ offset
            for f in bridge.functions {
                if let (bar, off) = f.decode(gpa) { return f.readBAR(bar, offset: off, size: size) }
            }
            return size == 8 ? .max : (UInt64(1) << UInt64(size * 8)) - 1
        }

        public func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
            let gpa = base &+ offset
            for f in bridge.functions {
                if let (bar, off) = f.decode(gpa) { f.writeBAR(bar, offset: off, size: size, value: value); return }
            }
        }
    }

    /// Places the ECAM and both memory windows on the guest bus where `layout` puts them.
    public func attach(to bus: SystemBus, layout M: GuestMemoryMap) throws(BusError) {
        try bus.addDevice(ECAM(bridge: self), base: PhysicalAddress(M.ecam.base), size: M.ecam.size, name: "guest-ecam")
        try bus.addDevice(Window(bridge: self, base: M.pcieMMIO32.base, name: "guest-pcie-mmio32"),
                          base: PhysicalAddress(M.pcieMMIO32.base), size: M.pcieMMIO32.size)
        try bus.addDevice(Window(bridge: self, base: M.pcieMMIO64.base, name: "guest-pcie-mmio64"),
                          base: PhysicalAddress(M.pcieMMIO64.base), size: M.pcieMMIO64.size)
    }
}
