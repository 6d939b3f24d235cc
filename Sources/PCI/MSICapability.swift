/// How a function's MSI capability is built: the RO fields of its Message Control register.
public struct MSIConfiguration: Hashable, Sendable {
    /// Message Control bit 7, 64 bit Address Capable. PCIe endpoints must set it (PCIe r6.0
    /// §6.1.4: "A PCI Express Endpoint that implements MSI is required to support the 64-bit
    /// Message Address version"); legacy endpoints may not.
    public var is64Bit: Bool
    /// Message Control bit 8, Per-Vector Masking Capable: adds Mask Bits and Pending Bits.
    public var perVectorMasking: Bool
    /// Message Control bits 3:1, Multiple Message Capable: log2 of the vectors requested, 0…5
    /// (1…32 vectors). Larger values are clamped to 5.
    public var vectorsLog2: Int
    /// Message Control bit 9, Extended Message Data Capable (PCIe r4.0 and later): the upper 16
    /// bits of the Message Data DWORD become an RW Extended Message Data register, sent when
    /// Extended Message Data Enable (bit 10) is set.
    public var extendedMessageData: Bool

    public init(is64Bit: Bool = true, perVectorMasking: Bool = true, vectorsLog2: Int = 0,
                extendedMessageData: Bool = false) {
        self.is64Bit = is64Bit
        self.perVectorMasking = perVectorMasking
        self.vectorsLog2 = min(max(vectorsLog2, 0), 5)
        self.extendedMessageData = extendedMessageData
    }
}

/// The MSI capability (Cap ID 0x05; PCIe r6.0 §7.7.1, §6.1.4). Its registers live in the
/// function's `ConfigurationSpace`; this value knows where they are and what they mean.
///
/// Layouts (offsets from the capability; Linux `pci_regs.h` `PCI_MSI_*`, checked there):
///
/// | layout            | Addr lo | Addr hi | Data (+Ext) | Mask | Pending | length |
/// |-------------------|---------|---------|-------------|------|---------|--------|
/// | 32-bit            | 0x04    | –       | 0x08 (0x0A) | –    | –       | 0x0C   |
/// | 32-bit + masking  | 0x04    | –       | 0x08 (0x0A) | 0x0C | 0x10    | 0x14   |
/// | 64-bit            | 0x04    | 0x08    | 0x0C (0x0E) | –    | –       | 0x10   |
/// | 64-bit + masking  | 0x04    | 0x08    | 0x0C (0x0E) | 0x10 | 0x14    | 0x18   |
///
/// Message Control (+0x02): Enable[0] RW, Multiple Message Capable[3:1] RO, Multiple Message
/// Enable[6:4] RW, 64-bit[7] RO, Per-Vector Masking Capable[8] RO, Extended Message Data
/// Capable[9] RO, Extended Message Data Enable[10] RW if capable; the rest reserved.
///
/// Extended Message Data, verified against PCIe r4.0+ §7.7.1.2
/// (a transcription of §6.1.4.1/§6.1.4.4, and the Message Control bit list bit 9 = Capable,
/// bit 10 = Enable; Linux DWC endpoint code defines `PCI_MSI_EXT_DATA_EN` as bit 26 of the
/// capability's first DWORD, i.e. Message Control bit 10). It exists in both the 32- and 64-bit
/// layouts, as the upper 16 bits of the DWORD holding Message Data. With Enable clear the
/// function writes Message Data in the low two bytes and zeros in the upper two.
///
/// Address low bits 1:0 are RO 0 (DWORD-aligned message address, §7.7.1.3). Mask and Pending
/// bits exist only for the vectors the function is capable of (2^MMC); the others are
/// reserved and read 0. Pending bits are RO to software and set by the function.
public struct MSICapability: Hashable, Sendable {
    public let offset: Int
    public let is64Bit: Bool
    public let perVectorMasking: Bool
    public let multipleMessageCapable: Int
    public let extendedMessageDataCapable: Bool

    public static let controlEnable: UInt16 = 0x0001           // PCI_MSI_FLAGS_ENABLE
    public static let controlExtendedDataEnable: UInt16 = 0x0400

    public var controlOffset: Int { offset + 0x2 }          // PCI_MSI_FLAGS
    public var addressLowOffset: Int { offset + 0x4 }       // PCI_MSI_ADDRESS_LO
    public var addressHighOffset: Int? { is64Bit ? offset + 0x8 : nil } // PCI_MSI_ADDRESS_HI
    public var dataOffset: Int { offset + (is64Bit ? 0xC : 0x8) }       // PCI_MSI_DATA_64 / _32
    public var extendedDataOffset: Int { dataOffset + 2 }
    public var maskOffset: Int? { perVectorMasking ? offset + (is64Bit ? 0x10 : 0xC) : nil } // PCI_MSI_MASK_64 / _32
    public var pendingOffset: Int? { perVectorMasking ? offset + (is64Bit ? 0x14 : 0x10) : nil } // PCI_MSI_PENDING_64 / _32
    public var length: Int { is64Bit ? (perVectorMasking ? 0x18 : 0x10) : (perVectorMasking ? 0x14 : 0x0C) }
    /// Vectors the function can use: 2^MMC.
    public var capableVectors: Int { 1 << multipleMessageCapable }

    /// Adds the capability to `config` with Enable clear, MME 0, address, data and mask 0
    /// (the reset values of §7.7.1).
    public static func install(into config: inout ConfigurationSpace, _ configuration: MSIConfiguration) throws(PCIConfigurationError) -> MSICapability {
        let probe = MSICapability(offset: 0, is64Bit: configuration.is64Bit, perVectorMasking: configuration.perVectorMasking,
                                  multipleMessageCapable: configuration.vectorsLog2,
                                  extendedMessageDataCapable: configuration.extendedMessageData)
        let offset = try config.addCapability(id: CapabilityID.msi, length: probe.length)
        let cap = MSICapability(offset: offset, is64Bit: probe.is64Bit, perVectorMasking: probe.perVectorMasking,
                                multipleMessageCapable: probe.multipleMessageCapable,
                                extendedMessageDataCapable: probe.extendedMessageDataCapable)
        var control = UInt32(cap.multipleMessageCapable) << 1
        if cap.is64Bit { control |= 0x0080 }                    // PCI_MSI_FLAGS_64BIT
        if cap.perVectorMasking { control |= 0x0100 }           // PCI_MSI_FLAGS_MASKBIT
        if cap.extendedMessageDataCapable { control |= 0x0200 }
        config.setHardwareBits(offset: cap.controlOffset, size: 2, value: control)
        var controlWritable: UInt32 = 0x0071                     // Enable, MME
        if cap.extendedMessageDataCapable { controlWritable |= UInt32(controlExtendedDataEnable) }
        config.setAttributes(offset: cap.controlOffset, size: 2, writable: controlWritable)
        config.setAttributes(offset: cap.addressLowOffset, size: 4, writable: 0xFFFF_FFFC)
        if let high = cap.addressHighOffset { config.setAttributes(offset: high, size: 4, writable: 0xFFFF_FFFF) }
        config.setAttributes(offset: cap.dataOffset, size: 2, writable: 0xFFFF)
        if cap.extendedMessageDataCapable { config.setAttributes(offset: cap.extendedDataOffset, size: 2, writable: 0xFFFF) }
        if let mask = cap.maskOffset {
            config.setAttributes(offset: mask, size: 4, writable: UInt32(truncatingIfNeeded: UInt64.lowMask(cap.capableVectors)))
        }
        return cap
    }

    // MARK: Decoding from configuration space

    public func control(in config: ConfigurationSpace) -> UInt16 {
        UInt16(truncatingIfNeeded: config.read(offset: controlOffset, size: 2))
    }

    public func isEnabled(in config: ConfigurationSpace) -> Bool { control(in: config) & Self.controlEnable != 0 }

    /// Multiple Message Enable as written (bits 6:4).
    public func multipleMessageEnable(in config: ConfigurationSpace) -> Int { Int((control(in: config) >> 4) & 0x7) }

    /// Vectors software allocated: 2^MME. An MME above MMC (software error, "undefined" in
    /// §7.7.1.2) is treated as MMC, and the reserved encodings 6 and 7 likewise: the function
    /// never uses more vectors than it has.
    public func allocatedVectors(in config: ConfigurationSpace) -> Int {
        1 << min(multipleMessageEnable(in: config), multipleMessageCapable)
    }

    public func address(in config: ConfigurationSpace) -> UInt64 {
        let low = UInt64(config.read(offset: addressLowOffset, size: 4))
        guard let high = addressHighOffset else { return low }
        return UInt64(config.read(offset: high, size: 4)) << 32 | low
    }

    /// The DWORD the function writes for vector 0: Message Data in the low 16 bits, and
    /// Extended Message Data in the upper 16 if Extended Message Data Enable is set, else 0
    /// (§6.1.4.4).
    public func baseData(in config: ConfigurationSpace) -> UInt32 {
        let data = config.read(offset: dataOffset, size: 2)
        guard extendedMessageDataCapable, control(in: config) & Self.controlExtendedDataEnable != 0 else { return data }
        return config.read(offset: extendedDataOffset, size: 2) << 16 | data
    }

    /// The DWORD for `vector`. With N = 2^MME vectors allocated the function modifies the low
    /// log2(N) bits of Message Data to the vector number (§6.1.4 "Multiple Message Enable …
    /// defines the number of low order message data bits the function is permitted to modify").
    /// Modelled as replace (`data & ~(N−1) | vector`), as QEMU `msi_get_message` does; when
    /// software aligns the data to N, as Linux does, this equals OR-ing the vector in.
    public func data(vector: Int, in config: ConfigurationSpace) -> UInt32 {
        let count = UInt32(allocatedVectors(in: config))
        let low = UInt32(truncatingIfNeeded: vector) & (count &- 1)
        return baseData(in: config) & ~(count &- 1) | low
    }

    public func maskBits(in config: ConfigurationSpace) -> UInt32 {
        guard let maskOffset else { return 0 }
        return config.read(offset: maskOffset, size: 4)
    }

    public func pendingBits(in config: ConfigurationSpace) -> UInt32 {
        guard let pendingOffset else { return 0 }
        return config.read(offset: pendingOffset, size: 4)
    }

    public func isMasked(vector: Int, in config: ConfigurationSpace) -> Bool {
        vector >= 0 && vector < 32 && maskBits(in: config) & (1 << UInt32(vector)) != 0
    }

    func setPending(vector: Int, _ pending: Bool, in config: inout ConfigurationSpace) {
        guard let pendingOffset, vector >= 0, vector < capableVectors else { return }
        var bits = pendingBits(in: config)
        let bit = UInt32(1) << UInt32(vector)
        bits = pending ? bits | bit : bits & ~bit
        config.setHardwareBits(offset: pendingOffset, size: 4, value: bits)
    }
}
