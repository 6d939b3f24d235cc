// libFuzzer target: bytes → SMMUv3 register writes, command-queue contents and device
// transactions. The SMMU must never trap, whatever a driver or guest writes (docs/architecture.md,
// "bad input is data"). Build and run with FuzzTesting/fuzz.sh FuzzSMMUCommands.
import Bus
import SMMUv3

/// Reads the fuzzer's bytes front to back; past the end every read is 0.
struct ByteReader {
    let data: UnsafeBufferPointer<UInt8>
    var position = 0

    var atEnd: Bool { position >= data.count }

    mutating func byte() -> UInt8 {
        guard position < data.count else { return 0 }
        defer { position += 1 }
        return data[position]
    }

    mutating func word() -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(byte()) << UInt64(8 * i) }
        return value
    }
}

let ramBase: UInt64 = 0x4000_0000
let ramSize: UInt64 = 0x100_0000
let queueBase: UInt64 = 0x4000_0000

/// The registers a driver touches, so that most writes land on something that matters.
let registerOffsets: [UInt64] = [
    0x20, 0x28, 0x2C, 0x44, 0x48, 0x50, 0x64, 0x68, 0x6C, 0x70, 0x74, 0x80, 0x84, 0x88, 0x90, 0x94,
    0x98, 0x9C, 0xA0, 0xA4, 0xA8, 0xAC, 0xB0, 0xB4, 0xB8, 0xBC, 0xC0, 0xD0, 0x1_00A8, 0x1_00AC,
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    var input = ByteReader(data: UnsafeBufferPointer(start: data, count: size))

    // First byte: the implementation's choices.
    let choices = input.byte()
    var configuration = SMMUConfiguration()
    configuration.msi = choices & 1 != 0
    configuration.hyp = choices & 2 != 0
    configuration.stage1 = choices & 12 != 4
    configuration.stage2 = choices & 12 != 8
    configuration.rangeInvalidation = choices & 16 != 0
    configuration.commandQueueMaxLog2 = Int(choices >> 5) + 2
    configuration.eventQueueMaxLog2 = Int(choices >> 5) + 1

    // The SMMU is driven directly rather than placed on the bus: a bus holds its devices and
    // the SMMU (through its translator) holds the bus, a cycle that would leak one machine per
    // input under LeakSanitizer. MSIs aimed back at the SMMU are covered by the property tests.
    let bus = SystemBus()
    let smmu = SMMUv3(configuration: configuration, bus: bus)
    do {
        try bus.addRAM(base: PhysicalAddress(ramBase), size: ramSize)
    } catch {
        return 0
    }

    var steps = 0
    while !input.atEnd && steps < 512 {
        steps += 1
        let op = input.byte()
        switch op % 8 {
        case 0, 1, 2:
            // A register write: a known register or any offset, any size.
            let selector = input.byte()
            let offset = selector & 0x80 == 0
                ? registerOffsets[Int(selector) % registerOffsets.count]
                : UInt64(input.byte()) << 8 | UInt64(input.byte()) | (UInt64(selector & 1) << 16)
            let width = [4, 4, 8, 8, 1, 2, 3, 16][Int(op >> 3) % 8]
            var value = input.word()
            if op & 0x40 != 0 { value = queueBase | (value & 0xFFFF) }   // point at RAM
            try? smmu.mmioWrite(offset: offset, size: width, value: value, requester: .cpu(0))
        case 3:
            // One 16-byte command into a queue slot in RAM.
            let slot = UInt64(input.byte())
            let w0 = input.word()
            let w1 = input.word()
            try? bus.writeWords(PhysicalAddress(queueBase + slot * 16), [w0, w1])
        case 4:
            // A device transaction.
            let address = input.word()
            let sid = UInt32(input.byte()) | UInt32(input.byte() & 1) << 16
            let transaction = DeviceTransaction(kind: op & 0x10 != 0 ? .write : .read, address: IOVA(address),
                                                size: 4, streamID: StreamID(sid), deviceID: DeviceID(sid))
            _ = smmu.handle(transaction)
        case 5:
            // A register read.
            let offset = registerOffsets[Int(input.byte()) % registerOffsets.count]
            _ = try? smmu.mmioRead(offset: offset, size: op & 0x20 != 0 ? 8 : 4, requester: .cpu(0))
        case 6:
            // Decode and re-encode arbitrary words: the decoder must not trap either.
            let w0 = input.word()
            let w1 = input.word()
            if case .success(let command) = Command.decode(w0, w1) {
                _ = command.encode()
                _ = command.illegality(on: configuration)
                _ = command.invalidation(on: configuration)
            }
            _ = EventRecord(w0, w1, input.word(), input.word()).fault
        default:
            // An event for an arbitrary fault.
            let type = SMMUEventType.allCases[Int(input.byte()) % SMMUEventType.allCases.count]
            smmu.recordEvent(SMMUFault(type: type, streamID: StreamID(UInt32(input.byte())),
                                       inputAddress: input.word(), isWrite: op & 0x10 != 0,
                                       stage2: op & 0x20 != 0, ipa: IPA(input.word()),
                                       fetchAddress: PhysicalAddress(input.word())))
        }
    }
    return 0
}
