import Bus

/// KVM's vITS table layout, ABI revision 0 (Documentation/virt/kvm/devices/arm-vgic-its.rst
/// "ITS Table ABI REV0"; the KVM_ITS_* masks of arch/arm64/kvm/vgic/vgic.h;
/// `its_table_abi_versions[0]` in vgic-its.c): every entry is 8 bytes (ABI_0_ESZ), stored
/// little-endian. The device table and each ITT are indexed by DeviceID and EventID; the
/// collection table is a packed list ended by an invalid entry. `next` is the ID offset to the
/// next valid entry (0: the last), capped at 2^14 − 1 for DTEs and 2^16 − 1 for ITEs
/// (VITS_DTE_MAX_DEVID_OFFSET, VITS_ITE_MAX_EVENTID_OFFSET). The same in v6.14, v6.15 and v6.19.
public enum KVMITSABI {
    /// ABI_0_ESZ.
    public static let entrySize: UInt64 = 8
    /// VITS_DTE_MAX_DEVID_OFFSET.
    public static let maxDeviceIDOffset: UInt32 = (1 << 14) - 1
    /// VITS_ITE_MAX_EVENTID_OFFSET.
    public static let maxEventIDOffset: UInt32 = (1 << 16) - 1
    /// COLLECTION_NOT_MAPPED: the target of a collection MAPTI created before any MAPC.
    public static let collectionNotMapped: UInt32 = 0xFFFF_FFFF
    /// The only level-2 page size KVM supports (KVM_ITS_L1E_ADDR_MASK, `handle_l1_dte`).
    public static let pageSize: UInt64 = 0x1_0000
    /// VITS_TYPER_DEVBITS / VITS_TYPER_IDBITS.
    public static let deviceIDBits = 16
    public static let eventIDBits = 16
}

/// Device Table Entry: Valid[63], next[62:49], ITT_addr[48:5] (ITT address bits [51:8]),
/// Size[4:0] (EventID bits − 1) (KVM_ITS_DTE_*; `vgic_its_save_dte`, `vgic_its_restore_dte`).
public struct KVMITSDeviceEntry: Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// `next` keeps its low 14 bits, `size` its low 5; the ITT address must be 256-byte aligned
    /// and below 2^52 (bits outside [51:8] are dropped).
    public init(valid: Bool, next: UInt32, ittAddress: UInt64, size: UInt8) {
        rawValue = UInt64(0)
            .settingBit(63, to: valid)
            .settingBits(62, 49, to: UInt64(next))
            .settingBits(48, 5, to: ittAddress.bits(51, 8))
            .settingBits(4, 0, to: UInt64(size))
    }

    public var valid: Bool { rawValue.bit(63) }
    public var next: UInt32 { UInt32(truncatingIfNeeded: rawValue.bits(62, 49)) }
    public var ittAddress: UInt64 { rawValue.bits(48, 5) &<< 8 }
    public var size: UInt8 { UInt8(truncatingIfNeeded: rawValue.bits(4, 0)) }
    /// num_eventid_bits = Size + 1 (1…32).
    public var eventIDBits: Int { Int(size) + 1 }
}

/// Interrupt Translation Entry: next[63:48], pINTID[47:16] (0: invalid), ICID[15:0]
/// (KVM_ITS_ITE_*; `vgic_its_save_ite`, `vgic_its_restore_ite`).
public struct KVMITSTranslationEntry: Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public init(next: UInt32, pINTID: UInt32, icid: UInt16) {
        rawValue = UInt64(0)
            .settingBits(63, 48, to: UInt64(next))
            .settingBits(47, 16, to: UInt64(pINTID))
            .settingBits(15, 0, to: UInt64(icid))
    }

    public var next: UInt32 { UInt32(truncatingIfNeeded: rawValue.bits(63, 48)) }
    public var pINTID: UInt32 { UInt32(truncatingIfNeeded: rawValue.bits(47, 16)) }
    public var icid: UInt16 { UInt16(truncatingIfNeeded: rawValue.bits(15, 0)) }
    public var valid: Bool { pINTID != 0 }
}

/// Collection Table Entry: Valid[63], RES0[62:52], RDBase[51:16] (a vCPU ID: GITS_TYPER.PTA=0;
/// KVM stores the 32-bit `target_addr` there and reads back its low 32 bits), ICID[15:0]
/// (KVM_ITS_CTE_*; `vgic_its_save_cte`, `vgic_its_restore_cte`).
public struct KVMITSCollectionEntry: Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public init(valid: Bool, target: UInt32, icid: UInt16) {
        rawValue = UInt64(0)
            .settingBit(63, to: valid)
            .settingBits(51, 16, to: UInt64(target))
            .settingBits(15, 0, to: UInt64(icid))
    }

    public var valid: Bool { rawValue.bit(63) }
    /// `(u32)(val >> KVM_ITS_CTE_RDBASE_SHIFT)`: bits [47:16].
    public var target: UInt32 { UInt32(truncatingIfNeeded: rawValue &>> 16) }
    public var icid: UInt16 { UInt16(truncatingIfNeeded: rawValue.bits(15, 0)) }
}
