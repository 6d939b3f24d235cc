/// The typed record of what happened to one followed transaction (an MSI, end to end): each
/// layer appends what it decided as it decides it, so whoever follows the message reads facts
/// instead of piecing them together from the layers' state afterwards, and the verdict is a
/// fold over the entries (`VectorOutcome(journal:expectation:)` in the Scenario module).
///
/// Like `TraceLog`, a journal is attached only while a message is followed (`Machine.journal`);
/// hot paths test one optional. Entries are facts, not words: a `TraceLog` is for people, a
/// journal is for code.
public final class Journal {
    public private(set) var entries: [JournalEntry] = []

    public init() {}

    public func append(_ entry: JournalEntry) { entries.append(entry) }

    public func removeAll() { entries.removeAll() }
}

/// One fact about the followed message. Hardware layers append the first group as they act;
/// the software layers' facts are appended by whoever runs them: the host kernel's IRQ core
/// (each interrupt it takes), `eventfd_signal`, KVM (the irqfd injection and its vITS's
/// translation), the guest kernel's IRQ core (each handler it runs) and the VMM (its emulated
/// Pending bit).
public enum JournalEntry: Hashable, Sendable {
    /// The function put its message on the link: the address and data it wrote, and whether
    /// the write came back aborted.
    case messageSent(address: UInt64, data: UInt32, aborted: Bool)
    /// The vector was masked: the function latched its Pending bit instead of writing.
    case messageLatched
    /// The function did not send it (why, in words).
    case messageNotSent(String)
    /// The root complex tagged the request: the requester ID it used (after any bridge alias),
    /// the StreamID and DeviceID from `iommu-map`/`msi-map`, and whether it went to an SMMU.
    case route(requesterID: UInt16, streamID: StreamID, deviceID: DeviceID, translated: Bool)
    /// The SMMU looked up the STE for the StreamID (`cached`: from the configuration cache), and
    /// found a valid one: `stage1`/`stage2` are the stages its Config field enables (IHI0070
    /// §5.2 STE.Config: 0b101 stage 1, 0b110 stage 2, 0b111 both; bypass and abort neither).
    case steFetch(streamID: StreamID, cached: Bool, stage1: Bool, stage2: Bool)
    /// The SMMU read a level-1 stream table descriptor: the first of the two reads of a
    /// two-level stream table lookup, at STRTAB_BASE + 8 × StreamID[SPLIT+n-1:SPLIT] (IHI0070
    /// §3.3.2, multi-level Stream tables; the L1STD format, Span and L2Ptr, §5.1). Appended for
    /// every read the SMMU issued, whether the descriptor then proved usable or not.
    case l1stdRead(streamID: StreamID, address: UInt64, descriptor: UInt64)
    /// The SMMU read an STE from memory (IHI0070 §5.2; a configuration-cache miss): its PA and
    /// first doubleword. Appended before the STE is checked, so a lookup that fails on an
    /// ILLEGAL STE (C_BAD_STE) still shows the read it cost; `steFetch` follows only when the
    /// STE was valid.
    case steRead(streamID: StreamID, address: UInt64, dw0: UInt64)
    /// The SMMU read a level-1 context descriptor of a two-level CD table (IHI0070 §5.3 L1CD,
    /// selected by STE.S1Fmt, §5.2): its PA (after stage 2 when nested) and value. Appended for
    /// every read, including an L1CD with V=0 that ends the lookup with C_BAD_SUBSTREAMID.
    case l1cdRead(streamID: StreamID, index: UInt32, address: UInt64, descriptor: UInt64)
    /// The SMMU read a CD from memory (IHI0070 §5.4; a configuration-cache miss): its PA (after
    /// stage 2 when nested) and first doubleword, before the CD is checked, so a lookup that
    /// fails on an ILLEGAL CD (C_BAD_CD) still shows the read; `cdFetch` follows only when the
    /// CD was valid.
    case cdRead(streamID: StreamID, index: UInt32, address: UInt64, dw0: UInt64)
    /// The SMMU looked up a CD (`cached`: from the configuration cache).
    case cdFetch(streamID: StreamID, index: UInt32, cached: Bool)
    /// One translation-table descriptor read: stage 1 or 2, level, the PA read, the descriptor.
    case walkRead(stage: Int, level: Int, address: UInt64, descriptor: UInt64)
    /// A TLB lookup for the input address, tagged with the stages of the entry kind it looked
    /// for (stage 1 only, stage 2 only, or both for a combined nested entry): the translation
    /// regime the SMMU applies to the transaction (IHI0070 §3.17, TLB tagging).
    case tlb(hit: Bool, address: UInt64, stage1: Bool, stage2: Bool)
    /// The SMMU passed the transaction on: `input` → `output`. `intermediate` is the IPA when
    /// two stages were applied (nested); `stage1`/`stage2` say which stages translated (both
    /// false: bypass).
    case smmuTranslated(input: UInt64, intermediate: UInt64?, output: UInt64, stage1: Bool, stage2: Bool)
    /// The SMMU terminated the transaction with this fault (recorded or not, per CD.R/STE.S2R).
    case smmuFault(JournalFault)
    /// The SMMU terminated the transaction without an event (STE.Config = abort, or GBPA.ABORT
    /// with SMMUEN = 0).
    case smmuAborted(input: UInt64)
    /// The address fell in a doorbell page the platform keeps outside the SMMU.
    case untranslatedWindow(address: UInt64)
    /// An MMIO register read on the bus (a polled register, not a step of the message).
    case mmioRead(address: UInt64, value: UInt64)
    /// A physical ITS (by index, when known) translated a GITS_TRANSLATER write.
    case itsTranslate(its: Int?, deviceID: DeviceID, eventID: UInt32, result: JournalITSResult)
    /// A write a layer discarded (a pre-ITS slot that is not a 32-bit aligned write, a
    /// GITS_TRANSLATER write of a size it does not take).
    case droppedWrite(address: UInt64, size: Int)
    /// A redistributor made an LPI pending (it was not already: LPIs are edge-triggered, a second
    /// set coalesces); `cpu` is the redistributor's processor number.
    case lpiPending(intid: UInt32, cpu: Int)
    /// The host kernel's IRQ core acknowledged an interrupt on a CPU (`gic_handle_irq`: the
    /// INTID read from ICC_IAR1_EL1): its Linux irq and the action's name when a descriptor maps
    /// it (nil for a spurious INTID or one with no action).
    case hostInterrupt(cpu: Int, hwirq: UInt32, irq: Int?, handler: String?)
    /// `eventfd_signal` on an eventfd (VFIO's `vfio_msihandler`): the irq whose handler
    /// signalled and the CPU it ran on, when a handler did.
    case eventfdSignal(irq: Int?, cpu: Int?)
    /// KVM's irqfd injected (or failed to inject) the GSI's MSI.
    case irqfdInjection(JournalInjection)
    /// KVM's vITS (the ITS model run over the guest's tables in guest RAM) translated the MSI KVM
    /// was asked to inject.
    case vitsTranslate(deviceID: DeviceID, eventID: UInt32, result: JournalITSResult)
    /// The VMM's emulated MSI-X PBA bit of a vector was set: the guest had masked it (QEMU
    /// `vfio_msi_interrupt` → `msix_set_pending`). `device` is the VMM's device index.
    case pendingBitSet(device: Int, vector: Int)
    /// The guest kernel's IRQ core ran a handler: its irq, the LPI, the vCPU.
    case guestHandler(irq: Int, lpi: UInt32, cpu: Int)
    /// A kernel's ITS driver put a command on ITS `its`'s queue (its description, e.g.
    /// "VMAPTI DeviceID 0x8 EventID 0 vPEID 0 vINTID 8192 Dbell 1023").
    case itsCommand(its: Int, command: String)
    /// GICv4.1: a redistributor set vINTID's bit in vPE `vpe`'s virtual pending table, the byte
    /// at `address` (IHI 0069H: the VPT has the LPI pending table's format).
    case vptWrite(vpe: UInt16, vintid: UInt32, address: UInt64, cpu: Int)
    /// The host took vPE `vpe`'s doorbell LPI on `cpu`: a vLPI arrived while the vPE was not
    /// resident (KVM's `vgic_v4_doorbell_handler` kicks the vCPU).
    case vpeDoorbell(vpe: UInt16, intid: UInt32, cpu: Int)
}

/// A physical or virtual ITS's answer for (DeviceID, EventID): the LPI and the redistributor it
/// went to (and whether the redistributor accepted it), or why it was dropped.
public enum JournalITSResult: Hashable, Sendable {
    case delivered(intid: UInt32, cpu: Int, accepted: Bool)
    /// `reason` is the ITS model's drop reason (its raw value) and its wording.
    case dropped(reason: Int, description: String)
    /// GICv4.1 direct injection: vINTID pending in vPE `vpe`'s virtual pending table at
    /// redistributor `cpu`: signalled to the resident vPE, or `doorbell` (a physical LPI) rung
    /// for a non-resident one, or neither; `faulted` when the table write failed.
    case virtualLPI(vintid: UInt32, vpe: UInt16, cpu: Int, resident: Bool, doorbell: UInt32?, faulted: Bool)
}

/// How KVM's injection of an irqfd's route ended.
public enum JournalInjection: Hashable, Sendable {
    case delivered
    case blocked(String)
    case failed(String)
    case noRoute
}

/// An SMMU fault as the journal keeps it: the event record's architected fields (SMMUv3 §7.3)
/// plus what the translator knew when it raised it. `level` and `invalidDescriptor` name the
/// descriptor the fault is about ("S1 L1 invalid"), set by the walker that read it; they are
/// nil/false for faults that name no descriptor (configuration errors, TLB-entry permission
/// faults, input-range checks).
public struct JournalFault: Hashable, Sendable {
    /// The event number (`SMMUEventType.rawValue`).
    public var eventType: UInt8
    public var streamID: StreamID
    public var substreamID: SubstreamID?
    public var inputAddress: UInt64
    public var isWrite: Bool
    public var instruction: Bool
    public var privileged: Bool
    public var stage2: Bool
    /// CLASS (`FaultClass.rawValue`).
    public var faultClass: UInt8
    public var ipa: UInt64?
    public var fetchAddress: UInt64?
    public var tableWalkWrite: Bool
    public var record: Bool
    public var abort: Bool
    /// The walk level of the descriptor the fault names.
    public var level: Int?
    /// Whether that descriptor was invalid (bit 0 clear).
    public var invalidDescriptor: Bool
    public var reason: String

    public init(eventType: UInt8, streamID: StreamID, substreamID: SubstreamID?, inputAddress: UInt64, isWrite: Bool,
                instruction: Bool, privileged: Bool, stage2: Bool, faultClass: UInt8, ipa: UInt64?, fetchAddress: UInt64?,
                tableWalkWrite: Bool, record: Bool, abort: Bool, level: Int?, invalidDescriptor: Bool, reason: String) {
        self.eventType = eventType
        self.streamID = streamID
        self.substreamID = substreamID
        self.inputAddress = inputAddress
        self.isWrite = isWrite
        self.instruction = instruction
        self.privileged = privileged
        self.stage2 = stage2
        self.faultClass = faultClass
        self.ipa = ipa
        self.fetchAddress = fetchAddress
        self.tableWalkWrite = tableWalkWrite
        self.record = record
        self.abort = abort
        self.level = level
        self.invalidDescriptor = invalidDescriptor
        self.reason = reason
    }
}
