import Bus

/// A GICv4/GICv4.1 virtual ITS command (Arm IHI 0069H, GICv3 and GICv4 Architecture
/// Specification, §5.3 "ITS commands": the VINVALL, VMAPI, VMAPP, VMAPTI, VMOVI, VMOVP, VSYNC and
/// INVDB command descriptions), 32 bytes = four little-endian 64-bit words like a physical
/// command.
///
/// Field positions (checked against Linux `its_encode_*` in drivers/irqchip/irq-gic-v3-its.c and
/// QEMU's `VMAPP_*`, `VMAPTI_*`, `VMOVP_*`, `VMOVI_*`, `VINVALL_*` fields in gicv3_internal.h):
/// - every command: Opcode DW0[7:0], vPEID DW1[47:32];
/// - VMAPTI/VMAPI/VMOVI: DeviceID DW0[63:32], EventID DW1[31:0]; VMAPTI vINTID DW2[31:0];
///   Dbell_pINTID DW2[63:32] (1023 = no per-vLPI doorbell); VMOVI D DW2[0];
/// - VMAPP: Alloc DW0[8] and PTZ DW0[9] (4.1), VConf_addr DW0[51:16] (4.1), Default doorbell
///   DW1[31:0] (4.1), RDbase DW2[51:16], V DW2[63], VPT_size DW3[7:0] (IDbits − 1), VPT_addr
///   DW3[51:16];
/// - VMOVP: SequenceNumber DW0[47:32], ITSList DW1[15:0] (both ignored when GITS_TYPER.VMOVP = 1),
///   RDbase DW2[51:16], DB DW2[63] (4.1), Default doorbell DW3[31:0] (4.1).
/// Reserved bits are ignored on decode and zero on encode.
public enum ITSVirtualCommand: Hashable, Sendable, CustomStringConvertible {
    case vmapp(vpe: UInt16, target: ITSTarget, valid: Bool, vptAddress: PhysicalAddress, vptSize: UInt8,
               vconfAddress: PhysicalAddress, alloc: Bool, ptz: Bool, defaultDoorbell: UInt32)
    case vmapti(device: DeviceID, event: EventID, vpe: UInt16, vintid: UInt32, doorbell: UInt32)
    case vmapi(device: DeviceID, event: EventID, vpe: UInt16, doorbell: UInt32)
    case vmovi(device: DeviceID, event: EventID, vpe: UInt16, doorbellValid: Bool, doorbell: UInt32)
    case vmovp(vpe: UInt16, target: ITSTarget, sequence: UInt16, itsList: UInt16, doorbellValid: Bool, defaultDoorbell: UInt32)
    case vsync(vpe: UInt16)
    case vinvall(vpe: UInt16)
    /// GICv4.1 INVDB: the vPE's default doorbell configuration is re-read.
    case invdb(vpe: UInt16)

    /// Opcodes (IHI 0069H §5.3; Linux GITS_CMD_VMOVI … GITS_CMD_INVDB).
    public enum Opcode {
        public static let vmovi: UInt8 = 0x21
        public static let vmovp: UInt8 = 0x22
        public static let vsync: UInt8 = 0x25
        public static let vmapp: UInt8 = 0x29
        public static let vmapti: UInt8 = 0x2A
        public static let vmapi: UInt8 = 0x2B
        public static let vinvall: UInt8 = 0x2D
        public static let invdb: UInt8 = 0x2E
    }

    /// The INTID that means "no doorbell" (1023, the special INTID for "no pending
    /// interrupt"; Linux and QEMU pass it for a vLPI without a doorbell).
    public static let noDoorbell: UInt32 = 1023

    public var opcode: UInt8 {
        switch self {
        case .vmapp: Opcode.vmapp
        case .vmapti: Opcode.vmapti
        case .vmapi: Opcode.vmapi
        case .vmovi: Opcode.vmovi
        case .vmovp: Opcode.vmovp
        case .vsync: Opcode.vsync
        case .vinvall: Opcode.vinvall
        case .invdb: Opcode.invdb
        }
    }

    /// The vPE the command names.
    public var vpe: UInt16 {
        switch self {
        case .vmapp(let v, _, _, _, _, _, _, _, _), .vmapti(_, _, let v, _, _), .vmapi(_, _, let v, _),
             .vmovi(_, _, let v, _, _), .vmovp(let v, _, _, _, _, _), .vsync(let v), .vinvall(let v), .invdb(let v):
            v
        }
    }

    public func encode() -> [UInt64] {
        var w0 = UInt64(opcode)
        var w1 = UInt64(0).settingBits(47, 32, to: UInt64(vpe))
        var w2: UInt64 = 0
        var w3: UInt64 = 0
        func ids(_ d: DeviceID, _ e: EventID) {
            w0 = w0.settingBits(63, 32, to: UInt64(d.rawValue))
            w1 = w1.settingBits(31, 0, to: UInt64(e.rawValue))
        }
        switch self {
        case .vmapp(_, let target, let valid, let vpt, let size, let vconf, let alloc, let ptz, let db):
            w0 = w0.settingBit(8, to: alloc).settingBit(9, to: ptz).settingBits(51, 16, to: vconf.rawValue &>> 16)
            w1 = w1.settingBits(31, 0, to: UInt64(db))
            w2 = w2.settingBits(51, 16, to: target.rawValue).settingBit(63, to: valid)
            w3 = w3.settingBits(7, 0, to: UInt64(size)).settingBits(51, 16, to: vpt.rawValue &>> 16)
        case .vmapti(let d, let e, _, let vintid, let db):
            ids(d, e)
            w2 = w2.settingBits(31, 0, to: UInt64(vintid)).settingBits(63, 32, to: UInt64(db))
        case .vmapi(let d, let e, _, let db):
            ids(d, e)
            w2 = w2.settingBits(63, 32, to: UInt64(db))
        case .vmovi(let d, let e, _, let dv, let db):
            ids(d, e)
            w2 = w2.settingBit(0, to: dv).settingBits(63, 32, to: UInt64(db))
        case .vmovp(_, let target, let seq, let list, let dbv, let db):
            w0 = w0.settingBits(47, 32, to: UInt64(seq))
            w1 = w1.settingBits(15, 0, to: UInt64(list))
            w2 = w2.settingBits(51, 16, to: target.rawValue).settingBit(63, to: dbv)
            w3 = w3.settingBits(31, 0, to: UInt64(db))
        case .vsync, .vinvall, .invdb:
            break
        }
        return [w0, w1, w2, w3]
    }

    /// Decodes four command words; nil for an opcode that is not a virtual command.
    public init?(_ w0: UInt64, _ w1: UInt64, _ w2: UInt64, _ w3: UInt64) {
        let vpe = UInt16(truncatingIfNeeded: w1.bits(47, 32))
        let device = DeviceID(UInt32(truncatingIfNeeded: w0 &>> 32))
        let event = EventID(UInt32(truncatingIfNeeded: w1))
        let high2 = UInt32(truncatingIfNeeded: w2 &>> 32)
        switch UInt8(truncatingIfNeeded: w0) {
        case Opcode.vmapp:
            self = .vmapp(vpe: vpe, target: ITSTarget(rawValue: w2.bits(51, 16)), valid: w2.bit(63),
                          vptAddress: PhysicalAddress(w3.keepingBits(51, 16)), vptSize: UInt8(truncatingIfNeeded: w3.bits(7, 0)),
                          vconfAddress: PhysicalAddress(w0.keepingBits(51, 16)), alloc: w0.bit(8), ptz: w0.bit(9),
                          defaultDoorbell: UInt32(truncatingIfNeeded: w1))
        case Opcode.vmapti:
            self = .vmapti(device: device, event: event, vpe: vpe, vintid: UInt32(truncatingIfNeeded: w2), doorbell: high2)
        case Opcode.vmapi:
            self = .vmapi(device: device, event: event, vpe: vpe, doorbell: high2)
        case Opcode.vmovi:
            self = .vmovi(device: device, event: event, vpe: vpe, doorbellValid: w2.bit(0), doorbell: high2)
        case Opcode.vmovp:
            self = .vmovp(vpe: vpe, target: ITSTarget(rawValue: w2.bits(51, 16)), sequence: UInt16(truncatingIfNeeded: w0.bits(47, 32)),
                          itsList: UInt16(truncatingIfNeeded: w1), doorbellValid: w2.bit(63),
                          defaultDoorbell: UInt32(truncatingIfNeeded: w3))
        case Opcode.vsync: self = .vsync(vpe: vpe)
        case Opcode.vinvall: self = .vinvall(vpe: vpe)
        case Opcode.invdb: self = .invdb(vpe: vpe)
        default: return nil
        }
    }

    public init?(words: [UInt64]) {
        guard words.count == 4 else { return nil }
        self.init(words[0], words[1], words[2], words[3])
    }

    public var description: String {
        switch self {
        case .vmapp(let v, let t, let valid, let vpt, let size, let vconf, let alloc, let ptz, let db):
            "VMAPP vPEID \(v) RDbase \(t) V=\(valid ? 1 : 0) VPT \(vpt) size \(size) VConf \(vconf) Alloc=\(alloc ? 1 : 0) PTZ=\(ptz ? 1 : 0) DefaultDB \(db)"
        case .vmapti(let d, let e, let v, let i, let db): "VMAPTI DeviceID \(d) EventID \(e) vPEID \(v) vINTID \(i) Dbell \(db)"
        case .vmapi(let d, let e, let v, let db): "VMAPI DeviceID \(d) EventID \(e) vPEID \(v) Dbell \(db)"
        case .vmovi(let d, let e, let v, let dv, let db): "VMOVI DeviceID \(d) EventID \(e) vPEID \(v) D=\(dv ? 1 : 0) Dbell \(db)"
        case .vmovp(let v, let t, let s, let l, let dbv, let db):
            "VMOVP vPEID \(v) RDbase \(t) Seq \(s) ITSList \(l) DB=\(dbv ? 1 : 0) DefaultDB \(db)"
        case .vsync(let v): "VSYNC vPEID \(v)"
        case .vinvall(let v): "VINVALL vPEID \(v)"
        case .invdb(let v): "INVDB vPEID \(v)"
        }
    }
}
