import Bus
import Testing
@testable import PCI

@Suite("MSI-X capability, table and PBA")
struct MSIXTests {
    @Test("capability registers: Table Size is N−1, BIR and offsets as built, only Function Mask and Enable are writable")
    func capabilityRegisters() throws {
        let f = try Fixture(tableSize: 8)
        let c = f.msix
        #expect(f.function.configRead(offset: c.controlOffset, size: 2) == 7)
        #expect(f.function.configRead(offset: c.tableRegisterOffset, size: 4) == 0x0000_0000)   // BIR 0, offset 0
        #expect(f.function.configRead(offset: c.pbaRegisterOffset, size: 4) == 0x0000_2000)     // BIR 0, offset 0x2000
        f.function.configWrite(offset: c.controlOffset, size: 2, value: 0xFFFF)
        // 0xC000 (Enable | Function Mask) plus the RO Table Size; bits 13:11 reserved, 0.
        #expect(f.function.configRead(offset: c.controlOffset, size: 2) == 0xC007)
        f.function.configWrite(offset: c.tableRegisterOffset, size: 4, value: 0xFFFF_FFFF)
        #expect(f.function.configRead(offset: c.tableRegisterOffset, size: 4) == 0)
    }

    @Test("reset state: every entry masked (Vector Control = 1), PBA clear")
    func resetState() throws {
        let f = try Fixture(tableSize: 8)
        f.enable()
        for vector in 0..<8 {
            #expect(try f.mmioRead(UInt64(vector) * 16 + 0xC, size: 4) == 1)
        }
        #expect(try f.pba() == 0)
    }

    @Test("a masked vector sets its PBA bit and fires on unmask, clearing the bit")
    func maskedVectorFiresOnUnmask() throws {
        let f = try Fixture(tableSize: 8)
        f.enable()
        try f.program(vector: 2, address: doorbell, data: 0x2, masked: true)
        f.setMSIXControl(enable: true, functionMask: false)
        #expect(f.function.raise(vector: 2) == .pending)
        #expect(try f.pba() == 1 << 2)
        #expect(f.port.transactions.isEmpty)
        try f.mmioWrite(2 * 16 + 0xC, size: 4, 0)   // clear the Mask bit
        let sent = try #require(f.port.transactions.first)
        #expect(f.port.transactions.count == 1)
        #expect(sent.address.rawValue == doorbell && sent.data == 0x2 && sent.size == 4 && sent.kind == .write)
        #expect(try f.pba() == 0)
        // Now unmasked, the next raise goes straight out.
        #expect(f.function.raise(vector: 2).transaction != nil)
        #expect(f.port.transactions.count == 2)
    }

    @Test("Function Mask masks every vector; clearing it sends the pending ones whose own Mask is clear, in vector order")
    func functionMask() throws {
        let f = try Fixture(tableSize: 8)
        f.enable()
        for vector in [1, 5, 6] { try f.program(vector: vector, address: doorbell, data: UInt32(0x10 + vector), masked: vector == 6) }
        f.setMSIXControl(enable: true, functionMask: true)
        for vector in [5, 1, 6] { #expect(f.function.raise(vector: vector) == .pending) }
        #expect(try f.pba() == 0b0110_0010)
        f.setMSIXControl(enable: true, functionMask: false)
        #expect(f.port.transactions.map(\.data) == [0x11, 0x15])
        // Vector 6 is still masked by its own bit: it stays pending.
        #expect(try f.pba() == 0b0100_0000)
    }

    @Test("raised while MSI-X Enable is clear: latched in the PBA and sent when software sets Enable")
    func enableSendsPending() throws {
        let f = try Fixture(tableSize: 4)
        f.enable()
        try f.program(vector: 3, address: doorbell, data: 0x33, masked: false)
        #expect(f.function.raise(vector: 3) == .pending)
        #expect(try f.pba() == 0b1000)
        f.setMSIXControl(enable: true, functionMask: false)
        #expect(f.port.transactions.map(\.data) == [0x33])
        #expect(try f.pba() == 0)
    }

    @Test("Bus Master Enable clear: an unmasked vector is not sent; a pending one waits for bus mastering")
    func busMaster() throws {
        let f = try Fixture(tableSize: 4)
        f.enable(busMaster: false)
        try f.program(vector: 0, address: doorbell, data: 0, masked: true)
        f.setMSIXControl(enable: true, functionMask: false)
        #expect(f.function.raise(vector: 0) == .pending)
        try f.mmioWrite(0xC, size: 4, 0)
        #expect(f.port.transactions.isEmpty)
        #expect(try f.pba() == 1)                   // still pending: it could not be sent
        #expect(f.function.raise(vector: 0) == .notSent(.busMasterDisabled))
        f.enable(busMaster: true)
        #expect(f.port.transactions.count == 1)
        #expect(try f.pba() == 0)
    }

    @Test("reserved bits: Vector Control keeps only Mask, address bits 1:0 are 0, the PBA ignores writes")
    func reservedBits() throws {
        let f = try Fixture(tableSize: 70)
        f.enable()
        try f.mmioWrite(0xC, size: 4, 0xFFFF_FFFE)
        #expect(try f.mmioRead(0xC, size: 4) == 0)
        try f.mmioWrite(0x0, size: 4, 0xFFFF_FFFF)
        #expect(try f.mmioRead(0x0, size: 4) == 0xFFFF_FFFC)
        f.setMSIXControl(enable: false, functionMask: false)
        f.function.raise(vector: 65)
        try f.mmioWrite(0x2008, size: 8, 0)
        // 70 vectors need two PBA QWORDs; vector 65 is bit 1 of the second.
        #expect(try f.mmioRead(0x2008, size: 8) == 0b10)
        #expect(try f.mmioRead(0x2000, size: 8) == 0)
    }

    @Test("one QWORD write of Data + Vector Control applies Data first, so the unmasked vector sends the new Data")
    func qwordWriteOrdering() throws {
        let f = try Fixture(tableSize: 4)
        f.enable()
        try f.program(vector: 1, address: doorbell, data: 0xAAAA, masked: true)
        f.setMSIXControl(enable: true, functionMask: false)
        f.function.raise(vector: 1)
        try f.mmioWrite(16 + 0x8, size: 8, 0x0000_0000_0000_0042)   // Data = 0x42, Vector Control = 0
        #expect(f.port.transactions.map(\.data) == [0x42])
    }

    @Test("vectors outside the table are refused; functions without MSI-X say so")
    func outOfRange() throws {
        let f = try Fixture(tableSize: 4)
        f.enable()
        #expect(f.function.raiseMSIX(vector: 4) == .notSent(.noSuchVector))
        #expect(f.function.raiseMSIX(vector: -1) == .notSent(.noSuchVector))
        let plain = try Fixture(withMSIX: false)
        #expect(plain.function.raiseMSIX(vector: 0) == .notSent(.noCapability))
    }

    @Test("the trace shows the message as it leaves the function and the IDs the root complex attached")
    func traceLines() throws {
        let f = try Fixture(tableSize: 4, requesterID: RequesterID(0x0008))
        let log = TraceLog()
        f.function.trace = log
        f.rootComplex.trace = log
        f.enable()
        try f.program(vector: 2, address: doorbell, data: 0x2, masked: false)
        f.setMSIXControl(enable: true, functionMask: false)
        f.function.raise(vector: 2)
        #expect(log.records.map(\.step) == ["MSI-X vector 2: addr 0x0809_0040 data 0x2 → write",
                                            "RID 0x0008 → StreamID 0x8, DeviceID 0x8"])
    }

    @Test("table layout and PBA sizing are checked at construction")
    func badLayouts() {
        let bar = [BaseAddressRegister(index: 0, kind: .memory32, size: 0x1000)]
        for config in [MSIXConfiguration(tableSize: 0), MSIXConfiguration(tableSize: 2049),
                       MSIXConfiguration(tableSize: 8, tableOffset: 4),                  // not QWORD aligned
                       MSIXConfiguration(tableSize: 8, tableBAR: 2),                     // no such BAR
                       MSIXConfiguration(tableSize: 256, pbaOffset: 0x800),             // table 0x1000 bytes overlaps PBA
                       MSIXConfiguration(tableSize: 8, pbaOffset: 0xFFC)] {             // PBA runs past the BAR
            #expect(throws: PCIConfigurationError.self) {
                _ = try PCIFunction(requesterID: RequesterID(0), vendorID: 1, deviceID: 1, bars: bar, msix: config)
            }
        }
    }
}
