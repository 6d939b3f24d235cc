import Bus

/// One entry of the ITS's vPE table (GITS_BASER2, Type = vPE), indexed by vPEID.
///
/// The format is IMPLEMENTATION DEFINED (IHI 0069H §5.2 "The ITS tables"); this model uses 32
/// bytes (GITS_BASER2.Entry_Size = 31, which Linux `its_setup_baser` reads and allocates by):
/// word 0 Valid[0], VPT_size[15:8] (the VMAPP field, vINTID bits − 1), VPT_addr[51:16];
/// word 1 VConf_addr[51:16]; word 2 the VMAPP/VMOVP RDbase field [35:0];
/// word 3 the default doorbell INTID [31:0] (1023 = none).
public struct VPETableEntry: Hashable, Sendable {
    public var valid: Bool
    public var vptSize: UInt8
    public var vptAddress: PhysicalAddress
    public var vconfAddress: PhysicalAddress
    public var target: ITSTarget
    public var defaultDoorbell: UInt32

    public init(valid: Bool, vptSize: UInt8, vptAddress: PhysicalAddress, vconfAddress: PhysicalAddress,
                target: ITSTarget, defaultDoorbell: UInt32) {
        self.valid = valid
        self.vptSize = vptSize
        self.vptAddress = vptAddress
        self.vconfAddress = vconfAddress
        self.target = target
        self.defaultDoorbell = defaultDoorbell
    }

    public static let invalid = VPETableEntry(valid: false, vptSize: 0, vptAddress: PhysicalAddress(0),
                                              vconfAddress: PhysicalAddress(0), target: ITSTarget(rawValue: 0),
                                              defaultDoorbell: ITSVirtualCommand.noDoorbell)

    public init(words: (UInt64, UInt64, UInt64, UInt64)) {
        valid = words.0.bit(0)
        vptSize = UInt8(truncatingIfNeeded: words.0.bits(15, 8))
        vptAddress = PhysicalAddress(words.0.keepingBits(51, 16))
        vconfAddress = PhysicalAddress(words.1.keepingBits(51, 16))
        target = ITSTarget(rawValue: words.2.bits(35, 0))
        defaultDoorbell = UInt32(truncatingIfNeeded: words.3)
    }

    public var words: [UInt64] {
        [UInt64(0).settingBit(0, to: valid).settingBits(15, 8, to: UInt64(vptSize)) | vptAddress.rawValue.keepingBits(51, 16),
         vconfAddress.rawValue.keepingBits(51, 16),
         target.rawValue,
         UInt64(defaultDoorbell)]
    }

    /// What the target redistributor is told.
    public var mapping: VPEMapping {
        VPEMapping(pendingTable: vptAddress, idBits: Int(vptSize) + 1, configurationTable: vconfAddress,
                   defaultDoorbell: defaultDoorbell)
    }
}
