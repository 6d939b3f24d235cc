// libFuzzer entry point for the ACPI table readers, writers and Topology(acpi:memory:).
//
// Build and run from FuzzTesting/ (README.md): FuzzTesting/fuzz.sh FuzzACPI 60
// Seeds: Corpus/FuzzACPI/ (the Tests/Fixtures/acpi binaries). Crash inputs belong in
// FailCases/FuzzACPI/ and become regression tests.
import Firmware

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // The input is one table; the other two come from a fixed QEMU virt-like set so that
    // Topology(acpi:) gets far. Any error is an acceptable answer; a trap is the bug.
    var set = ACPITableSet()
    guard (try? set.add(bytes)) != nil else { return 0 }
    if let iort = set.iort {
        _ = iort.fields
        // What the reader accepts, the writer writes and the reader reads back identically.
        if let written = try? iort.bytes() {
            guard let again = try? IORT(bytes: written), (try? again.bytes()) == written else { fatalError("IORT writer round trip differs") }
        }
    }
    if let madt = set.madt {
        _ = madt.fields
        if let written = try? madt.bytes(), let again = try? MADT(bytes: written) {
            guard (try? again.bytes()) == written else { fatalError("MADT writer round trip differs") }
        }
    }
    if let mcfg = set.mcfg { _ = mcfg.fields; _ = try? mcfg.bytes() }
    if set.madt == nil {
        set.madt = MADT(structures: [
            MADTStructure(kind: .gicd(MADTGICD(baseAddress: 0x0800_0000, version: 3))),
            MADTStructure(kind: .gicc(MADTGICC(cpuInterfaceNumber: 0, uid: 0, mpidr: 0))),
            MADTStructure(kind: .its(MADTGICITS(translationID: 0, baseAddress: 0x0808_0000))),
        ])
    }
    _ = set.defaultMemory()
    if let topology = try? Topology(acpi: set, memory: set.defaultMemory()) {
        // SMMUv1/v2 nodes (type 3): the model → arm-smmu version decision, as the machine and
        // the kernel model take it.
        for iommu in topology.otherIOMMUs { _ = iommu.armSMMUVersion; _ = iommu.interruptCount }
        for bridge in topology.pcieHostBridges {
            for map in [bridge.iommuMap, bridge.msiMap].compactMap({ $0 }) {
                for rid: UInt32 in [0, 0x100, 0xFFFF, 0xFFFF_FFFF] { _ = map.lookup(rid) }
            }
        }
    }
    return 0
}
