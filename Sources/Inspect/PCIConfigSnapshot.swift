/// What `inspect` needs from a function's configuration space as sysfs `config` returns it
/// (PCI Local Bus 3.0 §6.1 header, §6.7 capability list; PCIe r6.0 §7.6 extended capabilities):
/// header type, the bridge's bus numbers, the PCI Express port type, the MSI and MSI-X
/// capabilities as the kernel left them, and whether an ACS capability is there and enabled.
/// Every offset is checked against the bytes present: a non-root reader sees only the first 64
/// bytes (`pci_read_config` limits unprivileged reads), and then the capabilities are unknown.
public struct PCIConfigSnapshot: Hashable, Sendable {
    /// The MSI capability (PCI 3.0 §6.8.1): Message Control, and the message as programmed.
    public struct MSI: Hashable, Sendable {
        public var enabled: Bool
        /// Multiple Message Capable / Enable, as counts (1, 2, 4, …, 32).
        public var capable: Int
        public var enabledCount: Int
        public var is64Bit: Bool
        public var perVectorMasking: Bool
        public var address: UInt64
        public var data: UInt16
    }

    /// The MSI-X capability (PCI 3.0 §6.8.2): Message Control and the table's place. The table
    /// itself is in a BAR, which sysfs does not `read()` for memory BARs (only `mmap`), so the
    /// messages are not in a snapshot.
    public struct MSIX: Hashable, Sendable {
        public var enabled: Bool
        public var functionMask: Bool
        public var tableSize: Int
        public var tableBIR: Int
        public var tableOffset: UInt32
    }

    public var vendorID: UInt16
    public var deviceID: UInt16
    public var classCode: UInt32
    /// Header Type bits 6:0 (0 endpoint, 1 PCI-to-PCI bridge) and bit 7 (multi-function).
    public var headerLayout: UInt8
    public var multifunction: Bool
    public var interruptPin: UInt8
    /// Type 1 headers: the secondary and subordinate bus numbers.
    public var secondaryBus: UInt8?
    public var subordinateBus: UInt8?
    /// PCI Express Capabilities register bits 7:4 (0 endpoint, 4 root port, 5 upstream, 6
    /// downstream switch port, 7 PCIe-to-PCI bridge, 8 PCI-to-PCIe bridge, 9 RCiEP).
    public var expressPortType: UInt8?
    public var msi: MSI?
    public var msix: MSIX?
    /// The ACS extended capability (PCIe r6.0 §7.7.8): its Capability and Control registers.
    public struct ACS: Hashable, Sendable {
        public var capability: UInt16
        public var control: UInt16
    }

    public var acs: ACS?
    /// How many bytes the reader saw (64 for non-root readers, 256 or 4096 as root).
    public var length: Int

    public var isBridge: Bool { headerLayout == 1 }

    public init(_ bytes: [UInt8], path: String) throws(SysfsParseError) {
        guard bytes.count >= 64 else {
            throw SysfsParseError(path: path, line: 1, problem: "\(bytes.count) bytes; a configuration header is 64")
        }
        func u8(_ o: Int) -> UInt8? { o >= 0 && o < bytes.count ? bytes[o] : nil }
        func u16(_ o: Int) -> UInt16? {
            guard o >= 0, o + 2 <= bytes.count else { return nil }
            return UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8
        }
        func u32(_ o: Int) -> UInt32? {
            guard o >= 0, o + 4 <= bytes.count else { return nil }
            return (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[o + $1]) << (8 * $1) }
        }
        length = bytes.count
        vendorID = u16(0) ?? 0
        deviceID = u16(2) ?? 0
        classCode = (u32(8) ?? 0) >> 8
        let header = u8(0x0E) ?? 0
        headerLayout = header & 0x7F
        multifunction = header & 0x80 != 0
        interruptPin = u8(0x3D) ?? 0
        if headerLayout == 1 {
            secondaryBus = u8(0x19)
            subordinateBus = u8(0x1A)
        }
        // The capability list (Status bit 4, pointer at 0x34), bounded: at most 48 entries fit in
        // the 192 bytes after the header, so a loop in the list ends.
        let status = u16(0x06) ?? 0
        if status & 0x10 != 0, var pointer = u8(0x34).map({ Int($0 & 0xFC) }) {
            var seen = 0
            while pointer >= 0x40, seen < 48, let id = u8(pointer), let next = u8(pointer + 1) {
                seen += 1
                switch id {
                case 0x05:
                    if let control = u16(pointer + 2) {
                        let is64 = control & 0x80 != 0
                        let low = u32(pointer + 4) ?? 0
                        let high = is64 ? (u32(pointer + 8) ?? 0) : 0
                        let data = u16(pointer + (is64 ? 12 : 8)) ?? 0
                        msi = MSI(enabled: control & 1 != 0, capable: 1 << Int(min((control >> 1) & 7, 5)),
                                  enabledCount: 1 << Int(min((control >> 4) & 7, 5)), is64Bit: is64,
                                  perVectorMasking: control & 0x100 != 0, address: UInt64(high) << 32 | UInt64(low), data: data)
                    }
                case 0x10:
                    if let caps = u16(pointer + 2) { expressPortType = UInt8((caps >> 4) & 0xF) }
                case 0x11:
                    if let control = u16(pointer + 2), let table = u32(pointer + 4) {
                        msix = MSIX(enabled: control & 0x8000 != 0, functionMask: control & 0x4000 != 0,
                                    tableSize: Int(control & 0x7FF) + 1, tableBIR: Int(table & 7), tableOffset: table & ~7)
                    }
                default: break
                }
                pointer = Int(next & 0xFC)
            }
        }
        // Extended capabilities from 0x100 (PCIe r6.0 §7.6.3), bounded the same way (at most
        // 960 four-byte headers fit in 0x100–0xFFF).
        var offset = 0x100
        var seen = 0
        while offset >= 0x100, seen < 960, let header = u32(offset), header != 0, header != 0xFFFF_FFFF {
            seen += 1
            if header & 0xFFFF == 0x000D, let capability = u16(offset + 4), let control = u16(offset + 6) {
                acs = ACS(capability: capability, control: control)
            }
            offset = Int(header >> 20) & 0xFFC
        }
    }
}

