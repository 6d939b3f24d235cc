/// An ITS command error code as GITS_STATUSR / SError reporting would carry it.
///
/// Encoding (docs/hardware.md §ITS command errors, Linux arm-gic-v3.h `E_ITS_*`, used by KVM vgic-its):
/// `0x01 << 16 | opcode << 8 | cause`, with causes 0x01 DeviceID out of range, 0x02 ITT size or
/// processor number out of range, 0x03 collection out of range, 0x04 unmapped device, 0x05 EventID
/// out of range, 0x06 physical INTID out of range, 0x07 unmapped interrupt, 0x09 unmapped
/// collection. The named constants are exactly Linux's list; `make(opcode:cause:)` builds the
/// codes this model also reports from the same scheme (MAPI's own opcode, MAPTI/MAPI collection
/// out of range), which Linux does not name — marked as such where used.
public struct ITSCommandError: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The cause byte values of the encoding.
    public enum Cause {
        public static let deviceOutOfRange: UInt8 = 0x01
        public static let sizeOrProcessorOutOfRange: UInt8 = 0x02
        public static let collectionOutOfRange: UInt8 = 0x03
        public static let unmappedDevice: UInt8 = 0x04
        public static let eventOutOfRange: UInt8 = 0x05
        public static let physicalIDOutOfRange: UInt8 = 0x06
        public static let unmappedInterrupt: UInt8 = 0x07
        public static let unmappedCollection: UInt8 = 0x09
    }

    public static func make(opcode: UInt8, cause: UInt8) -> ITSCommandError {
        ITSCommandError(rawValue: 0x01_0000 | UInt32(opcode) << 8 | UInt32(cause))
    }

    public var opcode: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 8) }
    public var cause: UInt8 { UInt8(truncatingIfNeeded: rawValue) }

    /// E_ITS_MOVI_UNMAPPED_INTERRUPT
    public static let moviUnmappedInterrupt = ITSCommandError(rawValue: 0x01_0107)
    /// E_ITS_MOVI_UNMAPPED_COLLECTION
    public static let moviUnmappedCollection = ITSCommandError(rawValue: 0x01_0109)
    /// E_ITS_INT_UNMAPPED_INTERRUPT
    public static let intUnmappedInterrupt = ITSCommandError(rawValue: 0x01_0307)
    /// E_ITS_CLEAR_UNMAPPED_INTERRUPT
    public static let clearUnmappedInterrupt = ITSCommandError(rawValue: 0x01_0507)
    /// E_ITS_MAPD_DEVICE_OOR
    public static let mapdDeviceOutOfRange = ITSCommandError(rawValue: 0x01_0801)
    /// E_ITS_MAPD_ITTSIZE_OOR
    public static let mapdITTSizeOutOfRange = ITSCommandError(rawValue: 0x01_0802)
    /// E_ITS_MAPC_PROCNUM_OOR
    public static let mapcProcessorOutOfRange = ITSCommandError(rawValue: 0x01_0902)
    /// E_ITS_MAPC_COLLECTION_OOR
    public static let mapcCollectionOutOfRange = ITSCommandError(rawValue: 0x01_0903)
    /// E_ITS_MAPTI_UNMAPPED_DEVICE
    public static let maptiUnmappedDevice = ITSCommandError(rawValue: 0x01_0A04)
    /// E_ITS_MAPTI_ID_OOR
    public static let maptiEventOutOfRange = ITSCommandError(rawValue: 0x01_0A05)
    /// E_ITS_MAPTI_PHYSICALID_OOR
    public static let maptiPhysicalIDOutOfRange = ITSCommandError(rawValue: 0x01_0A06)
    /// E_ITS_INV_UNMAPPED_INTERRUPT
    public static let invUnmappedInterrupt = ITSCommandError(rawValue: 0x01_0C07)
    /// E_ITS_INVALL_UNMAPPED_COLLECTION
    public static let invallUnmappedCollection = ITSCommandError(rawValue: 0x01_0D09)
    /// E_ITS_MOVALL_PROCNUM_OOR
    public static let movallProcessorOutOfRange = ITSCommandError(rawValue: 0x01_0E01)
    /// E_ITS_DISCARD_UNMAPPED_INTERRUPT
    public static let discardUnmappedInterrupt = ITSCommandError(rawValue: 0x01_0F07)

    public var description: String {
        let hex = String(rawValue, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 6 - hex.count)) + hex
    }
}

/// What happened to one command taken from the queue.
public enum ITSCommandOutcome: Hashable, Sendable, CustomStringConvertible {
    case completed
    /// A parameter error with its architected code.
    case error(ITSCommandError)
    /// An opcode the model does not implement (GICv4 virtual commands, reserved opcodes). GICv3
    /// does not define an error code for these; the model skips them, as QEMU does.
    case unsupported(opcode: UInt8)
    /// A read or write of the queue or an ITS table failed on the bus (an external abort). The
    /// ITS stalls on these whatever the policy (QEMU `process_cmdq` stalls on memory errors).
    case memoryFault(address: UInt64)

    public var description: String {
        switch self {
        case .completed: "completed"
        case .error(let e): "error \(e)"
        case .unsupported(let op): "unsupported opcode 0x\(String(op, radix: 16))"
        case .memoryFault(let a): "memory fault at 0x\(String(a, radix: 16))"
        }
    }
}

/// One entry of the ITS's error log (tests and reports read it).
public struct ITSCommandErrorRecord: Hashable, Sendable {
    /// GITS_CREADR offset of the command.
    public var queueOffset: UInt64
    /// The raw command words.
    public var words: [UInt64]
    public var outcome: ITSCommandOutcome
}
