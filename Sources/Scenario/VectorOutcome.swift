import Bus
import GIC
import LinuxKernel
import PCI
import SMMUv3

/// What one fired vector did, observed layer by layer.
public struct VectorOutcome: Hashable, Sendable {
    /// The script step that fired it.
    public var step: Int
    public var device: Int
    public var vector: Int
    /// The guest's vMSI-X (or vMSI) message for the vector: its MSI IOVA, or its doorbell GPA
    /// without a vIOMMU.
    public var guestAddress: UInt64?
    /// The data the guest function's write carries as the guest kernel composed it: the
    /// entry's Message Data (MSI-X), or for multi-message MSI the message's data with the vector
    /// number in its low bits (PCIe r6.0 §6.1.4.1: the function modifies the low-order bits).
    public var guestData: UInt32?
    /// The function's guest RID, and the DeviceID the guest kernel mapped it to on its
    /// (v)ITS (`pci_msi_domain_get_msi_rid`: the DMA alias behind a PCIe-to-PCI bridge).
    public var guestRequesterID: RequesterID?
    public var guestDeviceID: UInt32?
    /// What the host programmed into the physical entry (read back from the device).
    public var programmedAddress: UInt64?
    public var programmedData: UInt32?
    /// The guest's stage 1 (the vSMMU's), and the host's translation of the guest address space.
    public var stage1: StageResult
    public var stage2: StageResult
    /// The physical address the write reached, if the SMMU let it through.
    public var physicalAddress: UInt64?
    /// The physical ITS's translation, if the write reached one.
    public var its: ITSOutcome?
    /// The guest interrupt the guest expects for this vector, and where its handlers ran.
    public var expected: GuestInterrupt?
    public var handled: [GuestInterrupt]
    public var verdict: Verdict
    /// The kernel function that decided the failure, when one did (an abort STE left by a
    /// refused nested attach): function, errno and the StreamID.
    public var cause: KernelRefusal?
    /// The host function that chose the programmed address, when the MSI faulted in a
    /// translation stage: the code that put an address the stage does not map into the entry.
    public var programmedBy: MSIAddressSource?
    /// Event records the host SMMU wrote while this MSI was in flight.
    public var smmuEvents: [EventRecord]
    /// GICv4.1 direct injection: the redistributor's write of the vLPI into the vPE's virtual
    /// pending table (`JournalEntry.vptWrite`), nil when the MSI was not a vLPI.
    public var vptWrite: VPTWrite?
    /// Descriptor reads and TLB lookups the SMMU made for it.
    public var cost: Cost

    public var delivered: Bool { verdict == .delivered }

    /// The result of one translation stage.
    public enum StageResult: Hashable, Sendable {
        /// No such stage on this path (no vIOMMU: there is no guest stage 1).
        case absent
        /// The stage passes the address through (a guest identity domain: bypass vSTE).
        case bypass
        case translated(from: UInt64, to: UInt64)
        /// The stage faulted: the SMMU's event and the descriptor it names.
        case fault(SMMUFault)
        /// The write never reached the stage (an earlier stage failed, or it was not sent).
        case notReached
        /// The doorbell page is outside the SMMU (the platform does not translate its ITS).
        case untranslated
        /// The SMMU terminated the write without a fault record (STE.Config = abort, or
        /// GBPA.ABORT while the SMMU is off: SMMUv3 §5.2, §6.3.14).
        case aborted
    }

    /// The ITS's view: DeviceID and EventID, then the LPI or the drop.
    public struct ITSOutcome: Hashable, Sendable {
        public var index: Int
        public var deviceID: UInt32
        public var eventID: UInt32
        public var result: ITSTranslationResult
    }

    /// Where a vLPI was made pending: vINTID's byte in vPE `vpe`'s VPT, by redistributor `cpu`.
    public struct VPTWrite: Hashable, Sendable {
        public var vpe: UInt16
        public var vintid: UInt32
        public var address: UInt64
        public var cpu: Int
    }

    /// A guest interrupt: Linux irq, LPI (or, on a GICv2m guest, SPI) INTID and vCPU.
    public struct GuestInterrupt: Hashable, Sendable {
        public var irq: Int
        public var lpi: UInt32
        public var cpu: Int

        /// "LPI n", or "SPI n" for an INTID below 1020 (a GICv2m guest's MSIs are SPIs).
        public var intidName: String { lpi < 1020 ? "SPI \(lpi)" : "LPI \(lpi)" }
    }

    public enum Verdict: Hashable, Sendable {
        case delivered
        /// The vector is masked: the Pending bit holds it (not a loss).
        case pending
        /// GICv4.1 direct injection to a vCPU whose vPE is not resident: the vLPI is pending in
        /// vPE `vpe`'s virtual pending table (and `doorbell`, a physical LPI, was rung for the
        /// host to schedule the vCPU); it is taken when the vPE is next resident (not a loss).
        case pendingInVPT(vpe: UInt16, doorbell: UInt32?)
        case failed(FailurePoint, String)

        /// Held, not lost: masked, or pending in a non-resident vPE's VPT.
        public var isPending: Bool {
            switch self {
            case .pending, .pendingInVPT: true
            default: false
            }
        }

        public var failurePoint: FailurePoint? {
            if case .failed(let point, _) = self { return point }
            return nil
        }
    }

    /// What the SMMU paid for the vector: every structure and descriptor read, TLB hits and
    /// misses (the journal's `TranslationCost`, summed).
    public struct Cost: Hashable, Sendable {
        public var descriptorReads = 0
        public var tlbHits = 0
        public var tlbMisses = 0
        public init() {}

        public init(_ cost: TranslationCost) {
            descriptorReads = cost.totalReads
            tlbHits = cost.tlbHits
            tlbMisses = cost.tlbMisses
        }
    }
}

extension TraceLayer {
    /// Software layers, for traces that follow an MSI past the hardware.
    public static let hostKernel = TraceLayer(rawValue: "host-kernel")
    public static let kvm = TraceLayer(rawValue: "kvm")
    public static let guest = TraceLayer(rawValue: "guest")
    public static let vits = TraceLayer(rawValue: "vits")
}
