/// How a function's MSI-X capability is built: the RO fields of its capability registers.
public struct MSIXConfiguration: Hashable, Sendable {
    /// Table entries, 1…2048 (Table Size holds N − 1 in bits 10:0).
    public var tableSize: Int
    /// The BAR (BIR) and QWORD-aligned offset of the table.
    public var tableBAR: Int
    public var tableOffset: UInt32
    /// The BAR and QWORD-aligned offset of the Pending Bit Array.
    public var pbaBAR: Int
    public var pbaOffset: UInt32

    public init(tableSize: Int, tableBAR: Int = 0, tableOffset: UInt32 = 0, pbaBAR: Int = 0, pbaOffset: UInt32 = 0x800) {
        self.tableSize = tableSize
        self.tableBAR = tableBAR
        self.tableOffset = tableOffset
        self.pbaBAR = pbaBAR
        self.pbaOffset = pbaOffset
    }
}

/// The MSI-X capability (Cap ID 0x11, 12 bytes; PCIe r6.0 §7.7.2), checked against Linux
/// `pci_regs.h`: Message Control at +2 with Table Size[10:0] (`PCI_MSIX_FLAGS_QSIZE` 0x07FF,
/// N − 1), Function Mask[14] (`PCI_MSIX_FLAGS_MASKALL` 0x4000), MSI-X Enable[15]
/// (`PCI_MSIX_FLAGS_ENABLE` 0x8000); Table Offset/BIR at +4 and PBA Offset/BIR at +8, each
/// BIR[2:0] and a QWORD-aligned Offset[31:3] (`PCI_MSIX_TABLE_BIR` 7, `_OFFSET` 0xfffffff8).
///
/// Only Function Mask and Enable are RW; Table Size, the offsets and BIRs are RO, bits 13:11
/// are reserved and read 0. Both RW bits reset to 0 (§7.7.2.2).
public struct MSIXCapability: Hashable, Sendable {
    public let offset: Int
    public let tableSize: Int
    public let tableBAR: Int
    public let tableOffset: UInt64
    public let pbaBAR: Int
    public let pbaOffset: UInt64

    public static let controlFunctionMask: UInt16 = 0x4000   // PCI_MSIX_FLAGS_MASKALL
    public static let controlEnable: UInt16 = 0x8000         // PCI_MSIX_FLAGS_ENABLE
    public static let length = 12                            // PCI_CAP_MSIX_SIZEOF

    public var controlOffset: Int { offset + 0x2 }   // PCI_MSIX_FLAGS
    public var tableRegisterOffset: Int { offset + 0x4 } // PCI_MSIX_TABLE
    public var pbaRegisterOffset: Int { offset + 0x8 }   // PCI_MSIX_PBA
    /// Bytes the table occupies in its BAR: 16 per entry (`PCI_MSIX_ENTRY_SIZE`).
    public var tableLength: UInt64 { UInt64(tableSize) * 16 }
    /// Bytes the PBA occupies: one bit per vector, in whole QWORDs.
    public var pbaLength: UInt64 { UInt64((tableSize + 63) / 64) * 8 }

    /// Adds the capability to `config`. The table and PBA must sit inside memory BARs already
    /// defined on `config`, at QWORD-aligned offsets.
    public static func install(into config: inout ConfigurationSpace, _ configuration: MSIXConfiguration) throws(PCIConfigurationError) -> MSIXCapability {
        let size = configuration.tableSize
        guard size >= 1, size <= 2048 else { throw .invalidCapability("MSI-X table size \(size) is not 1…2048") }
        let cap = MSIXCapability(offset: 0, tableSize: size, tableBAR: configuration.tableBAR,
                                 tableOffset: UInt64(configuration.tableOffset), pbaBAR: configuration.pbaBAR,
                                 pbaOffset: UInt64(configuration.pbaOffset))
        for (bar, start, length, what) in [(cap.tableBAR, cap.tableOffset, cap.tableLength, "table"),
                                           (cap.pbaBAR, cap.pbaOffset, cap.pbaLength, "PBA")] {
            guard start & 7 == 0 else { throw .invalidCapability("MSI-X \(what) offset is not QWORD aligned") }
            guard bar >= 0, bar < config.bars.count, let definition = config.bars[bar] else {
                throw .invalidCapability("MSI-X \(what) BIR \(bar) names no memory BAR")
            }
            guard start <= definition.size, length <= definition.size - start else {
                throw .invalidCapability("MSI-X \(what) does not fit in BAR\(bar)")
            }
        }
        if cap.tableBAR == cap.pbaBAR, cap.tableOffset < cap.pbaOffset + cap.pbaLength,
           cap.pbaOffset < cap.tableOffset + cap.tableLength {
            throw .invalidCapability("MSI-X table and PBA overlap")
        }
        let offset = try config.addCapability(id: CapabilityID.msix, length: length)
        let placed = MSIXCapability(offset: offset, tableSize: cap.tableSize, tableBAR: cap.tableBAR,
                                    tableOffset: cap.tableOffset, pbaBAR: cap.pbaBAR, pbaOffset: cap.pbaOffset)
        config.setHardwareBits(offset: placed.controlOffset, size: 2, value: UInt32(size - 1))
        config.setAttributes(offset: placed.controlOffset, size: 2, writable: 0xC000)
        config.setHardwareBits(offset: placed.tableRegisterOffset, size: 4,
                               value: UInt32(truncatingIfNeeded: placed.tableOffset) | UInt32(placed.tableBAR))
        config.setHardwareBits(offset: placed.pbaRegisterOffset, size: 4,
                               value: UInt32(truncatingIfNeeded: placed.pbaOffset) | UInt32(placed.pbaBAR))
        return placed
    }

    public func control(in config: ConfigurationSpace) -> UInt16 {
        UInt16(truncatingIfNeeded: config.read(offset: controlOffset, size: 2))
    }

    public func isEnabled(in config: ConfigurationSpace) -> Bool { control(in: config) & Self.controlEnable != 0 }

    public func isFunctionMasked(in config: ConfigurationSpace) -> Bool {
        control(in: config) & Self.controlFunctionMask != 0
    }
}

/// The MSI-X Table and Pending Bit Array of one function (PCIe r6.0 §7.7.2.6–7.7.2.10), the
/// memory behind the BAR ranges the capability points at.
///
/// Entry layout, 16 bytes (`PCI_MSIX_ENTRY_*`): +0x0 Message Address (bits 1:0 RO 0: the
/// message address is DWORD aligned; software must write them 0, §7.7.2.7, and we hardwire
/// them), +0x4 Message Upper Address, +0x8 Message Data, +0xC Vector Control with Mask at
/// bit 0 (`PCI_MSIX_ENTRY_CTRL_MASKBIT`). The other Vector Control bits are reserved (the
/// optional Steering Tag fields are not implemented) and read 0.
///
/// Reset state (§7.7.2.10): every entry's Mask bit is 1, so no vector fires until software
/// unmasks it; every Pending bit is 0 (§7.7.2.11). The spec gives Address and Data no reset
/// value; this model resets them to 0.
///
/// Accesses: the spec requires aligned DWORD or QWORD accesses and leaves others undefined;
/// this model accepts any size at any offset byte-lane by byte-lane, so nothing traps. A
/// multi-DWORD write updates DWORDs in ascending address order, which gives the ordering
/// guarantee of §6.1.4.5 (Message Data becomes visible no later than Vector Control in one
/// QWORD write). The PBA is read-only: software writes to it are ignored ("undefined" in the
/// spec).
public struct MSIXTable: Hashable, Sendable {
    /// Four DWORDs per entry.
    var words: [UInt32]
    /// One bit per vector.
    var pending: [UInt64]
    public let size: Int

    public init(size: Int) {
        self.size = max(size, 0)
        words = [UInt32](repeating: 0, count: self.size * 4)
        pending = [UInt64](repeating: 0, count: (self.size + 63) / 64)
        for entry in 0..<self.size { words[entry * 4 + 3] = 1 }
    }

    public func messageAddress(_ vector: Int) -> UInt64 {
        guard vector >= 0, vector < size else { return 0 }
        return UInt64(words[vector * 4 + 1]) << 32 | UInt64(words[vector * 4])
    }

    public func messageData(_ vector: Int) -> UInt32 {
        guard vector >= 0, vector < size else { return 0 }
        return words[vector * 4 + 2]
    }

    public func vectorControl(_ vector: Int) -> UInt32 {
        guard vector >= 0, vector < size else { return 0 }
        return words[vector * 4 + 3]
    }

    public func isMasked(_ vector: Int) -> Bool { vectorControl(vector) & 1 != 0 }

    public func isPending(_ vector: Int) -> Bool {
        guard vector >= 0, vector < size else { return false }
        return pending[vector / 64] & (1 << UInt64(vector % 64)) != 0
    }

    mutating func setPending(_ vector: Int, _ value: Bool) {
        guard vector >= 0, vector < size else { return }
        let bit = UInt64(1) << UInt64(vector % 64)
        if value { pending[vector / 64] |= bit } else { pending[vector / 64] &= ~bit }
    }

    /// The QWORD of the PBA at `index` (bits beyond the table size read 0).
    public func pendingQWORD(_ index: Int) -> UInt64 {
        index >= 0 && index < pending.count ? pending[index] : 0
    }

    // MARK: MMIO (offsets relative to the start of the table or the PBA)

    func readTableByte(_ offset: UInt64) -> UInt8 {
        guard offset < UInt64(size) * 16 else { return 0 }
        let word = words[Int(offset / 4)]
        return UInt8(truncatingIfNeeded: word >> UInt32(8 * (offset % 4)))
    }

    /// Reads `size` bytes (clamped to 1…8) of the table.
    public func readTable(offset: UInt64, size: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<min(max(size, 1), 8) {
            value |= UInt64(readTableByte(offset &+ UInt64(i))) << UInt64(8 * i)
        }
        return value
    }

    /// Writes `size` bytes of the table; returns the entries whose Vector Control was written,
    /// so the function can send pending messages of vectors that became unmasked.
    @discardableResult
    public mutating func writeTable(offset: UInt64, size: Int, value: UInt64) -> [Int] {
        let width = min(max(size, 1), 8)
        var touchedControl: [Int] = []
        var i = 0
        while i < width {
            let byteOffset = offset &+ UInt64(i)
            guard byteOffset < UInt64(self.size) * 16 else { i += 1; continue }
            let wordIndex = Int(byteOffset / 4)
            // Gather every byte of this write that lands in this DWORD, then apply the DWORD.
            var word = words[wordIndex]
            var j = i
            while j < width, offset &+ UInt64(j) >= UInt64(wordIndex) * 4, offset &+ UInt64(j) < UInt64(wordIndex) * 4 + 4 {
                let lane = UInt32((offset &+ UInt64(j)) % 4)
                let byte = UInt32(truncatingIfNeeded: value >> UInt64(8 * j)) & 0xFF
                word = word & ~(0xFF << (8 * lane)) | byte << (8 * lane)
                j += 1
            }
            switch wordIndex % 4 {
            case 0: words[wordIndex] = word & ~0x3          // Message Address [1:0] RO 0
            case 3:
                words[wordIndex] = word & 0x1                  // only Mask is implemented
                touchedControl.append(wordIndex / 4)
            default: words[wordIndex] = word
            }
            i = max(j, i + 1)
        }
        return touchedControl
    }

    /// Reads `size` bytes (clamped to 1…8) of the PBA.
    public func readPBA(offset: UInt64, size: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<min(max(size, 1), 8) {
            let byteOffset = offset &+ UInt64(i)
            guard byteOffset / 8 < UInt64(pending.count) else { continue }
            let byte = pending[Int(byteOffset / 8)] >> UInt64(8 * (byteOffset % 8)) & 0xFF
            value |= byte << UInt64(8 * i)
        }
        return value
    }
}
