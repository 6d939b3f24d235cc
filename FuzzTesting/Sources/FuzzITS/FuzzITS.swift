// libFuzzer target for the GIC ITS: arbitrary bytes become ITS commands in the command queue,
// GITS_TRANSLATER writes with arbitrary DeviceID sideband, ITS/redistributor register writes
// and CPU-interface acknowledges. The model must never trap, whatever the bytes. When the first
// byte's top bit is set the GIC is a GICv4.1 (virtual LPIs, a vPE table at GITS_BASER2), so the
// virtual commands (VMAPP, VMAPTI, VMOVI, VMOVP, VSYNC, VINVALL, INVDB) and the redistributors'
// GICR_VPROPBASER / GICR_VPENDBASER / GICR_INVLPIR are reached too.
//
// Build and run (FuzzTesting/README.md, from FuzzTesting/):
//   swift build -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address
//   SWIFT_BACKTRACE=enable=off SWIFT_DETERMINISTIC_HASHING=1 .build/release/FuzzITS corpus -max_total_time=60
import Bus
import GIC

/// Reads the input front to back; missing bytes read as zero so every input is a valid program.
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

let itsBase = PhysicalAddress(0x0808_0000)
let queueBase: UInt64 = 0x4000_0000

/// A small QEMU-virt-shaped GIC (2 PEs, 14-bit INTIDs) with tables in RAM, LPIs and ITS enabled,
/// as a driver leaves it before handing control to the input.
/// With `v41`, the same GIC as GICv4.1 whose ITS has its vPE table at GITS_BASER2, as Linux's
/// its_setup_baser leaves it (redistributor frames then have the v4 stride).
func makeSystem(v41: Bool) -> (SystemBus, GICv3, ITS)? {
    let bus = SystemBus()
    var configuration = GICConfiguration(version: v41 ? 4 : 3, cpuCount: 2, lpiIDBits: 14)
    configuration.virtualLPIs = v41
    let gic = GICv3(configuration: configuration)
    let stride = configuration.redistributorStride
    do {
        try bus.addRAM(base: PhysicalAddress(0x4000_0000), size: 0x1000_0000)
        try gic.attach(to: bus, distributorBase: PhysicalAddress(0x0800_0000), redistributorBase: PhysicalAddress(0x080A_0000))
        let its = try gic.addITS(base: itsBase)
        bus.ram.writeBytes(0x4010_0000, [UInt8](repeating: 0xA3, count: 8192))
        for cpu in 0..<2 {
            let rd = 0x080A_0000 + UInt64(cpu) * stride
            try bus.write(PhysicalAddress(rd + 0x70), size: 8, value: 0x4010_0000 | 13, requester: .cpu(cpu))
            try bus.write(PhysicalAddress(rd + 0x78), size: 8, value: 0x4020_0000 + UInt64(cpu) * 0x1_0000, requester: .cpu(cpu))
            try bus.write(PhysicalAddress(rd), size: 4, value: 1, requester: .cpu(cpu))
            gic.setPriorityMask(cpu: cpu, 0xF0)
        }
        try bus.write(PhysicalAddress(itsBase.rawValue + 0x100), size: 8, value: 0x4001_0000 | UInt64(1) << 63, requester: .cpu(0))
        try bus.write(PhysicalAddress(itsBase.rawValue + 0x108), size: 8, value: 0x4008_0000 | UInt64(1) << 63, requester: .cpu(0))
        if v41 {
            // GITS_BASER2: the vPE table, 4 pages of 4 KiB.
            try bus.write(PhysicalAddress(itsBase.rawValue + 0x110), size: 8, value: 0x4030_0000 | UInt64(1) << 63 | 3, requester: .cpu(0))
        }
        try bus.write(PhysicalAddress(itsBase.rawValue + 0x80), size: 8, value: queueBase | UInt64(1) << 63, requester: .cpu(0))
        try bus.write(PhysicalAddress(itsBase.rawValue), size: 4, value: 1, requester: .cpu(0))
        return (bus, gic, its)
    } catch {
        return nil
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0, let (bus, gic, its) = makeSystem(v41: data[0] & 0x80 != 0) else { return 0 }
    let stride = gic.configuration.redistributorStride
    var input = ByteReader(data: UnsafeBufferPointer(start: data, count: size))
    var steps = 0
    while !input.isAtEnd && steps < 4096 {
        steps += 1
        switch input.byte() % 5 {
        case 0, 1:
            // One 32-byte command at CWRITER, then advance CWRITER (one 4 KiB page = 128 slots).
            let slot = its.cwriter
            for i in 0..<4 {
                bus.ram.write(queueBase &+ slot &+ UInt64(i * 8), size: 8, value: input.word(8))
            }
            _ = try? bus.write(PhysicalAddress(itsBase.rawValue + 0x88), size: 8, value: (slot + 32) % 4096, requester: .cpu(0))
        case 2:
            // An MSI: DeviceID sideband, size and requester chosen by the input.
            let selector = input.byte()
            let requester: Requester = selector & 3 == 0 ? .cpu(0) : (selector & 3 == 1 ? .hardware : .device(DeviceID(UInt32(input.word(2)))))
            let sizes = [2, 4, 1, 8]
            _ = try? bus.write(its.translaterAddress, size: sizes[Int(selector >> 2) & 3], value: input.word(4), requester: requester)
        case 3:
            // A register write anywhere in the ITS frames or a redistributor.
            let target = input.byte()
            let offset = input.word(3)
            let value = input.word(8)
            let base: UInt64 = target & 1 == 0 ? itsBase.rawValue + offset % 0x2_0000 : 0x080A_0000 + offset % (2 * stride)
            _ = try? bus.write(PhysicalAddress(base), size: [1, 2, 4, 8][Int(target >> 1) & 3], value: value, requester: .cpu(0))
            _ = try? bus.read(PhysicalAddress(base), size: 8, requester: .cpu(0))
        default:
            let cpu = Int(input.byte() % 3)  // 2 is out of range on purpose
            let intid = gic.acknowledge(cpu: cpu)
            if input.byte() & 1 == 0 { gic.endOfInterrupt(cpu: cpu, intid: intid) }
        }
    }
    return 0
}
