import Testing
import Bus
@testable import SMMUv3

@Suite("SMMUv3 command encoding (§4)")
struct CommandEncodingTests {
    static let range = TLBIRangeFields(num: 7, scale: 3, ttl: 3, tg: 1)

    /// One command of every kind, with non-zero values in every field so that a field landing
    /// in the wrong bits shows up in the round trip.
    static let samples: [Command] = [
        .prefetchConfig(StreamID(0xDEAD_BEEF), substream: SubstreamID(0xF_FFFF)),
        .prefetchConfig(StreamID(3), substream: nil),
        .prefetchAddress(StreamID(0x12), substream: SubstreamID(5), address: 0xFFFF_8000_1234_5000, size: 31, stride: 9),
        .cfgiSTE(StreamID(0x1234_5678), leaf: true),
        .cfgiSTE(StreamID(1), leaf: false),
        .cfgiSTERange(StreamID(0x100), range: 7),
        Command.cfgiAll(),
        .cfgiCD(StreamID(0x42), SubstreamID(0xA_BCDE), leaf: true),
        .cfgiCDAll(StreamID(0xFFFF_FFFF)),
        .tlbiNHAll(VMID(0xBEEF)),
        .tlbiNHASID(VMID(0x1234), ASID(0xFEDC)),
        .tlbiNHVA(VMID(7), ASID(9), address: 0xFFFF_FFFF_FFFF_F000, leaf: true, range: range),
        .tlbiNHVAA(VMID(0xFFFF), address: 0x0000_7FFF_FFFF_0000, leaf: false, range: .none),
        .tlbiEL2All,
        .tlbiEL2ASID(ASID(0x55AA)),
        .tlbiEL2VA(ASID(3), address: 0x1000, leaf: true, range: TLBIRangeFields(num: 31, scale: 31, ttl: 2, tg: 3)),
        .tlbiEL2VAA(address: 0x8000_0000, leaf: false, range: range),
        .tlbiS12VMAll(VMID(0x8001)),
        .tlbiS2IPA(VMID(0x10), ipa: 0x000F_FFFF_FFFF_F000, leaf: true, range: TLBIRangeFields(num: 1, scale: 0, ttl: 0, tg: 2)),
        .tlbiNSNHAll,
        .atcInvalidate(StreamID(0x77), substream: SubstreamID(1), global: true, address: 0xABCD_E000, size: 52),
        .priResponse(StreamID(0x88), substream: SubstreamID(2), group: 0x1FF, response: 2),
        .resume(StreamID(0x99), stag: 0xFFFF, retry: true, abort: false),
        .resume(StreamID(0x99), stag: 1, retry: false, abort: true),
        .stallTerminate(StreamID(0xAA)),
        .sync(CommandSync(completionSignal: .interrupt, msiShareability: 3, msiAttributes: 0xF,
                          msiData: 0xCAFE_F00D, msiAddress: 0x00FF_FFFF_FFFF_FFFC)),
        .sync(CommandSync(completionSignal: .sendEvent)),
        .sync(CommandSync(completionSignal: .none)),
        .secureOnly(.tlbiEL3All, 0x18, 0),
        .secureOnly(.tlbiSNHAll, 0x1234_0000_0000_0060, 0x55),
        .unimplementedFeature(.cfgiVMSPartIDMap, 0x0000_0005_0000_0007, 0),
        .unimplementedFeature(.dptiPA, 0x73, 0x4000_0000),
    ]

    @Test("every opcode the spec defines has a sample")
    func samplesCoverEveryKind() {
        let covered = Set(Self.samples.map(\.opcode))
        let definedTyped = Set(CommandOpcode.allCases.filter { !$0.isSecureQueueOnly && $0 != .cfgiVMSPartIDMap && $0 != .dptiAll })
        #expect(definedTyped.isSubset(of: covered))
    }

    @Test("decode(encode(c)) == c for every kind of command", arguments: samples)
    func roundTrip(command: Command) throws {
        let (w0, w1) = command.encode()
        #expect(UInt8(truncatingIfNeeded: w0) == command.opcode.rawValue)
        let decoded = try Command.decode(w0, w1).get()
        #expect(decoded == command)
        // And the encoding is canonical: encoding the decoded command gives the same words.
        let (again0, again1) = decoded.encode()
        #expect(again0 == w0 && again1 == w1)
    }

    @Test("every Reserved and IMPLEMENTATION DEFINED opcode decodes to CERROR_ILL (§4.1.1)")
    func reservedOpcodes() {
        let defined = Set(CommandOpcode.allCases.map(\.rawValue))
        var reserved = 0
        for raw in 0...255 where !defined.contains(UInt8(raw)) {
            reserved += 1
            let result = Command.decode(UInt64(raw) | 0xFFFF_FFFF_FFFF_FF00, .max)
            guard case .failure(let error) = result else {
                Issue.record("opcode \(raw) decoded")
                continue
            }
            #expect(error == .reservedOpcode(UInt8(raw)))
            #expect(error.code == .illegal)
        }
        // 256 values minus the 34 opcodes of §4.1.1's table.
        #expect(reserved == 256 - 34)
    }

    @Test("Linux's CMD_SYNC with MSIPOLL decodes to CS=SIG_IRQ, MSH=ISH, MSIAttr=0xF, data 0")
    func linuxSyncVector() throws {
        // arm_smmu_cmdq_build_sync_cmd: OP 0x46 | CS_IRQ << 12 | MSH ISH (3) << 22 | MSIATTR_OIWB (0xF) << 24;
        // dw1 = the queue slot address.
        let w0: UInt64 = 0x46 | 1 << 12 | 3 << 22 | 0xF << 24
        let decoded = try Command.decode(w0, 0x4100_0040).get()
        #expect(decoded == .sync(CommandSync(completionSignal: .interrupt, msiShareability: 3, msiAttributes: 0xF,
                                             msiData: 0, msiAddress: 0x4100_0040)))
    }

    @Test("Linux's CMD_CFGI_ALL (opcode 4, Range 31) is the configurationAll scope")
    func linuxCfgiAll() throws {
        let decoded = try Command.decode(0x04, 31).get()
        #expect(decoded.invalidation(on: .default) == .configurationAll)
        #expect(decoded.encode() == (0x04, 31))
    }

    @Test("TLBI_NH_VA fields land where Linux's CMDQ_TLBI_* masks put them")
    func tlbiFieldPositions() {
        let (w0, w1) = Command.tlbiNHVA(VMID(0x1234), ASID(0x5678), address: 0xFFFF_0000_4000_3000, leaf: true,
                                        range: TLBIRangeFields(num: 5, scale: 2, ttl: 3, tg: 1)).encode()
        #expect(w0 == 0x5678_1234_0020_5012)  // ASID[63:48] VMID[47:32] SCALE[24:20] NUM[16:12] OP
        #expect(w1 == 0xFFFF_0000_4000_3701)  // VA[63:12] TG[11:10]=1 TTL[9:8]=3 LEAF[0]
    }

    @Test("decode-time CERROR_ILL: SSec=1 on the Non-secure queue, CMD_SYNC CS=0b11")
    func decodeTimeIllegal() {
        // CFGI_STE with SSec (dw0[10]).
        #expect((try? Command.decode(0x03 | 1 << 10, 0).get()) == nil)
        #expect((try? Command.decode(0x46 | 3 << 12, 0).get()) == nil)
        // TLBI_NH_ALL has no SSec: bit 10 is RES0 and ignored (§4.1.5).
        #expect((try? Command.decode(0x10 | 1 << 10, 0).get()) == .tlbiNHAll(VMID(0)))
    }

    static func configuration(_ edit: (inout SMMUConfiguration) -> Void) -> SMMUConfiguration {
        var c = SMMUConfiguration()
        edit(&c)
        return c
    }

    @Test("commands for features the SMMU lacks are CERROR_ILL (§4.3–4.7, §7.1)")
    func featureDependentIllegal() {
        let s1Only = Self.configuration { $0.stage2 = false }
        let s2Only = Self.configuration { $0.stage1 = false }
        let hyp = Self.configuration { $0.hyp = true }
        let stall = Self.configuration { $0.stallModel = .stallAndTerminate }
        #expect(Command.tlbiEL2All.illegality(on: .default) != nil)     // IDR0.HYP = 0
        #expect(Command.tlbiEL2All.illegality(on: hyp) == nil)
        #expect(Command.tlbiS12VMAll(VMID(1)).illegality(on: s1Only) != nil)
        #expect(Command.tlbiS2IPA(VMID(1), ipa: 0, leaf: false, range: .none).illegality(on: s1Only) != nil)
        #expect(Command.tlbiNHAll(VMID(1)).illegality(on: s2Only) != nil)
        #expect(Command.cfgiCD(StreamID(1), SubstreamID(0), leaf: true).illegality(on: s2Only) != nil)
        #expect(Command.cfgiSTE(StreamID(1), leaf: true).illegality(on: s2Only) == nil)
        #expect(Command.tlbiNSNHAll.illegality(on: s1Only) == nil)      // valid on any SMMU (§4.4.4.1)
        #expect(Command.resume(StreamID(1), stag: 0, retry: true, abort: false).illegality(on: .default) != nil)
        #expect(Command.resume(StreamID(1), stag: 0, retry: true, abort: false).illegality(on: stall) == nil)
        #expect(Command.atcInvalidate(StreamID(1), substream: nil, global: true, address: 0, size: 0).illegality(on: .default) != nil)
        #expect(Command.secureOnly(.tlbiEL3All, 0x18, 0).illegality(on: hyp) != nil)
        #expect(Command.sync(CommandSync(completionSignal: .none)).illegality(on: .default) == nil)
    }

    @Test("range TLBI: TG≠0 with NUM=SCALE=TTL=0 is Reserved; TG=16K with TTL=1 needs DS (§4.4.1.1)")
    func rangeIllegal() {
        let noRIL = Self.configuration { $0.rangeInvalidation = false }
        let reserved = Command.tlbiNHVA(VMID(0), ASID(1), address: 0x1000, leaf: true, range: TLBIRangeFields(tg: 1))
        #expect(reserved.illegality(on: .default) != nil)
        #expect(reserved.illegality(on: noRIL) == nil)    // fields RES0 without RIL
        let ttl1 = Command.tlbiS2IPA(VMID(0), ipa: 0x4000, leaf: true, range: TLBIRangeFields(num: 1, ttl: 1, tg: 2))
        #expect(ttl1.illegality(on: .default) != nil)
        let fine = Command.tlbiS2IPA(VMID(0), ipa: 0x4000, leaf: true, range: TLBIRangeFields(num: 1, ttl: 3, tg: 2))
        #expect(fine.illegality(on: .default) == nil)
    }

    @Test("invalidation scopes handed to the translator")
    func invalidationScopes() {
        let s1Only = Self.configuration { $0.stage2 = false }
        let noRIL = Self.configuration { $0.rangeInvalidation = false }
        let hyp = Self.configuration { $0.hyp = true }
        let nhva = Command.tlbiNHVA(VMID(3), ASID(4), address: 0x7000, leaf: true,
                                    range: TLBIRangeFields(num: 3, scale: 1, ttl: 3, tg: 3))
        #expect(nhva.invalidation(on: .default) == .nhVA(VMID(3), ASID(4), address: 0x7000, leaf: true,
                                                          range: TLBIRange(num: 3, scale: 1, granule: .size64K, ttl: 3)))
        // Without RIL the range fields are RES0: a plain by-VA invalidation.
        #expect(nhva.invalidation(on: noRIL) == .nhVA(VMID(3), ASID(4), address: 0x7000, leaf: true, range: nil))
        // On a stage-1-only SMMU the VMID is RES0 and S1 entries carry VMID 0 (§4.4.2).
        #expect(Command.tlbiNHAll(VMID(9)).invalidation(on: s1Only) == .nhAll(VMID(0)))
        #expect(Command.tlbiNHAll(VMID(9)).invalidation(on: .default) == .nhAll(VMID(9)))
        #expect(Command.cfgiSTERange(StreamID(0x40), range: 4).invalidation(on: .default)
                == .streamTableEntryRange(StreamID(0x40), range: 4))
        #expect(Command.cfgiCD(StreamID(2), SubstreamID(3), leaf: false).invalidation(on: .default)
                == .contextDescriptor(StreamID(2), SubstreamID(3), leaf: false))
        #expect(Command.tlbiS2IPA(VMID(1), ipa: 0x8000, leaf: false, range: .none).invalidation(on: .default)
                == .s2IPA(VMID(1), ipa: 0x8000, leaf: false, range: nil))
        #expect(Command.tlbiEL2VA(ASID(1), address: 0, leaf: true, range: .none).invalidation(on: hyp) == .el2All)
        #expect(Command.tlbiNSNHAll.invalidation(on: .default) == .nsnhAll)
        #expect(Command.sync(CommandSync(completionSignal: .none)).invalidation(on: .default) == nil)
        #expect(Command.prefetchConfig(StreamID(1), substream: nil).invalidation(on: .default) == nil)
    }
    @Test("descriptions use the spec's names and parameters")
    func descriptions() {
        #expect(Command.cfgiAll().description == "CMD_CFGI_ALL")
        #expect(Command.tlbiNHVA(VMID(7), ASID(0x42), address: 0xFFBF_0000, leaf: true, range: .none).description
                == "CMD_TLBI_NH_VA(VMID 0x7, ASID 0x42, Addr 0xffbf_0000, Leaf)")
        #expect(Command.sync(CommandSync(completionSignal: .none)).description == "CMD_SYNC(SIG_NONE)")
        // Every sample renders with its opcode's name first.
        for sample in Self.samples where sample != Command.cfgiAll() {
            #expect(sample.description.hasPrefix(sample.opcode.description))
        }
    }
}
