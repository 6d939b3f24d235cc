// libFuzzer target: guest-controlled bytes drive one PCIe function's MSI-X table, PBA,
// configuration space and interrupts through the root complex's ECAM and memory window.
// Nothing may trap, and no vector may stay pending while it is deliverable.
//
// Build and run (FuzzTesting/README.md):
//   swift build -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address --product FuzzMSIX
//   SWIFT_BACKTRACE=enable=off SWIFT_DETERMINISTIC_HASHING=1 .build/release/FuzzMSIX corpus -max_total_time=60
import Bus
import PCI

/// Completes every transaction; the fuzzer only cares that the PCI side stays sane.
final class SinkPort: UpstreamPort {
    var count = 0
    func issue(_ transaction: DeviceTransaction) -> TransactionResult {
        count &+= 1
        return TransactionResult(status: .completed)
    }
}

/// Reads the input a little at a time; running out yields zeros.
struct ByteCursor {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func word(_ count: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<count { value |= UInt64(byte()) << UInt64(8 * i) }
        return value
    }

    var atEnd: Bool { index >= bytes.count }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    var input = ByteCursor(bytes: UnsafeBufferPointer(start: data, count: size))
    let tableSize = Int(input.byte() % 70) + 1
    let rootComplex = RootComplex(busRange: 0...1, memoryWindowBase: 0x1000_0000)
    rootComplex.iommuMap = .identity()
    rootComplex.msiMap = RequesterIDMap(entries: [.init(ridBase: 0, outputBase: 0x100, length: 0x80)], mask: 0xFFF8)
    let port = SinkPort()
    rootComplex.upstream = port
    guard let function = try? PCIFunction(
        requesterID: RequesterID(bus: 0, device: 1, function: 0), vendorID: 0x1AF4, deviceID: 0x1041,
        bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
        msi: MSIConfiguration(is64Bit: input.byte() & 1 == 0, perVectorMasking: true, vectorsLog2: 5, extendedMessageData: true),
        msix: MSIXConfiguration(tableSize: tableSize, tableBAR: 0, tableOffset: 0, pbaBAR: 0, pbaOffset: 0x2000)),
        (try? rootComplex.attach(function)) != nil,
        let msix = function.msix
    else { return 0 }
    let ecam = rootComplex.ecam
    let window = rootComplex.memoryWindow
    // Place BAR0 and enable decoding and bus mastering, as firmware would.
    try? ecam.mmioWrite(offset: 1 << 15 | 0x10, size: 4, value: 0x1000_0000, requester: .cpu(0))
    try? ecam.mmioWrite(offset: 1 << 15 | 0x04, size: 2, value: 0x6, requester: .cpu(0))

    while !input.atEnd {
        let op = input.byte()
        switch op % 6 {
        case 0, 1:
            let offset = input.word(2) % 0x4400
            let width = Int(input.byte() % 9)
            try? window.mmioWrite(offset: offset, size: width, value: input.word(8), requester: .cpu(0))
        case 2:
            let offset = input.word(2) % 0x4400
            _ = try? window.mmioRead(offset: offset, size: Int(input.byte() % 9), requester: .cpu(0))
        case 3:
            let register = input.word(2) & 0xFFF
            let width = Int(input.byte() % 9)
            // Mostly function 01.0, sometimes an empty slot or beyond the bus range.
            let target: UInt64 = op & 0x80 == 0 ? 1 << 15 : input.word(3)
            try? ecam.mmioWrite(offset: target | register, size: width, value: input.word(4), requester: .cpu(0))
        case 4:
            let vector = Int(Int8(bitPattern: input.byte()))
            if op & 0x40 == 0 { function.raiseMSIX(vector: vector) } else { function.raiseMSI(vector: vector) }
        default:
            function.dma(op & 1 == 0 ? .read : .write, address: IOVA(input.word(8)), size: Int(input.byte() % 10), data: input.word(8))
        }
        // The delivery rule: nothing deliverable stays pending.
        if let table = function.msixTable, msix.isEnabled(in: function.config),
           !msix.isFunctionMasked(in: function.config), function.config.busMasterEnabled {
            for vector in 0..<table.size where table.isPending(vector) && !table.isMasked(vector) {
                fatalError("MSI-X vector \(vector) stuck pending while deliverable")
            }
        }
        if function.log.count > 4096 { function.clearLog() }
    }
    return 0
}
