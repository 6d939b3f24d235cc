// libFuzzer target for the SMMUv3 translator (recipe: FuzzTesting/README.md).
//
// Input layout (missing bytes read as zero):
//   [0]        flags: bit0 2-level stream table, bit1 point the STE at the CD area, bit2 point the
//              CD's TTB0 at the table area, bit3 point S2TTB at the table area, bit4 SSV,
//              bit5 write, bit6 privileged, bit7 instruction
//   [1]        StreamID (low 4 bits) / SubstreamID (high 4 bits)
//   [2..9]     input address (little-endian)
//   [10..73]   STE (8 words)           → stream table (linear) or L2 table (2-level)
//   [74..137]  CD (8 words)            → CD area at 0x4001_0000
//   [138..]    table bytes             → table area at 0x4002_0000 (L1STD at its start if 2-level)
// The translation runs twice (the second may hit the TLB), then one invalidation chosen by the
// address's low bits runs, then a third translation.
import Bus
import SMMUv3

private let ramBase: UInt64 = 0x4000_0000
private let cdArea: UInt64 = 0x4001_0000
private let tableArea: UInt64 = 0x4002_0000

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes: [UInt8] = data.map { Array(UnsafeBufferPointer(start: $0, count: max(size, 0))) } ?? []
    func byte(_ i: Int) -> UInt8 { i < bytes.count ? bytes[i] : 0 }
    func word(_ offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(byte(offset + i)) << UInt64(8 * i) }
        return value
    }

    let bus = SystemBus()
    do { try bus.addRAM(base: PhysicalAddress(ramBase), size: 0x100_0000) } catch { return 0 }
    let translator = SMMUTranslator(configuration: .default, bus: bus)
    let flags = byte(0)
    let sid = UInt32(byte(1) & 0xF)
    let ssid = UInt32(byte(1) >> 4)
    let twoLevel = flags & 1 != 0
    translator.streamTable = StreamTableConfiguration(base: PhysicalAddress(twoLevel ? tableArea : ramBase), log2Size: 4, split: 6, twoLevel: twoLevel)
    translator.recordInvalidStreamIDs = true

    var ste = StreamTableEntry(words: (0..<8).map { word(10 + 8 * $0) })
    if flags & 2 != 0 { ste.s1ContextPtr = cdArea }
    if flags & 8 != 0 { ste.s2TTB = tableArea }
    var cd = ContextDescriptor(words: (0..<8).map { word(74 + 8 * $0) })
    if flags & 4 != 0 { cd.ttb0 = tableArea }

    // Table bytes first, then the structures on top of them, so the flags win.
    var offset = 138
    var address = tableArea
    while offset < bytes.count {
        try? bus.write64(PhysicalAddress(address), word(offset))
        offset += 8
        address += 8
    }
    // Linear: entry SID of the table at ramBase; 2-level: entry SID of the L2 table at ramBase.
    let steAddress = ramBase + UInt64(sid) * 64
    if twoLevel {
        // L1STD[0] → an L2 table of 16 STEs at the stream table base.
        try? bus.write64(PhysicalAddress(tableArea), LevelOneStreamTableDescriptor(span: 5, l2Ptr: ramBase).rawValue)
    }
    try? bus.writeWords(PhysicalAddress(steAddress), ste.words)
    try? bus.writeWords(PhysicalAddress(cdArea), cd.words)

    let transaction = DeviceTransaction(
        kind: flags & 0x20 != 0 ? .write : .read, address: IOVA(word(2)), size: 4, streamID: StreamID(sid),
        substreamID: flags & 0x10 != 0 ? SubstreamID(ssid) : nil, deviceID: DeviceID(sid),
        privileged: flags & 0x40 != 0, instruction: flags & 0x80 != 0)
    _ = translator.translate(transaction)
    _ = translator.translate(transaction)
    let scopes: [Invalidation] = [
        .configurationAll, .streamTableEntry(StreamID(sid), leaf: true), .contextDescriptorAll(StreamID(sid)),
        .nhAll(ste.s2VMID), .nhASID(ste.s2VMID, cd.asid),
        .nhVA(ste.s2VMID, cd.asid, address: word(2), leaf: false, range: TLBIRange(num: Int(byte(3) & 31), scale: Int(byte(4) & 31), granule: .size4K, ttl: 0)),
        .s2IPA(ste.s2VMID, ipa: word(2), leaf: true, range: nil), .nsnhAll,
    ]
    translator.invalidate(scopes[Int(byte(2)) % scopes.count])
    _ = translator.translate(transaction)
    return 0
}
