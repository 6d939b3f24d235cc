import Bus
import Testing
@testable import PCI

/// An MSI-only function attached to an identity-mapped root complex. The fixture is returned
/// too: functions hold their root complex weakly, so the caller must keep it alive.
private func msiFunction(_ configuration: MSIConfiguration) throws -> (PCIFunction, RecordingPort, MSICapability, Fixture) {
    let f = try Fixture(msi: configuration, withMSIX: false)
    f.enable()
    return (f.function, f.port, try #require(f.function.msi), f)
}

@Suite("MSI capability")
struct MSITests {
    /// Offsets from Linux pci_regs.h: PCI_MSI_ADDRESS_HI 8, PCI_MSI_DATA_32 8, PCI_MSI_DATA_64 12,
    /// PCI_MSI_MASK_32 12, PCI_MSI_PENDING_32 16, PCI_MSI_MASK_64 16, PCI_MSI_PENDING_64 20.
    @Test("every layout puts its registers at the pci_regs.h offsets", arguments: [
        // (64-bit, masking, data offset, mask offset, pending offset, length)
        (false, false, 0x08, Int?.none, Int?.none, 0x0C),
        (false, true, 0x08, 0x0C, 0x10, 0x14),
        (true, false, 0x0C, nil, nil, 0x10),
        (true, true, 0x0C, 0x10, 0x14, 0x18),
    ])
    func layouts(is64Bit: Bool, masking: Bool, data: Int, mask: Int?, pending: Int?, length: Int) throws {
        let (function, port, msi, fixture) = try msiFunction(MSIConfiguration(is64Bit: is64Bit, perVectorMasking: masking))
        defer { withExtendedLifetime(fixture) {} }
        #expect(msi.dataOffset - msi.offset == data)
        #expect(msi.maskOffset.map { $0 - msi.offset } == mask)
        #expect(msi.pendingOffset.map { $0 - msi.offset } == pending)
        #expect(msi.length == length)
        // Message Control advertises the layout: bit 7 64-bit, bit 8 per-vector masking.
        let control = function.configRead(offset: msi.offset + 2, size: 2)
        #expect((control & 0x80 != 0) == is64Bit && (control & 0x100 != 0) == masking)
        // Program it as Linux __pci_write_msi_msg does, at the raw offsets, then enable.
        function.configWrite(offset: msi.offset + 4, size: 4, value: 0x0809_0040)
        if is64Bit { function.configWrite(offset: msi.offset + 8, size: 4, value: 0x1) }
        function.configWrite(offset: msi.offset + data, size: 2, value: 0x0123)
        function.configWrite(offset: msi.offset + 2, size: 2, value: 0x0001)
        let outcome = function.raiseMSI(vector: 0)
        let sent = try #require(outcome.transaction)
        // The message is a DWORD write of Data (upper 16 bits 0) to the address; a 32-bit
        // capability has no upper address register, so the address stays below 4 GiB.
        #expect(sent.kind == .write && sent.size == 4 && sent.data == 0x0123)
        #expect(sent.address.rawValue == (is64Bit ? 0x1_0809_0040 : 0x0809_0040))
        #expect(port.transactions.count == 1)
    }

    @Test("Message Address bits 1:0 are RO 0 (DWORD-aligned message address)")
    func addressAlignment() throws {
        let (function, _, msi, fixture) = try msiFunction(MSIConfiguration())
        defer { withExtendedLifetime(fixture) {} }
        function.configWrite(offset: msi.addressLowOffset, size: 4, value: 0xFFFF_FFFF)
        #expect(function.configRead(offset: msi.addressLowOffset, size: 4) == 0xFFFF_FFFC)
    }

    @Test("multi-message: with 4 of 8 vectors enabled, vector n replaces the low 2 bits of Data")
    func multiMessageData() throws {
        let (function, port, msi, fixture) = try msiFunction(MSIConfiguration(vectorsLog2: 3))
        defer { withExtendedLifetime(fixture) {} }
        // MMC = 3 (8 vectors requested) is RO in bits 3:1.
        #expect((function.configRead(offset: msi.controlOffset, size: 2) >> 1) & 7 == 3)
        function.configWrite(offset: msi.addressLowOffset, size: 4, value: UInt32(doorbell))
        function.configWrite(offset: msi.dataOffset, size: 2, value: 0x40)
        function.configWrite(offset: msi.controlOffset, size: 2, value: 0x0021)   // Enable, MME = 2 → 4 vectors
        #expect(msi.allocatedVectors(in: function.config) == 4)
        for vector in 0..<4 { function.raiseMSI(vector: vector) }
        // Data 0x40 is 4-aligned, so 0x40 | n: the N consecutive EventIDs an ITS sees.
        #expect(port.transactions.map(\.data) == [0x40, 0x41, 0x42, 0x43])
        // Vector 4 was not allocated.
        #expect(function.raiseMSI(vector: 4) == .notSent(.noSuchVector))
        // With unaligned data the function still only modifies the low log2(N) bits (PCIe §6.1.4).
        function.configWrite(offset: msi.dataOffset, size: 2, value: 0x41)
        #expect(function.raiseMSI(vector: 2).transaction?.data == 0x42)
    }

    @Test("MME above MMC is treated as MMC: the function never uses more vectors than it has")
    func mmeClamp() throws {
        let (function, _, msi, fixture) = try msiFunction(MSIConfiguration(vectorsLog2: 1))
        defer { withExtendedLifetime(fixture) {} }
        function.configWrite(offset: msi.controlOffset, size: 2, value: 0x0051)    // MME = 5
        #expect(msi.allocatedVectors(in: function.config) == 2)
    }

    @Test("a masked vector sets its Pending bit and is sent, with the bit cleared, when unmasked", arguments: [false, true])
    func maskAndPending(is64Bit: Bool) throws {
        let (function, port, msi, fixture) = try msiFunction(MSIConfiguration(is64Bit: is64Bit, perVectorMasking: true, vectorsLog2: 2))
        defer { withExtendedLifetime(fixture) {} }
        let mask = try #require(msi.maskOffset)
        let pending = try #require(msi.pendingOffset)
        function.configWrite(offset: msi.addressLowOffset, size: 4, value: UInt32(doorbell))
        function.configWrite(offset: msi.dataOffset, size: 2, value: 0x20)
        function.configWrite(offset: msi.controlOffset, size: 2, value: 0x0021)   // 4 vectors
        function.configWrite(offset: mask, size: 4, value: 0b0110)
        #expect(function.raiseMSI(vector: 1) == .pending)
        #expect(function.raiseMSI(vector: 2) == .pending)
        #expect(function.raiseMSI(vector: 0).transaction?.data == 0x20)
        #expect(function.configRead(offset: pending, size: 4) == 0b0110)
        // Pending bits are RO to software.
        function.configWrite(offset: pending, size: 4, value: 0)
        #expect(function.configRead(offset: pending, size: 4) == 0b0110)
        // Unmask vector 2 only: it alone is sent.
        function.configWrite(offset: mask, size: 4, value: 0b0010)
        #expect(port.transactions.map(\.data) == [0x20, 0x22])
        #expect(function.configRead(offset: pending, size: 4) == 0b0010)
        // Mask bits exist only for the 4 vectors capable: bit 31 is reserved and reads 0.
        function.configWrite(offset: mask, size: 4, value: 0x8000_0000)
        #expect(function.configRead(offset: mask, size: 4) == 0)
        #expect(port.transactions.map(\.data) == [0x20, 0x22, 0x21])
    }

    @Test("Extended Message Data: upper 16 bits are sent only when Capable and Enable are set", arguments: [false, true])
    func extendedMessageData(is64Bit: Bool) throws {
        let (function, _, msi, fixture) = try msiFunction(MSIConfiguration(is64Bit: is64Bit, perVectorMasking: false, extendedMessageData: true))
        defer { withExtendedLifetime(fixture) {} }
        // Message Control bit 9: Extended Message Data Capable.
        #expect(function.configRead(offset: msi.controlOffset, size: 2) & 0x0200 != 0)
        function.configWrite(offset: msi.addressLowOffset, size: 4, value: UInt32(doorbell))
        // One DWORD write fills Data and Extended Data (+0x0A / +0x0E).
        function.configWrite(offset: msi.dataOffset, size: 4, value: 0xBEEF_0007)
        function.configWrite(offset: msi.controlOffset, size: 2, value: 0x0001)
        #expect(function.raiseMSI(vector: 0).transaction?.data == 0x0007)            // Enable clear: upper bytes 0
        function.configWrite(offset: msi.controlOffset, size: 2, value: 0x0401)   // bit 10: Extended Message Data Enable
        #expect(function.raiseMSI(vector: 0).transaction?.data == 0xBEEF_0007)
    }

    @Test("without Extended Message Data Capable, the upper 16 bits and bit 10 are RO 0")
    func noExtendedMessageData() throws {
        let (function, _, msi, fixture) = try msiFunction(MSIConfiguration(is64Bit: false, perVectorMasking: false))
        defer { withExtendedLifetime(fixture) {} }
        function.configWrite(offset: msi.dataOffset, size: 4, value: 0xBEEF_0007)
        function.configWrite(offset: msi.controlOffset, size: 2, value: 0x0401)
        #expect(function.configRead(offset: msi.dataOffset, size: 4) == 0x0007)
        #expect(function.configRead(offset: msi.controlOffset, size: 2) == 0x0001)
    }

    @Test("MSI Enable clear: nothing is sent or latched; Bus Master Enable clear: nothing is sent")
    func disabledAndNoBusMaster() throws {
        let f = try Fixture(msi: MSIConfiguration(), withMSIX: false)
        f.enable(busMaster: false)
        let msi = try #require(f.function.msi)
        #expect(f.function.raiseMSI(vector: 0) == .notSent(.interruptsDisabled))
        f.function.configWrite(offset: msi.controlOffset, size: 2, value: 1)
        #expect(f.function.raiseMSI(vector: 0) == .notSent(.busMasterDisabled))
        #expect(f.function.configRead(offset: try #require(msi.pendingOffset), size: 4) == 0)
        #expect(f.port.transactions.isEmpty)
        #expect(f.function.log.map(\.outcome) == [.notSent(.interruptsDisabled), .notSent(.busMasterDisabled)])
    }
}
