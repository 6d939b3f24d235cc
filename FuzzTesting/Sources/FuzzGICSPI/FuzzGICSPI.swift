// libFuzzer target for the SPI message paths of the GIC: a GICv2 (GICD in the GICv2 layout,
// banked GICC, one GICv2m frame) and a GICv3 with message-based SPIs, then arbitrary
// register accesses (any offset, size, requester), MSI_SETSPI_NS / GICD_SETSPI_NSR /
// GICD_CLRSPI_NSR writes, SPI wire levels, acknowledges and EOIs. The model must never trap.
//
// Build and run (FuzzTesting/README.md, from FuzzTesting/):
//   swift build -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address
//   SWIFT_BACKTRACE=enable=off SWIFT_DETERMINISTIC_HASHING=1 .build/release/FuzzGICSPI corpus -max_total_time=60
import Bus
import GIC

struct ByteReader {
    let data: UnsafeBufferPointer<UInt8>
    var position = 0

    var isAtEnd: Bool { position >= data.count }

    mutating func byte() -> UInt8 {
        guard position < data.count else { return 0 }
        defer { position += 1 }
        return data[position]
    }

    mutating func word(_ bytes: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<bytes { value |= UInt64(byte()) << UInt64(8 * i) }
        return value
    }
}

let gicd = PhysicalAddress(0x0800_0000)
let gicc = PhysicalAddress(0x0801_0000)
let v2m = PhysicalAddress(0x0802_0000)
let gicdV3 = PhysicalAddress(0x0900_0000)

/// Both GICs on one bus, as irq-gic.c and irq-gic-v3.c leave them: distributors and CPU
/// interfaces enabled, PMR 0xF0.
func makeSystem() -> (SystemBus, GICv3, GICv3)? {
    let bus = SystemBus()
    let v2 = GICv3(configuration: GICConfiguration(version: 2, cpuCount: 2))
    var c3 = GICConfiguration(cpuCount: 2)
    c3.messageBasedSPIs = true
    let v3 = GICv3(configuration: c3)
    do {
        try v2.attachDistributor(to: bus, base: gicd)
        try v2.addGICv2CPUInterface(base: gicc)
        try v2.addV2mFrame(base: v2m, baseSPI: 80, spiCount: 64)
        try v3.attach(to: bus, distributorBase: gicdV3, redistributorBase: PhysicalAddress(0x0920_0000))
        try bus.write(gicd, size: 4, value: 1, requester: .cpu(0))
        try bus.write(gicdV3, size: 4, value: 1 << 4 | 1 << 1, requester: .cpu(0))
        for cpu in 0..<2 {
            try bus.write(gicc, size: 4, value: 1, requester: .cpu(cpu))
            try bus.write(PhysicalAddress(gicc.rawValue + 4), size: 4, value: 0xF0, requester: .cpu(cpu))
            v3.setPriorityMask(cpu: cpu, 0xF0)
        }
        return (bus, v2, v3)
    } catch {
        return nil
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0, let (bus, v2, v3) = makeSystem() else { return 0 }
    var input = ByteReader(data: UnsafeBufferPointer(start: data, count: size))
    let sizes = [1, 2, 4, 8]
    var steps = 0
    while !input.isAtEnd && steps < 4096 {
        steps += 1
        let selector = input.byte()
        let requester: Requester = switch input.byte() % 4 {
        case 0: .cpu(0)
        case 1: .cpu(Int(input.byte()) - 64)
        case 2: .hardware
        default: .device(DeviceID(UInt32(input.word(2))))
        }
        let accessSize = sizes[Int(input.byte() % 4)]
        switch selector % 8 {
        case 0:
            // A device MSI to the frame: usually MSI_SETSPI_NS, any value.
            let offset = input.byte() & 1 == 0 ? 0x40 : input.word(2) & 0xFFF
            _ = try? bus.write(PhysicalAddress(v2m.rawValue + offset), size: accessSize, value: input.word(4), requester: requester)
        case 1:
            // GICD_SETSPI_NSR / CLRSPI_NSR / SETSPI_SR / CLRSPI_SR on the GICv3.
            let offset = UInt64(0x40 + 8 * Int(input.byte() % 4))
            _ = try? bus.write(PhysicalAddress(gicdV3.rawValue + offset), size: accessSize, value: input.word(4), requester: requester)
        case 2:
            // Any GICv2 distributor register.
            let offset = input.word(2) & 0xFFFF
            _ = try? bus.write(PhysicalAddress(gicd.rawValue + offset), size: accessSize, value: input.word(8), requester: requester)
        case 3:
            // Any GICC register (IAR reads and EOIR/DIR writes included).
            let offset = input.word(2) & 0x1FFF
            if input.byte() & 1 == 0 {
                _ = try? bus.read(PhysicalAddress(gicc.rawValue + offset), size: accessSize, requester: requester)
            } else {
                _ = try? bus.write(PhysicalAddress(gicc.rawValue + offset), size: accessSize, value: input.word(4), requester: requester)
            }
        case 4:
            // Any GICv3 distributor register.
            let offset = input.word(2) & 0xFFFF
            _ = try? bus.write(PhysicalAddress(gicdV3.rawValue + offset), size: accessSize, value: input.word(8), requester: requester)
        case 5:
            // A wire level on either GIC.
            let intid = UInt32(input.word(2))
            let asserted = input.byte() & 1 == 1
            (input.byte() & 1 == 0 ? v2 : v3).distributor.setLevel(intid: intid, asserted: asserted)
        case 6:
            // Acknowledge and end on the GICv3 CPU interface, any CPU number.
            let cpu = Int(input.byte()) - 64
            let intid = v3.acknowledge(cpu: cpu)
            v3.endOfInterrupt(cpu: cpu, intid: input.byte() & 1 == 0 ? intid : UInt32(input.word(4)))
        default:
            // Reads anywhere in the frame and both distributors.
            let base = [v2m, gicd, gicdV3][Int(input.byte() % 3)]
            _ = try? bus.read(PhysicalAddress(base.rawValue + (input.word(2) & 0xFFFF)), size: accessSize, requester: requester)
        }
    }
    return 0
}
