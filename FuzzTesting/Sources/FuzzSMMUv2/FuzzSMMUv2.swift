// libFuzzer target: bytes drive an SMMUv2 (MMU-500 layout), an SMMUv1 or an MMU-401 through its register surface — any
// offset in the global spaces and context banks, any access size — with page tables in RAM the
// input also writes, and client transactions with any StreamID, address and direction.
// Nothing may trap; with sCR0.CLIENTPD set every transaction must bypass unchanged; the TLB
// must never exceed its capacity.
//
// Build and run (FuzzTesting/README.md):
//   swift build -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address --product FuzzSMMUv2
//   SWIFT_BACKTRACE=enable=off SWIFT_DETERMINISTIC_HASHING=1 .build/release/FuzzSMMUv2 corpus -max_total_time=60
import Bus
import SMMUv2

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

let ramBase: UInt64 = 0x8000_0000
let ramSize: UInt64 = 0x10_0000
let smmuBase: UInt64 = 0x0500_0000

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    var input = ByteCursor(bytes: UnsafeBufferPointer(start: data, count: size))
    // Window size picks the layout: 64 KiB (4 KiB pages, 8 banks) up to 8 MiB (64 KiB pages).
    let windows: [UInt64] = [0x1_0000, 0x2_0000, 0x10_0000, 0x80_0000]
    // The first byte's top bits pick the architecture version: SMMUv2 (MMU-500 layout), a
    // generic SMMUv1 (AArch32 long-descriptor banks only, no CBA2R) or the MMU-401 (stage 2 only).
    let shape = input.byte()
    let window = windows[Int(shape % 4)]
    var configuration = switch shape >> 6 {
    case 2: SMMUv2Configuration.smmuV1(windowSize: window)
    case 3: SMMUv2Configuration.mmu401
    default: SMMUv2Configuration.fitting(windowSize: window)
    }
    configuration.streamMatching = input.byte() & 1 == 0
    configuration.tlbEntries = Int(input.byte() % 8) + 1
    let bus = SystemBus()
    let smmu = SMMUv2(configuration: configuration, bus: bus)
    do {
        try bus.addRAM(base: PhysicalAddress(ramBase), size: ramSize, name: "ram")
        try bus.addDevice(smmu, base: PhysicalAddress(smmuBase), size: smmu.mmioSize, name: "smmu")
    } catch { return 0 }
    let mmioSize = smmu.mmioSize
    let sizes = [1, 2, 4, 8, 3]
    var steps = 0
    while !input.atEnd && steps < 2048 {
        steps += 1
        let op = input.byte()
        switch op % 5 {
        case 0:
            // A register write: mostly the first register of some page, sometimes anywhere.
            let offset = op & 0x80 == 0 ? (input.word(1) << UInt64(configuration.pageShift)) % mmioSize | input.word(2) & 0xFFC
                                        : input.word(3) % mmioSize
            try? bus.write(PhysicalAddress(smmuBase &+ offset), size: sizes[Int(input.byte() % 5)], value: input.word(8))
        case 1:
            let offset = input.word(3) % mmioSize
            _ = try? bus.read(PhysicalAddress(smmuBase &+ offset), size: sizes[Int(input.byte() % 5)])
        case 2:
            // A descriptor in RAM (tables the context banks may point at).
            let offset = (input.word(3) % ramSize) & ~7
            try? bus.write64(PhysicalAddress(ramBase &+ offset), input.word(8))
        default:
            let address = op & 0x40 == 0 ? input.word(8) : ramBase &+ input.word(3) % ramSize
            let transaction = DeviceTransaction(kind: op & 0x20 == 0 ? .write : .read, address: IOVA(address), size: 4,
                                                data: 0, streamID: StreamID(UInt32(input.word(2))), deviceID: DeviceID(0))
            let cleanBypass = smmu.sCR0 & 1 == 1
            let response = smmu.handle(transaction)
            if cleanBypass, response != .translated(output: PhysicalAddress(address), contextBank: nil) {
                fatalError("sCR0.CLIENTPD set but the transaction was not bypassed: \(response)")
            }
            if smmu.tlbCount > configuration.tlbEntries { fatalError("TLB holds \(smmu.tlbCount) > \(configuration.tlbEntries)") }
        }
    }
    return 0
}
