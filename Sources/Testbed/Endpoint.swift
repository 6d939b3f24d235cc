import Bus
import PCI

/// The endpoint the scenario worlds and `doorbell host` put on a bus: virtio's IDs (1af4:1041)
/// and a 64-bit BAR 0 that holds, for MSI-X, the table at 0 and the PBA after it (each 8-byte
/// aligned as PCIe r6.0 §7.7.2 asks; the BAR a power of two of at least 16 KiB).
public enum Endpoint {
    /// Which interrupt capability the function has.
    public enum Interrupts: Sendable {
        /// An MSI-X table of `vectors` entries.
        case msix(vectors: Int)
        /// A multi-message MSI capability (64-bit, per-vector masking) for `vectors` messages,
        /// rounded up to a power of two, at most 32 (PCI 3.0 §6.8.1.3 Multiple Message Capable).
        case msi(vectors: Int)
        /// No MSI or MSI-X capability.
        case none
    }

    /// The function, with Interrupt Pin `interruptPin` (0: none, 1–4: INTA#–INTD#).
    public static func make(name: String, requesterID: RequesterID, interrupts: Interrupts,
                            interruptPin: UInt8 = 0, multifunction: Bool = false) throws(PCIConfigurationError) -> PCIFunction {
        switch interrupts {
        case .msix(let vectors):
            let tableBytes = UInt32(max(vectors, 1)) * 16
            let pbaOffset = max(0x800, (tableBytes + 0xFFF) & ~0xFFF)
            var barSize: UInt64 = 0x4000
            while barSize < UInt64(pbaOffset) + 0x1000 { barSize <<= 1 }
            return try PCIFunction(name: name, requesterID: requesterID, vendorID: 0x1AF4, deviceID: 0x1041,
                                   bars: [BaseAddressRegister(index: 0, kind: .memory64, size: barSize)],
                                   msix: MSIXConfiguration(tableSize: vectors, pbaOffset: pbaOffset), multifunction: multifunction,
                                   interruptPin: interruptPin)
        case .msi(let vectors):
            var log2 = 0
            while (1 << log2) < vectors, log2 < 5 { log2 += 1 }
            return try PCIFunction(name: name, requesterID: requesterID, vendorID: 0x1AF4, deviceID: 0x1041,
                                   bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                   msi: MSIConfiguration(is64Bit: true, perVectorMasking: true, vectorsLog2: log2),
                                   multifunction: multifunction, interruptPin: interruptPin)
        case .none:
            return try PCIFunction(name: name, requesterID: requesterID, vendorID: 0x1AF4, deviceID: 0x1041,
                                   bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                   multifunction: multifunction, interruptPin: interruptPin)
        }
    }
}
