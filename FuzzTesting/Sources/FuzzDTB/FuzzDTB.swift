// libFuzzer entry point for the DTB reader, the topology reader and the writer.
//
// Build and run (FuzzTesting/README.md), from FuzzTesting/:
//   swift build -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address
//   SWIFT_BACKTRACE=enable=off SWIFT_DETERMINISTIC_HASHING=1 .build/release/FuzzDTB Corpus/FuzzDTB -max_total_time=60
// Crash inputs belong in FailCases/FuzzDTB/ and become regression tests.
import Firmware

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // Any error is an acceptable answer; a trap is the bug this target looks for.
    guard let fdt = try? FlattenedDeviceTree(bytes: bytes) else { return 0 }
    if let topology = try? Topology(deviceTree: fdt.tree) {
        _ = topology.summary
        for bridge in topology.pcieHostBridges {
            for map in [bridge.iommuMap, bridge.msiMap].compactMap({ $0 }) {
                for rid: UInt32 in [0, 0x100, 0xFFFF, 0xFFFF_FFFF] { _ = map.lookup(rid) }
            }
        }
    }
    // What the reader accepts, the writer must write and the reader read back identically.
    if let written = try? DeviceTreeWriter.write(fdt.tree) {
        guard let again = try? FlattenedDeviceTree(bytes: written), again.tree == fdt.tree else {
            fatalError("DTB writer round trip differs")
        }
    }
    return 0
}
