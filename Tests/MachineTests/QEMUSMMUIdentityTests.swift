import Testing
import Bus
import SMMUv3
@testable import Machine

/// The qemu-virt presets' SMMU as a guest driver reads it, against QEMU 11.0's emulated SMMUv3:
/// `smmuv3_init_id_regs` (hw/arm/smmuv3.c) with the field layout and constants of
/// hw/arm/smmuv3-internal.h. The expected words are written out from QEMU's source field by
/// field here, not taken from the model's `SMMUConfiguration.qemu`.
@Suite("QEMU 11.0 SMMUv3 identification")
struct QEMUSMMUIdentityTests {
    static let smmuBase: UInt64 = 0x0905_0000

    /// IDR0–5, IIDR, AIDR of the first SMMU of `machine`, as 32-bit MMIO reads.
    static func idRegisters(_ machine: Machine) throws -> [UInt32] {
        try [0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x1C].map { offset throws in
            UInt32(truncatingIfNeeded: try machine.bus.read(PhysicalAddress(smmuBase + UInt64(offset)), size: 4, requester: .cpu(0)))
        }
    }

    /// One field of a QEMU `FIELD(reg, NAME, shift, length)`.
    static func field(_ value: UInt32, _ shift: Int, _ length: Int) -> UInt32 { (value >> UInt32(shift)) & ((1 << UInt32(length)) - 1) }

    @Test("qemu-virt (stage=nested): every IDR0 field as smmuv3_init_id_regs sets it", arguments: MachinePreset.allCases)
    func idr0(preset: MachinePreset) throws {
        let idr0 = try Self.idRegisters(try preset.makeMachine())[0]
        let expected: [(String, Int, Int, UInt32)] = [
            ("S2P", 0, 1, 1), ("S1P", 1, 1, 1), ("TTF", 2, 2, 2), ("COHACC", 4, 1, 1), ("BTM", 5, 1, 0),
            ("HTTU", 6, 2, 0), ("DORMHINT", 8, 1, 0), ("HYP", 9, 1, 0), ("ATS", 10, 1, 0), ("NS1ATS", 11, 1, 0),
            ("ASID16", 12, 1, 1), ("MSI", 13, 1, 0), ("SEV", 14, 1, 0), ("ATOS", 15, 1, 0), ("PRI", 16, 1, 0),
            ("VMW", 17, 1, 0), ("VMID16", 18, 1, 1), ("CD2L", 19, 1, 0), ("VATOS", 20, 1, 0),
            ("TTENDIAN", 21, 2, 2), ("ATSRECERR", 23, 1, 0), ("STALL_MODEL", 24, 2, 1), ("TERM_MODEL", 26, 1, 1),
            ("STLEVEL", 27, 2, 1), ("RME_IMPL", 30, 1, 0),
        ]
        for (name, shift, length, value) in expected {
            #expect(Self.field(idr0, shift, length) == value, "IDR0.\(name)")
        }
        #expect(idr0 == 0x0D44_101B)
    }

    @Test("qemu-virt: IDR1 (SIDSIZE 16, SSIDSIZE 0, EVENTQS 19, CMDQS 19), IDR2/IDR4 0, IDR3 (HAD, XNX with S2P, RIL, BBML2), IDR5 (44-bit OAS, 4K/16K/64K), IIDR 0, AIDR v3.1")
    func otherRegisters() throws {
        let r = try Self.idRegisters(try MachinePreset.qemuVirt.makeMachine())
        let idr1: [(String, Int, Int, UInt32)] = [
            ("SIDSIZE", 0, 6, 16), ("SSIDSIZE", 6, 5, 0), ("PRIQS", 11, 5, 0), ("EVENTQS", 16, 5, 19), ("CMDQS", 21, 5, 19),
            ("ATTR_PERMS_OVR", 26, 1, 0), ("ATTR_TYPES_OVR", 27, 1, 0), ("REL", 28, 1, 0), ("QUEUES_PRESET", 29, 1, 0),
            ("TABLES_PRESET", 30, 1, 0), ("ECMDQ", 31, 1, 0),
        ]
        for (name, shift, length, value) in idr1 { #expect(Self.field(r[1], shift, length) == value, "IDR1.\(name)") }
        #expect(r[2] == 0 && r[4] == 0, "IDR2 (no VATOS), IDR4 (IMPLEMENTATION DEFINED, QEMU 0)")
        let idr3: [(String, Int, Int, UInt32)] = [
            ("HAD", 2, 1, 1), ("PBHA", 3, 1, 0), ("XNX", 4, 1, 1), ("PPS", 5, 1, 0), ("MPAM", 7, 1, 0), ("FWB", 8, 1, 0),
            ("STT", 9, 1, 0), ("RIL", 10, 1, 1), ("BBML", 11, 2, 2), ("E0PD", 13, 1, 0), ("PTWNNC", 14, 1, 0), ("DPT", 15, 1, 0),
        ]
        for (name, shift, length, value) in idr3 { #expect(Self.field(r[3], shift, length) == value, "IDR3.\(name)") }
        let idr5: [(String, Int, Int, UInt32)] = [
            ("OAS", 0, 3, 4), ("GRAN4K", 4, 1, 1), ("GRAN16K", 5, 1, 1), ("GRAN64K", 6, 1, 1), ("VAX", 10, 2, 0), ("STALL_MAX", 16, 16, 0),
        ]
        for (name, shift, length, value) in idr5 { #expect(Self.field(r[5], shift, length) == value, "IDR5.\(name)") }
        #expect(r == [0x0D44_101B, 0x0273_0010, 0, 0x1414, 0, 0x74, 0, 1])
    }

    @Test("QEMU's stage property: 1 (the default) S1P only without XNX, 2 S2P only with XNX, nested both")
    func stageProperty() {
        let s1 = SMMUConfiguration.qemu(stage: .stage1), s2 = SMMUConfiguration.qemu(stage: .stage2)
        let nested = SMMUConfiguration.qemu(stage: .nested)
        #expect(s1.idr0 == 0x0D44_101A && s1.idr3 == 0x1404)
        #expect(s2.idr0 == 0x0D44_1019 && s2.idr3 == 0x1414)
        #expect(nested.idr0 == 0x0D44_101B && nested.idr3 == 0x1414)
        for c in [s1, s2, nested] {
            #expect(c.idr1 == 0x0273_0010 && c.idr2 == 0 && c.idr4 == 0 && c.idr5 == 0x74 && c.aidr == 1)
        }
        #expect(nested == .qemuVirt)
    }

    @Test("the model's generic default is not QEMU's: 48-bit OAS, MSI, CD2L, SSIDSIZE 20, AIDR v3.2 with RIL")
    func genericDefaultDiffers() {
        let d = SMMUConfiguration.default
        #expect(d.idr5 & 7 == 5 && d.idr0.bit(13) && d.idr0.bit(19) && d.idr1.bits(10, 6) == 20 && d.aidr == 2)
        #expect(d != .qemuVirt)
    }
}
