import Bus

/// A physical ITS command (GICv3 §5.3; 32 bytes = four little-endian 64-bit words).
///
/// Field positions follow docs/hardware.md §ITS commands (GICv3 §5.3), checked against Linux `its_encode_*` and QEMU
/// `process_*`: DW0 Opcode[7:0] and DeviceID[63:32]; DW1 EventID[31:0], MAPTI pINTID[63:32], MAPD
/// Size[4:0]; DW2 ICID[15:0], RDbase[51:16], MAPD ITT_addr[51:8], V[63]; DW3 MOVALL RDbase2[51:16].
/// Reserved bits are ignored on decode and zero on encode.
public enum ITSCommand: Hashable, Sendable, CustomStringConvertible {
    case movi(device: DeviceID, event: EventID, collection: CollectionID)
    case int(device: DeviceID, event: EventID)
    case clear(device: DeviceID, event: EventID)
    case sync(target: ITSTarget)
    /// `size` is the MAPD Size field: EventID bits − 1. `ittAddress` keeps bits [51:8].
    case mapd(device: DeviceID, size: UInt8, ittAddress: PhysicalAddress, valid: Bool)
    case mapc(collection: CollectionID, target: ITSTarget, valid: Bool)
    case mapti(device: DeviceID, event: EventID, intid: INTID, collection: CollectionID)
    case mapi(device: DeviceID, event: EventID, collection: CollectionID)
    case inv(device: DeviceID, event: EventID)
    case invall(collection: CollectionID)
    case movall(from: ITSTarget, to: ITSTarget)
    case discard(device: DeviceID, event: EventID)

    /// Opcodes (GICv3 §5.3, Linux GITS_CMD_*).
    public enum Opcode {
        public static let movi: UInt8 = 0x01
        public static let int: UInt8 = 0x03
        public static let clear: UInt8 = 0x04
        public static let sync: UInt8 = 0x05
        public static let mapd: UInt8 = 0x08
        public static let mapc: UInt8 = 0x09
        public static let mapti: UInt8 = 0x0A
        public static let mapi: UInt8 = 0x0B
        public static let inv: UInt8 = 0x0C
        public static let invall: UInt8 = 0x0D
        public static let movall: UInt8 = 0x0E
        public static let discard: UInt8 = 0x0F
    }

    /// Size of one command in the queue.
    public static let byteCount = 32

    public var opcode: UInt8 {
        switch self {
        case .movi: Opcode.movi
        case .int: Opcode.int
        case .clear: Opcode.clear
        case .sync: Opcode.sync
        case .mapd: Opcode.mapd
        case .mapc: Opcode.mapc
        case .mapti: Opcode.mapti
        case .mapi: Opcode.mapi
        case .inv: Opcode.inv
        case .invall: Opcode.invall
        case .movall: Opcode.movall
        case .discard: Opcode.discard
        }
    }

    /// The four command words, allocation-free (the Linux driver model and the fuzz target
    /// write these straight into the queue).
    public func encodeWords() -> (UInt64, UInt64, UInt64, UInt64) {
        var w0 = UInt64(opcode)
        var w1: UInt64 = 0
        var w2: UInt64 = 0
        var w3: UInt64 = 0
        func device(_ d: DeviceID) { w0 = w0.settingBits(63, 32, to: UInt64(d.rawValue)) }
        func event(_ e: EventID) { w1 = w1.settingBits(31, 0, to: UInt64(e.rawValue)) }
        func icid(_ c: CollectionID) { w2 = w2.settingBits(15, 0, to: UInt64(c.rawValue)) }
        switch self {
        case .movi(let d, let e, let c), .mapi(let d, let e, let c):
            device(d); event(e); icid(c)
        case .int(let d, let e), .clear(let d, let e), .inv(let d, let e), .discard(let d, let e):
            device(d); event(e)
        case .sync(let target):
            w2 = w2.settingBits(51, 16, to: target.rawValue)
        case .mapd(let d, let size, let itt, let valid):
            device(d)
            w1 = w1.settingBits(4, 0, to: UInt64(size))
            w2 = itt.rawValue.keepingBits(51, 8).settingBit(63, to: valid)
        case .mapc(let c, let target, let valid):
            icid(c)
            w2 = w2.settingBits(51, 16, to: target.rawValue).settingBit(63, to: valid)
        case .mapti(let d, let e, let intid, let c):
            device(d); event(e); icid(c)
            w1 = w1.settingBits(63, 32, to: UInt64(intid.rawValue))
        case .invall(let c):
            icid(c)
        case .movall(let from, let to):
            w2 = w2.settingBits(51, 16, to: from.rawValue)
            w3 = w3.settingBits(51, 16, to: to.rawValue)
        }
        return (w0, w1, w2, w3)
    }

    /// The four command words as an array (tests, the driver model).
    public func encode() -> [UInt64] {
        let (w0, w1, w2, w3) = encodeWords()
        return [w0, w1, w2, w3]
    }

    /// Decodes four command words; nil for an opcode this model does not implement (GICv4 virtual
    /// commands, reserved opcodes), which the ITS reports as `ITSCommandOutcome.unsupported`.
    public init?(_ w0: UInt64, _ w1: UInt64, _ w2: UInt64, _ w3: UInt64) {
        let device = DeviceID(UInt32(truncatingIfNeeded: w0 &>> 32))
        let event = EventID(UInt32(truncatingIfNeeded: w1))
        let icid = CollectionID(UInt16(truncatingIfNeeded: w2))
        let target = ITSTarget(rawValue: w2.bits(51, 16))
        switch UInt8(truncatingIfNeeded: w0) {
        case Opcode.movi: self = .movi(device: device, event: event, collection: icid)
        case Opcode.int: self = .int(device: device, event: event)
        case Opcode.clear: self = .clear(device: device, event: event)
        case Opcode.sync: self = .sync(target: target)
        case Opcode.mapd:
            self = .mapd(device: device, size: UInt8(w1.bits(4, 0)),
                         ittAddress: PhysicalAddress(w2.keepingBits(51, 8)), valid: w2.bit(63))
        case Opcode.mapc: self = .mapc(collection: icid, target: target, valid: w2.bit(63))
        case Opcode.mapti:
            self = .mapti(device: device, event: event, intid: INTID(UInt32(truncatingIfNeeded: w1 &>> 32)),
                          collection: icid)
        case Opcode.mapi: self = .mapi(device: device, event: event, collection: icid)
        case Opcode.inv: self = .inv(device: device, event: event)
        case Opcode.invall: self = .invall(collection: icid)
        case Opcode.movall: self = .movall(from: target, to: ITSTarget(rawValue: w3.bits(51, 16)))
        case Opcode.discard: self = .discard(device: device, event: event)
        default: return nil
        }
    }

    /// Decodes a 4-word array; nil if it is not 4 words or the opcode is not implemented.
    public init?(words: [UInt64]) {
        guard words.count == 4 else { return nil }
        self.init(words[0], words[1], words[2], words[3])
    }

    public var description: String {
        switch self {
        case .movi(let d, let e, let c): "MOVI DeviceID \(d) EventID \(e) ICID \(c)"
        case .int(let d, let e): "INT DeviceID \(d) EventID \(e)"
        case .clear(let d, let e): "CLEAR DeviceID \(d) EventID \(e)"
        case .sync(let t): "SYNC RDbase \(t)"
        case .mapd(let d, let s, let itt, let v): "MAPD DeviceID \(d) Size \(s) ITT \(itt) V=\(v ? 1 : 0)"
        case .mapc(let c, let t, let v): "MAPC ICID \(c) RDbase \(t) V=\(v ? 1 : 0)"
        case .mapti(let d, let e, let i, let c): "MAPTI DeviceID \(d) EventID \(e) pINTID \(i.rawValue) ICID \(c)"
        case .mapi(let d, let e, let c): "MAPI DeviceID \(d) EventID \(e) ICID \(c)"
        case .inv(let d, let e): "INV DeviceID \(d) EventID \(e)"
        case .invall(let c): "INVALL ICID \(c)"
        case .movall(let f, let t): "MOVALL RDbase1 \(f) RDbase2 \(t)"
        case .discard(let d, let e): "DISCARD DeviceID \(d) EventID \(e)"
        }
    }
}
