/// The guest's MSI capability of a passthrough function, emulated by the VMM as QEMU's vfio-pci
/// does (`vfio_msi_setup` → `msi_init(pdev, pos, entries, msi_64bit, msi_maskbit)`: QEMU's own
/// `hw/pci/msi.c` emulation owns the capability; `vfio_pci_write_config` then reacts to its
/// Enable bit).
///
/// Layout (PCIe r6.0 §7.7.1; Linux `PCI_MSI_*`, the same table as `MSICapability`):
/// Message Control at +2, Address at +4, Upper Address at +8 (64-bit), Data at +8 / +0xC,
/// Mask Bits at +0xC / +0x10 and Pending Bits at +0x10 / +0x14 (per-vector masking).
///
/// What the guest can change, as QEMU's `msi_init` write masks: Message Control Enable [0] and
/// Multiple Message Enable [6:4]; Address [31:2] (bits 1:0 read 0, §7.7.1.3); Upper Address;
/// Message Data [15:0]; Mask Bits for the 2^MMC vectors the function has. Read-only: Multiple
/// Message Capable [3:1], 64-bit [7] and Per-Vector Masking Capable [8] from the function;
/// Extended Message Data Capable [9] reads 0 (QEMU's `msi_init` builds Message Control from its
/// own arguments and never sets it), so the guest never enables extended data; Pending Bits are
/// the emulation's (`msi_notify` sets them for a masked vector).
public struct VirtualMSICapability: Hashable, Sendable {
    /// Offset of the capability in configuration space.
    public let offset: Int
    public let is64Bit: Bool
    public let perVectorMasking: Bool
    /// Multiple Message Capable (log2 of the vectors the function can use, 0…5).
    public let multipleMessageCapable: Int

    public private(set) var enabled = false
    /// Multiple Message Enable as written (bits 6:4).
    public private(set) var multipleMessageEnable = 0
    public private(set) var address: UInt64 = 0
    public private(set) var data: UInt16 = 0
    public private(set) var maskBits: UInt32 = 0
    public internal(set) var pendingBits: UInt32 = 0

    public init(offset: Int, control: UInt16) {
        self.offset = offset
        is64Bit = control & 0x0080 != 0
        perVectorMasking = control & 0x0100 != 0
        multipleMessageCapable = min(Int((control >> 1) & 0x7), 5)
    }

    /// Bytes the capability occupies (QEMU `vfio_msi_setup`: `0xa + (maskbit ? 0xa : 0) +
    /// (64bit ? 0x4 : 0)`).
    public var length: Int { 0x0A + (perVectorMasking ? 0x0A : 0) + (is64Bit ? 0x04 : 0) }
    public var dataOffset: Int { is64Bit ? 0x0C : 0x08 }
    public var maskOffset: Int? { perVectorMasking ? (is64Bit ? 0x10 : 0x0C) : nil }
    public var pendingOffset: Int? { perVectorMasking ? (is64Bit ? 0x14 : 0x10) : nil }
    /// Vectors the function has: 2^MMC.
    public var capableVectors: Int { 1 << multipleMessageCapable }
    /// QEMU `msi_nr_vectors_allocated`: 2^MME, MME above MMC counted as MMC (`msi_write_config`
    /// clamps it when Enable is set; the reserved encodings 6–7 likewise).
    public var allocatedVectors: Int { 1 << min(multipleMessageEnable, multipleMessageCapable) }
    /// The bits of Mask/Pending that exist.
    var vectorBits: UInt32 { capableVectors >= 32 ? .max : (UInt32(1) << UInt32(capableVectors)) &- 1 }

    /// Whether [reg, reg+4) holds any of the capability's registers (header dword included).
    public func covers(dword reg: Int) -> Bool { reg >= offset && reg - offset < length }

    /// Message Control as the guest reads it.
    public var control: UInt16 {
        var value = UInt16(multipleMessageCapable) << 1 | UInt16(min(multipleMessageEnable, 7)) << 4
        if enabled { value |= 1 }
        if is64Bit { value |= 0x0080 }
        if perVectorMasking { value |= 0x0100 }
        return value
    }

    /// The dword at `reg` (4-aligned, inside the capability); `header` is the function's own
    /// Capability ID / Next Pointer half.
    public func readDword(_ reg: Int, header: UInt16) -> UInt32 {
        switch reg - offset {
        case 0x00: return UInt32(header) | UInt32(control) << 16
        case 0x04: return UInt32(truncatingIfNeeded: address)
        case 0x08 where is64Bit: return UInt32(truncatingIfNeeded: address >> 32)
        case dataOffset: return UInt32(data)
        case maskOffset: return maskBits
        case pendingOffset: return pendingBits & vectorBits
        default: return 0
        }
    }

    /// A guest write, merged into the dword at `reg` (the caller merged partial writes).
    public mutating func writeDword(_ reg: Int, _ value: UInt32) {
        switch reg - offset {
        case 0x00:
            let control = UInt16(truncatingIfNeeded: value >> 16)
            enabled = control & 1 != 0
            multipleMessageEnable = Int((control >> 4) & 0x7)
        case 0x04: address = (address & ~0xFFFF_FFFF) | UInt64(value & ~0x3)
        case 0x08 where is64Bit: address = (address & 0xFFFF_FFFF) | UInt64(value) << 32
        case dataOffset: data = UInt16(truncatingIfNeeded: value)
        case maskOffset: maskBits = value & vectorBits
        default: break
        }
    }

    /// QEMU `msi_get_message(dev, vector)`: the address, and Message Data with its low
    /// log2(allocated) bits replaced by the vector number (§6.1.4: the function may modify
    /// those bits).
    public func message(vector: Int) -> (address: UInt64, data: UInt32) {
        let count = UInt32(allocatedVectors)
        let low = UInt32(truncatingIfNeeded: vector) & (count &- 1)
        return (address, UInt32(data) & ~(count &- 1) | low)
    }

    /// QEMU `msi_is_masked`: the vector's Mask bit, when the function has per-vector masking.
    public func isMasked(_ vector: Int) -> Bool {
        guard perVectorMasking, vector >= 0, vector < 32 else { return false }
        return maskBits & (UInt32(1) << UInt32(vector)) != 0
    }
}
