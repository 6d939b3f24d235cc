/// Why a function, bridge or capability could not be built as described. These are platform
/// description errors (a BAR size that is not a power of two, a capability that does not fit),
/// never guest-controlled data: config writes and MMIO are never refused this way.
public enum PCIConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidBAR(index: Int, why: String)
    case capabilitySpaceFull(id: UInt8)
    case invalidCapability(String)

    public var description: String {
        switch self {
        case .invalidBAR(let index, let why): "BAR\(index): \(why)"
        case .capabilitySpaceFull(let id): "no room for capability 0x\(String(id, radix: 16)) below 0x100"
        case .invalidCapability(let why): why
        }
    }
}

/// Configuration header layout (PCIe r6.0 §7.5.1.1 Header Type register, bits 6:0;
/// Linux `PCI_HEADER_TYPE_NORMAL` = 0, `PCI_HEADER_TYPE_BRIDGE` = 1).
public enum HeaderType: UInt8, Hashable, Sendable {
    /// Type 0: an endpoint, six BARs.
    case endpoint = 0
    /// Type 1: a PCI-to-PCI bridge (also root and switch ports), two BARs and bus numbers.
    case bridge = 1
}

/// Register offsets and bits of the configuration header, named as in Linux
/// `include/uapi/linux/pci_regs.h` (checked there) and PCIe r6.0 §7.5.1.
public enum ConfigRegister {
    public static let vendorID = 0x00            // PCI_VENDOR_ID
    public static let deviceID = 0x02            // PCI_DEVICE_ID
    public static let command = 0x04             // PCI_COMMAND
    public static let status = 0x06              // PCI_STATUS
    public static let revisionID = 0x08          // PCI_REVISION_ID
    public static let classCode = 0x09          // PCI_CLASS_PROG (24-bit class code at 0x09..0x0B)
    public static let cacheLineSize = 0x0C       // PCI_CACHE_LINE_SIZE
    public static let headerType = 0x0E         // PCI_HEADER_TYPE
    public static let bar0 = 0x10                // PCI_BASE_ADDRESS_0
    public static let capabilitiesPointer = 0x34 // PCI_CAPABILITY_LIST
    public static let interruptLine = 0x3C       // PCI_INTERRUPT_LINE
    // Type 1 only.
    public static let primaryBus = 0x18          // PCI_PRIMARY_BUS
    public static let secondaryBus = 0x19        // PCI_SECONDARY_BUS
    public static let subordinateBus = 0x1A      // PCI_SUBORDINATE_BUS
    public static let memoryBase = 0x20          // PCI_MEMORY_BASE
    public static let memoryLimit = 0x22         // PCI_MEMORY_LIMIT
    public static let prefetchableBase = 0x24    // PCI_PREF_MEMORY_BASE
    public static let prefetchableLimit = 0x26   // PCI_PREF_MEMORY_LIMIT
    public static let prefetchableBaseUpper = 0x28 // PCI_PREF_BASE_UPPER32
    public static let prefetchableLimitUpper = 0x2C // PCI_PREF_LIMIT_UPPER32
    public static let bridgeControl = 0x3E       // PCI_BRIDGE_CONTROL

    /// Command register bits (PCIe r6.0 §7.5.1.1.3).
    public static let commandMemorySpace: UInt16 = 0x0002   // PCI_COMMAND_MEMORY
    public static let commandBusMaster: UInt16 = 0x0004     // PCI_COMMAND_MASTER
    public static let commandParity: UInt16 = 0x0040        // PCI_COMMAND_PARITY
    public static let commandSERR: UInt16 = 0x0100          // PCI_COMMAND_SERR
    public static let commandINTxDisable: UInt16 = 0x0400   // PCI_COMMAND_INTX_DISABLE
    /// The bits a PCIe function implements as RW. I/O Space Enable (bit 0) is hardwired to 0
    /// because no modelled function has an I/O BAR (permitted by §7.5.1.1.3); bits 3, 4, 5, 7
    /// and 9 are hardwired to 0 for PCIe functions (same section).
    public static let commandWritable: UInt16 = 0x0546

    /// Status register bits (PCIe r6.0 §7.5.1.1.4).
    public static let statusCapabilitiesList: UInt16 = 0x0010   // PCI_STATUS_CAP_LIST (RO)
    public static let statusReceivedMasterAbort: UInt16 = 0x2000 // PCI_STATUS_REC_MASTER_ABORT
    /// The RW1C error bits: 8 (Master Data Parity Error), 11–15 (Signaled/Received Target
    /// Abort, Received Master Abort, Signaled System Error, Detected Parity Error).
    public static let statusWriteOneToClear: UInt16 = 0xF900
}

/// Capability IDs (PCI Code and ID Assignment; Linux `PCI_CAP_ID_*`).
public enum CapabilityID {
    public static let msi: UInt8 = 0x05           // PCI_CAP_ID_MSI
    public static let pciExpress: UInt8 = 0x10    // PCI_CAP_ID_EXP
    public static let msix: UInt8 = 0x11          // PCI_CAP_ID_MSIX
}

/// One function's configuration space: 4 KiB (PCIe "extended" space, Linux
/// `PCI_CFG_SPACE_EXP_SIZE`), little-endian, with per-bit access attributes.
///
/// Every byte carries two masks: `writable` (RW bits; all others are RO, reserved or hardwired)
/// and `writeOneToClear` (RW1C status bits). A write merges only the writable bits, then clears
/// the RW1C bits written as 1, so BAR size probing, read-only IDs and status clearing all fall
/// out of the masks instead of special cases. Hardware-owned state (MSI Pending bits) is set
/// through `setHardwareBits`, which ignores the masks. Accesses of any size at any offset are
/// safe: bytes outside the 4 KiB read as 0 and ignore writes.
///
/// Extended configuration space (0x100–0xFFF) holds at most one Extended Capability, ACS at
/// 0x100 (`ACSCapability`); without it the header at 0x100 reads 0, which PCIe r6.0 §7.6.3
/// defines as "no Extended Capabilities".
public struct ConfigurationSpace: Hashable, Sendable {
    public static let size = 4096
    /// End of the space reachable by conventional configuration mechanisms
    /// (`PCI_CFG_SPACE_SIZE`); capabilities of the PCI-compatible list live below it.
    public static let compatibleSize = 256

    var bytes: [UInt8]
    var writable: [UInt8]
    var writeOneToClear: [UInt8]
    public let headerType: HeaderType
    /// BAR definitions by index; the upper half of a 64-bit BAR is nil.
    public private(set) var bars: [BaseAddressRegister?]
    var nextCapabilityOffset = 0x40
    var lastNextPointer = ConfigRegister.capabilitiesPointer

    /// A header with the given identity. The class code is 24 bits (base class, subclass,
    /// programming interface), e.g. 0x02_0000 for an Ethernet controller.
    public init(vendorID: UInt16, deviceID: UInt16, classCode: UInt32 = 0, revision: UInt8 = 0,
                headerType: HeaderType) {
        bytes = [UInt8](repeating: 0, count: ConfigurationSpace.size)
        writable = [UInt8](repeating: 0, count: ConfigurationSpace.size)
        writeOneToClear = [UInt8](repeating: 0, count: ConfigurationSpace.size)
        self.headerType = headerType
        bars = [BaseAddressRegister?](repeating: nil, count: headerType == .endpoint ? 6 : 2)
        setHardwareBits(offset: ConfigRegister.vendorID, size: 2, value: UInt32(vendorID))
        setHardwareBits(offset: ConfigRegister.deviceID, size: 2, value: UInt32(deviceID))
        setHardwareBits(offset: ConfigRegister.revisionID, size: 1, value: UInt32(revision))
        setHardwareBits(offset: ConfigRegister.classCode, size: 3, value: classCode)
        setHardwareBits(offset: ConfigRegister.headerType, size: 1, value: UInt32(headerType.rawValue))
        setAttributes(offset: ConfigRegister.command, size: 2, writable: UInt32(ConfigRegister.commandWritable))
        setAttributes(offset: ConfigRegister.status, size: 2, writable: 0,
                      writeOneToClear: UInt32(ConfigRegister.statusWriteOneToClear))
        // Cache Line Size is RW with no effect on PCIe functions (§7.5.1.1.7); Interrupt Line is
        // RW scratch for software (§7.5.1.1.13).
        setAttributes(offset: ConfigRegister.cacheLineSize, size: 1, writable: 0xFF)
        setAttributes(offset: ConfigRegister.interruptLine, size: 1, writable: 0xFF)
        if headerType == .bridge {
            // Bus numbers (§7.5.1.3.2–4) and the memory windows (§7.5.1.3.8–9): RW. The low four
            // bits of each base/limit are RO (address bits 19:0 are implied); the prefetchable
            // type field reads 1 (64-bit decode).
            setAttributes(offset: ConfigRegister.primaryBus, size: 3, writable: 0xFF_FFFF)
            setAttributes(offset: ConfigRegister.memoryBase, size: 4, writable: 0xFFF0_FFF0)
            setHardwareBits(offset: ConfigRegister.prefetchableBase, size: 4, value: 0x0001_0001)
            setAttributes(offset: ConfigRegister.prefetchableBase, size: 4, writable: 0xFFF0_FFF0)
            setAttributes(offset: ConfigRegister.prefetchableBaseUpper, size: 4, writable: 0xFFFF_FFFF)
            setAttributes(offset: ConfigRegister.prefetchableLimitUpper, size: 4, writable: 0xFFFF_FFFF)
            // Bridge Control: Parity Error Response, SERR# Enable, Secondary Bus Reset.
            setAttributes(offset: ConfigRegister.bridgeControl, size: 2, writable: 0x0043)
        }
    }

    // MARK: Software access

    /// Reads `size` bytes (1…4; others are clamped) little-endian at `offset`.
    public func read(offset: Int, size: Int) -> UInt32 {
        let width = min(max(size, 1), 4)
        var value: UInt32 = 0
        for i in 0..<width {
            value |= UInt32(byte(at: offset &+ i)) << UInt32(8 * i)
        }
        return value
    }

    /// Writes the low `size` bytes (1…4) of `value` at `offset` as software: RO bits keep their
    /// value, RW bits take the new one, RW1C bits written as 1 clear.
    public mutating func write(offset: Int, size: Int, value: UInt32) {
        let width = min(max(size, 1), 4)
        for i in 0..<width {
            let index = offset &+ i
            guard index >= 0, index < ConfigurationSpace.size else { continue }
            let new = UInt8(truncatingIfNeeded: value >> UInt32(8 * i))
            let w = writable[index]
            var merged = (bytes[index] & ~w) | (new & w)
            merged &= ~(new & writeOneToClear[index])
            bytes[index] = merged
        }
    }

    func byte(at index: Int) -> UInt8 {
        index >= 0 && index < ConfigurationSpace.size ? bytes[index] : 0
    }

    // MARK: Hardware access (the model building or updating its own registers)

    /// Stores bits regardless of access attributes: identity registers, RO capability fields,
    /// hardware-set status such as MSI Pending bits.
    public mutating func setHardwareBits(offset: Int, size: Int, value: UInt32) {
        for i in 0..<min(max(size, 1), 4) {
            let index = offset &+ i
            guard index >= 0, index < ConfigurationSpace.size else { continue }
            bytes[index] = UInt8(truncatingIfNeeded: value >> UInt32(8 * i))
        }
    }

    /// Sets which bits of `[offset, offset + size)` software may write or clear.
    mutating func setAttributes(offset: Int, size: Int, writable mask: UInt32, writeOneToClear w1c: UInt32 = 0) {
        for i in 0..<min(max(size, 1), 4) {
            let index = offset &+ i
            guard index >= 0, index < ConfigurationSpace.size else { continue }
            writable[index] = UInt8(truncatingIfNeeded: mask >> UInt32(8 * i))
            writeOneToClear[index] = UInt8(truncatingIfNeeded: w1c >> UInt32(8 * i))
        }
    }

    // MARK: Decoded fields

    public var vendorID: UInt16 { UInt16(truncatingIfNeeded: read(offset: ConfigRegister.vendorID, size: 2)) }
    public var deviceID: UInt16 { UInt16(truncatingIfNeeded: read(offset: ConfigRegister.deviceID, size: 2)) }
    public var command: UInt16 { UInt16(truncatingIfNeeded: read(offset: ConfigRegister.command, size: 2)) }
    public var status: UInt16 { UInt16(truncatingIfNeeded: read(offset: ConfigRegister.status, size: 2)) }
    /// Command.Bus Master Enable: without it the function may issue no memory request, and so
    /// no MSI/MSI-X either, since those are memory writes (PCIe r6.0 §7.5.1.1.3).
    public var busMasterEnabled: Bool { command & ConfigRegister.commandBusMaster != 0 }
    /// Command.Memory Space Enable: without it the function decodes none of its memory BARs.
    public var memorySpaceEnabled: Bool { command & ConfigRegister.commandMemorySpace != 0 }

    // MARK: Base Address Registers

    /// Implements BAR `definition.index` (PCIe r6.0 §7.5.1.2.1). The address bits below the size
    /// are RO 0, so writing all-ones and reading back gives `~(size − 1)` plus the RO type bits:
    /// the size probe Linux `__pci_read_base` performs.
    public mutating func defineBAR(_ definition: BaseAddressRegister) throws(PCIConfigurationError) {
        let index = definition.index
        let wide = definition.kind == .memory64
        guard index >= 0, index < bars.count, !wide || index + 1 < bars.count else {
            throw .invalidBAR(index: index, why: "no such BAR in a type \(headerType.rawValue) header")
        }
        guard bars[index] == nil, index == 0 || !(bars[index - 1]?.kind == .memory64),
              !wide || bars[index + 1] == nil else {
            throw .invalidBAR(index: index, why: "overlaps another BAR")
        }
        let size = definition.size
        guard size >= 16, size & (size &- 1) == 0 else {
            throw .invalidBAR(index: index, why: "size \(size) is not a power of two ≥ 16")
        }
        guard wide || size <= 1 << 31 else {
            throw .invalidBAR(index: index, why: "a 32-bit BAR cannot decode \(size) bytes")
        }
        let offset = ConfigRegister.bar0 + 4 * index
        var typeBits: UInt32 = wide ? 0x4 : 0x0                 // PCI_BASE_ADDRESS_MEM_TYPE_64
        if definition.prefetchable { typeBits |= 0x8 }           // PCI_BASE_ADDRESS_MEM_PREFETCH
        setHardwareBits(offset: offset, size: 4, value: typeBits)
        let sizeMask = ~(size &- 1)
        setAttributes(offset: offset, size: 4, writable: UInt32(truncatingIfNeeded: sizeMask) & 0xFFFF_FFF0)
        if wide {
            setHardwareBits(offset: offset + 4, size: 4, value: 0)
            setAttributes(offset: offset + 4, size: 4, writable: UInt32(truncatingIfNeeded: sizeMask >> 32))
        }
        bars[index] = definition
    }

    /// The bus address BAR `index` holds, or nil if it is not implemented.
    public func barAddress(_ index: Int) -> UInt64? {
        guard index >= 0, index < bars.count, let bar = bars[index] else { return nil }
        let offset = ConfigRegister.bar0 + 4 * index
        let low = UInt64(read(offset: offset, size: 4)) & ~0xF
        guard bar.kind == .memory64 else { return low }
        return UInt64(read(offset: offset + 4, size: 4)) << 32 | low
    }

    /// The BAR whose window holds `address` while Memory Space Enable is set, with the offset
    /// into it (§7.5.1.1.3: the function decodes none of its BARs otherwise).
    public func decodeBAR(_ address: UInt64) -> (index: Int, offset: UInt64)? {
        guard memorySpaceEnabled else { return nil }
        for (index, definition) in bars.enumerated() {
            guard let definition, let base = barAddress(index) else { continue }
            let offset = address &- base
            if address >= base, offset < definition.size { return (index, offset) }
        }
        return nil
    }

    // MARK: Capability list

    /// Appends a capability of `length` bytes to the PCI-compatible list (PCIe r6.0 §7.5.3:
    /// DWORD-aligned, between 0x40 and 0xFF) and sets Status.Capabilities List. Returns its offset.
    public mutating func addCapability(id: UInt8, length: Int) throws(PCIConfigurationError) -> Int {
        let offset = nextCapabilityOffset
        let padded = (max(length, 4) + 3) & ~3
        guard offset + padded <= ConfigurationSpace.compatibleSize else { throw .capabilitySpaceFull(id: id) }
        setHardwareBits(offset: offset, size: 1, value: UInt32(id))
        setHardwareBits(offset: offset + 1, size: 1, value: 0)
        setHardwareBits(offset: lastNextPointer, size: 1, value: UInt32(offset))
        lastNextPointer = offset + 1
        nextCapabilityOffset = offset + padded
        let status = UInt32(self.status | ConfigRegister.statusCapabilitiesList)
        setHardwareBits(offset: ConfigRegister.status, size: 2, value: status)
        return offset
    }

    /// The capability list as software walks it: from the Capabilities Pointer, following each
    /// Next pointer with its two low bits ignored, stopping at a pointer below 0x40 or after 48
    /// entries. These are the rules of Linux `__pci_find_next_cap_ttl` (`PCI_FIND_CAP_TTL` = 48),
    /// which make a looping or corrupt list terminate.
    public func capabilityList() -> [(id: UInt8, offset: Int)] {
        var result: [(id: UInt8, offset: Int)] = []
        var position = Int(byte(at: ConfigRegister.capabilitiesPointer))
        var ttl = 48
        while ttl > 0 {
            ttl -= 1
            guard position >= 0x40 else { break }
            position &= ~3
            let id = byte(at: position)
            if id == 0xFF { break }
            result.append((id, position))
            position = Int(byte(at: position + 1))
        }
        return result
    }

    /// The offset of the first capability with `id`, as Linux `pci_find_capability` returns it.
    public func findCapability(_ id: UInt8) -> Int? {
        capabilityList().first { $0.id == id }?.offset
    }
}

/// A memory Base Address Register (PCIe r6.0 §7.5.1.2.1). I/O BARs are not modelled: no device
/// on the MSI path needs one.
public struct BaseAddressRegister: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// Decodes a 32-bit address; one register.
        case memory32
        /// Decodes a 64-bit address; takes this register and the next.
        case memory64
    }

    public var index: Int
    public var kind: Kind
    /// Bytes decoded: a power of two, at least 16.
    public var size: UInt64
    public var prefetchable: Bool

    public init(index: Int, kind: Kind = .memory64, size: UInt64, prefetchable: Bool = false) {
        self.index = index
        self.kind = kind
        self.size = size
        self.prefetchable = prefetchable
    }
}
