import Bus
import GIC
import SMMUv3

extension VectorOutcome {
    /// What the guest expects of a vector, which no hardware layer can observe: the interrupt
    /// its kernel requested. `guestIRQs` are the guest's Linux irqs of the fired device's
    /// vectors: the guest handlers that count for it (nil: all do; a handler for another device,
    /// such as the guest's own SMMU event interrupt, is not this MSI's).
    public struct Expectation: Hashable, Sendable {
        public var interrupt: GuestInterrupt?
        public var guestIRQs: Set<Int>?

        public init(interrupt: GuestInterrupt?, guestIRQs: Set<Int>? = nil) {
            self.interrupt = interrupt
            self.guestIRQs = guestIRQs
        }
    }

    /// The guest's stage 1 for the MSI as the SMMU applied it, observed from the SMMU's own
    /// entries before its answer: the stages the STE's Config enables (`steFetch`), then the
    /// regime of the TLB lookup (`tlb`), which is the one the translation really used (a nested
    /// STE whose S1DSS bypasses stage 1 looks up stage-2 entries, IHI0070 §5.2 S1DSS).
    /// Both stages: the guest's stage 1 runs nested over the host's stage 2 (`translating`);
    /// stage 2 alone: the guest's stage 1 is bypassed (an identity domain, a bypass vSTE, or no
    /// vSTE installed yet); stage 1 alone or neither: the only stage is the host's own, and the
    /// guest has none (`absent`). The labels of `stage1`/`stage2` follow the guest's view: the
    /// host's stage is the guest's "stage 2".
    enum GuestStage1: Hashable, Sendable {
        case absent, bypass, translating

        init(smmuEntries entries: some Sequence<JournalEntry>) {
            var stage1 = false, stage2 = false
            for entry in entries {
                switch entry {
                case .steFetch(_, _, let s1, let s2), .tlb(_, _, let s1, let s2):
                    stage1 = s1
                    stage2 = s2
                default:
                    break
                }
            }
            self = stage2 ? (stage1 ? .translating : .bypass) : .absent
        }
    }

    /// The outcome of one fired vector as a pure fold over its journal: the device's request,
    /// the SMMU's response (translation, fault or abort), the physical ITS, the host's
    /// interrupts, KVM's injections, the VMM's emulated Pending bit and the guest's handlers;
    /// and what the SMMU's reads and TLB lookups cost (`TranslationCost`).
    public init(step: Int, device: Int, vector: Int, journal entries: [JournalEntry], expectation: Expectation) {
        self.init(step: step, device: device, vector: vector, guestAddress: nil,
                  stage1: .notReached, stage2: .notReached, expected: expectation.interrupt, handled: [],
                  verdict: .failed(.device, "not fired"), smmuEvents: [], cost: .init())
        var request: JournalEntry?
        var smmu: JournalEntry?
        var smmuEntries: [JournalEntry] = []
        var hostHandled = 0
        var pending = false
        var lastInjection: JournalInjection?
        var smmuCost = TranslationCost()
        for entry in entries {
            smmuCost.add(entry)
            switch entry {
            case .messageSent, .messageLatched, .messageNotSent:
                if request == nil { request = entry }
            case .smmuTranslated, .smmuFault, .smmuAborted, .untranslatedWindow:
                if smmu == nil { smmu = entry }
            case .steFetch, .tlb:
                if smmu == nil { smmuEntries.append(entry) }
            case .itsTranslate(let its, let deviceID, let eventID, let result):
                if self.its == nil, let result = ITSTranslationResult(result) {
                    self.its = ITSOutcome(index: its ?? 0, deviceID: deviceID.rawValue, eventID: eventID, result: result)
                }
            case .hostInterrupt:
                hostHandled += 1
            case .vptWrite(let vpe, let vintid, let address, let cpu):
                if vptWrite == nil { vptWrite = VPTWrite(vpe: vpe, vintid: vintid, address: address, cpu: cpu) }
            case .pendingBitSet(let d, let v):
                if d == device && v == vector { pending = true }
            case .irqfdInjection(let injection):
                lastInjection = injection
            case .guestHandler(let irq, let lpi, let cpu):
                if let irqs = expectation.guestIRQs, !irqs.contains(irq) { break }
                handled.append(GuestInterrupt(irq: irq, lpi: lpi, cpu: cpu))
            default:
                break
            }
        }
        if case .messageSent(let address, let data, let aborted)? = request {
            programmedAddress = address
            programmedData = data
            classify(smmu, input: address, aborted: aborted, guestStage1: GuestStage1(smmuEntries: smmuEntries))
        }
        cost = Cost(smmuCost)
        verdict = foldVerdict(request, hostHandled: hostHandled, pending: pending, injection: lastInjection)
    }

    /// Stage results from the SMMU's response entry (or its absence: an untranslated doorbell).
    private mutating func classify(_ response: JournalEntry?, input: UInt64, aborted: Bool,
                                   guestStage1: GuestStage1) {
        let nested = guestStage1 == .translating
        let unnested: StageResult = guestStage1 == .bypass ? .bypass : .absent
        switch response {
        case .smmuTranslated(_, let intermediate, let output, _, _)?:
            physicalAddress = output
            if let ipa = intermediate {
                stage1 = .translated(from: input, to: ipa)
                stage2 = .translated(from: ipa, to: output)
            } else {
                stage1 = nested ? .translated(from: input, to: output) : unnested
                stage2 = .translated(from: input, to: output)
            }
        case .smmuAborted?:
            stage1 = .aborted
            stage2 = .aborted
        case .smmuFault(let entry)?:
            guard let fault = SMMUFault(entry) else {
                stage1 = .aborted
                stage2 = .aborted
                return
            }
            if fault.stage2 || !nested {
                stage1 = nested ? .notReached : unnested
                stage2 = .fault(fault)
            } else {
                stage1 = .fault(fault)
                stage2 = .notReached
            }
        default:
            stage1 = .untranslated
            stage2 = .untranslated
            physicalAddress = aborted ? nil : input
        }
    }

    /// Where the MSI ended, from what each layer saw.
    private func foldVerdict(_ request: JournalEntry?, hostHandled: Int, pending: Bool, injection: JournalInjection?) -> Verdict {
        switch request {
        case .messageLatched?:
            return .pending
        case .messageNotSent(let why)?:
            return .failed(.device, "the device did not send it (\(why))")
        case .messageSent?:
            break
        default:
            return .failed(.device, "not fired")
        }
        if let expected, handled == [expected] { return .delivered }
        if !handled.isEmpty {
            let got = handled.map { "\($0.intidName) on vCPU \($0.cpu)" }.joined(separator: ", ")
            let want = expected.map { "\($0.intidName) on vCPU \($0.cpu)" } ?? "nothing"
            return .failed(.misrouted, "the guest took \(got), expected \(want)")
        }
        for stage in [stage1, stage2] {
            if case .fault(let fault) = stage {
                let point: FailurePoint
                switch fault.type {
                case .fTranslation, .fAddrSize, .fAccess, .fPermission:
                    point = fault.faultClass == .cd ? .smmuConfiguration : (fault.stage2 ? .stage2 : .stage1)
                default:
                    point = .smmuConfiguration
                }
                return .failed(point, fault.reason.isEmpty ? "\(fault.type.name)" : fault.reason)
            }
        }
        if case .aborted = stage1 {
            return .failed(.smmuConfiguration, "the SMMU aborted the write without an event (an abort STE: no usable configuration was installed for the StreamID)")
        }
        if let its {
            if case .dropped(let reason) = its.result {
                return .failed(.its, "the physical ITS dropped DeviceID \(Hex.format(UInt64(its.deviceID), minDigits: 1)) EventID \(its.eventID): \(reason)")
            }
            // GICv4.1 direct injection: the ITS wrote the vLPI into the vPE's pending table;
            // the host takes nothing (a doorbell at most) and KVM injects nothing.
            if case .virtual(let vintid, let vpe, _, let delivery) = its.result {
                switch delivery {
                case .doorbell(let intid): return .pendingInVPT(vpe: vpe, doorbell: intid)
                case .pendingNotResident: return .pendingInVPT(vpe: vpe, doorbell: nil)
                case .tableFault: return .failed(.its, "the write of vINTID \(vintid) into vPE \(vpe)'s virtual pending table faulted")
                case .resident: return .failed(.host, "vINTID \(vintid) is pending for vPE \(vpe), resident, but the guest took no interrupt")
                }
            }
        } else if case .untranslated = stage2 {
            return .failed(.its, "the write reached no ITS")
        } else {
            return .failed(.its, "the write reached no ITS doorbell (\(programmedAddress.map { Hex.format($0) } ?? "?"))")
        }
        if hostHandled == 0 { return .failed(.host, "the host took no interrupt") }
        // The guest masked the vector: QEMU's handler (`vfio_msi_interrupt`) set the emulated
        // Pending bit instead of injecting; the unmask delivers it.
        if pending { return .pending }
        switch injection {
        case .delivered?: return .failed(.host, "KVM injected, but no guest handler ran")
        case .blocked(let reason)?: return .failed(.host, "the guest's vITS dropped the injection (\(reason))")
        case .failed(let errno)?: return .failed(.host, "KVM refused the injection (\(errno))")
        case .noRoute?: return .failed(.host, "the irqfd's GSI has no route")
        case nil: return .failed(.host, "the host took the interrupt but signalled nothing for the guest")
        }
    }
}
