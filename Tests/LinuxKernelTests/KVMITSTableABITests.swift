import Testing
import Bus
@testable import LinuxKernel

/// KVM's ITS table ABI rev 0 entry encodings (arm-vgic-its.rst; KVM_ITS_* in vgic.h).
@Suite("KVM vITS table ABI rev 0 entries")
struct KVMITSTableABITests {
    @Test("DTE: Valid[63], next[62:49], ITT_addr[48:5] = address[51:8], Size[4:0]; round trip at every field's extremes")
    func deviceEntry() {
        let dte = KVMITSDeviceEntry(valid: true, next: KVMITSABI.maxDeviceIDOffset, ittAddress: 0xF_FFFF_FFFF_FF00, size: 31)
        #expect(dte.rawValue == 0xFFFF_FFFF_FFFF_FFFF)
        #expect(dte.valid && dte.next == 0x3FFF && dte.ittAddress == 0xF_FFFF_FFFF_FF00 && dte.size == 31 && dte.eventIDBits == 32)
        let one = KVMITSDeviceEntry(valid: true, next: 1, ittAddress: 0x4003_0100, size: 1)
        #expect(one.rawValue == (1 as UInt64) << 63 | 1 << 49 | (0x4003_0100 >> 8) << 5 | 1)
        #expect(KVMITSDeviceEntry(rawValue: one.rawValue) == one)
        // Fields do not bleed into each other: next beyond 14 bits, an unaligned ITT address.
        let clipped = KVMITSDeviceEntry(valid: false, next: 0x4000, ittAddress: 0x10_0000_0000_00FF, size: 0x20)
        #expect(!clipped.valid && clipped.next == 0 && clipped.ittAddress == 0 && clipped.size == 0)
    }

    @Test("ITE: next[63:48], pINTID[47:16], ICID[15:0]; pINTID 0 is the invalid entry")
    func translationEntry() {
        let ite = KVMITSTranslationEntry(next: 0xFFFF, pINTID: 0xFFFF_FFFF, icid: 0xFFFF)
        #expect(ite.rawValue == .max)
        let lpi = KVMITSTranslationEntry(next: 1, pINTID: 8192, icid: 3)
        #expect(lpi.rawValue == (1 as UInt64) << 48 | 8192 << 16 | 3)
        #expect(lpi.valid && lpi.next == 1 && lpi.pINTID == 8192 && lpi.icid == 3)
        #expect(KVMITSTranslationEntry(rawValue: lpi.rawValue) == lpi)
        #expect(!KVMITSTranslationEntry(next: 5, pINTID: 0, icid: 2).valid)
    }

    @Test("CTE: Valid[63], RDBase[51:16] (KVM reads back its low 32 bits), ICID[15:0]; COLLECTION_NOT_MAPPED round-trips")
    func collectionEntry() {
        let unmapped = KVMITSCollectionEntry(valid: true, target: KVMITSABI.collectionNotMapped, icid: 0xFFFF)
        #expect(unmapped.rawValue == (1 as UInt64) << 63 | 0xFFFF_FFFF << 16 | 0xFFFF)
        #expect(unmapped.target == KVMITSABI.collectionNotMapped && unmapped.icid == 0xFFFF)
        let cte = KVMITSCollectionEntry(valid: true, target: 1, icid: 1)
        #expect(cte.rawValue == 0x8000_0000_0001_0001)
        #expect(KVMITSCollectionEntry(rawValue: cte.rawValue) == cte)
        // RES0 bits [62:52] are not part of the target KVM reads ((u32)(val >> 16)).
        #expect(KVMITSCollectionEntry(rawValue: cte.rawValue | (0x7FF as UInt64) << 52).target == 1)
        #expect(!KVMITSCollectionEntry(rawValue: 0x1_0001).valid)
    }
}
