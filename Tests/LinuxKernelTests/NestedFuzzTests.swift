import Testing
import Bus
import SMMUv3
@testable import LinuxKernel

/// Guest-controlled input to the host's nesting code never crashes it and never reaches past the
/// allow-lists: random vSTE words and random "guest commands" from fixed seeds.
@Suite("iommufd nesting: random guest STEs and commands", .serialized)
struct NestedFuzzTests {
    typealias F = NestedFixture

    /// The vSTE rule restated from the spec side: V = 0 is accepted (as all-zero); otherwise every
    /// set bit must be one of V, Config, S1Fmt, S1ContextPtr, S1CDMax (word 0) or S1DSS, S1CIR,
    /// S1COR, S1CSH, S1STALLD, EATS (word 1), Config ∈ {abort, bypass, S1}, EATS ∈ {0, 1}.
    static func expectedAccepted(_ w0: UInt64, _ w1: UInt64) -> Bool {
        guard w0 & 1 != 0 else { return true }
        let allowed0: UInt64 = 0b11_1111 | (UInt64.lowMask(46) << 6) | (UInt64(0x1F) << 59)
        let allowed1: UInt64 = 0xFF | (1 << 27) | (3 << 28)
        guard w0 & ~allowed0 == 0, w1 & ~allowed1 == 0 else { return false }
        return [0b000, 0b100, 0b101].contains(w0.bits(3, 1)) && w1.bits(29, 28) <= 1
    }

    @Test("3000 random vSTEs: accepted exactly when the allow-list says so; the physical STE's stage-2 half is always the parent's")
    func randomVSTEs() throws {
        let f = try F.make()
        let viommu = try #require(f.iommufd.object(f.viommu) as? IOMMUFDVIOMMU)
        let vsmmu = viommu.vsmmu
        let parentSTE = ArmSMMUv3Entries.stage2STE(vmid: vsmmu.vmid, table: vsmmu.s2Parent.pageTable, features: f.smmu.features)
        var rng = SeededGenerator(seed: 0x5EED_0005)
        for i in 0..<3000 {
            // Bias towards plausible STEs so the accept path is exercised too.
            var w0 = UInt64.random(in: 0...UInt64.max, using: &rng)
            var w1 = UInt64.random(in: 0...UInt64.max, using: &rng)
            if i % 2 == 0 {
                w0 &= 0b11_1111 | (UInt64.lowMask(46) << 6) | (UInt64(0x1F) << 59)
                w1 &= 0xFF | (1 << 27) | (3 << 28)
            }
            var domain: IOMMUDomain?
            do {
                domain = try vsmmu.allocDomainNested(flags: 0, ste: [w0, w1])
            } catch {
                #expect(error == .EIO, "iteration \(i): only EIO for bad vSTE data")
            }
            #expect((domain != nil) == Self.expectedAccepted(w0, w1), "iteration \(i): \(String(w0, radix: 16)) \(String(w1, radix: 16))")
            guard let domain else { continue }
            let nested = try #require(domain.driverData as? ArmSMMUv3NestedDomain)
            let ste = ArmSMMUv3Nesting.physicalSTE(for: nested, features: f.smmu.features, configuration: f.kernel.configuration)
            switch ste.config {
            case .nested, .stage2:
                #expect(ste.dw2 == parentSTE.dw2 && ste.dw3 == parentSTE.dw3, "iteration \(i): VMID/VTCR/S2TTB are the parent's")
                #expect(ste.dw1.bits(31, 30) == 0 && ste.dw1.bits(29, 28) == 0, "iteration \(i): STRW and EATS are the host's")
            case .abort:
                #expect(ste.words.dropFirst().allSatisfy { $0 == 0 })
            default:
                Issue.record("iteration \(i): unexpected config \(ste.config)")
            }
        }
    }

    @Test("2000 random guest commands: only TLBI_NH_*, NSNH_ALL, CFGI_CD*, ATC_INV pass; TLBIs carry the vIOMMU's VMID, CFGIs the physical SID")
    func randomCommandConversion() throws {
        let f = try F.make()
        let vsmmu = try #require(f.iommufd.object(f.viommu) as? IOMMUFDVIOMMU).vsmmu
        var rng = SeededGenerator(seed: 0xC0DE_0005)
        let tlbi: Set<UInt8> = [0x10, 0x11, 0x12, 0x13]
        let sidCommands: Set<UInt8> = [0x05, 0x06, 0x40]
        for i in 0..<2000 {
            var w0 = UInt64.random(in: 0...UInt64.max, using: &rng)
            let w1 = UInt64.random(in: 0...UInt64.max, using: &rng)
            // Half the time a real opcode, a quarter of those with the vSID.
            if i % 2 == 0 {
                let ops: [UInt8] = [0x01, 0x03, 0x04, 0x05, 0x06, 0x10, 0x11, 0x12, 0x13, 0x20, 0x28, 0x2A, 0x30, 0x40, 0x46]
                w0 = (w0 & ~0xFF) | UInt64(ops[Int.random(in: 0..<ops.count, using: &rng)])
                if i % 4 == 0 { w0 = (w0 & 0xFFFF_FFFF) | (F.vSID << 32) }
            }
            let opcode = UInt8(truncatingIfNeeded: w0)
            let converted = vsmmu.convertUserCommand((w0, w1))
            if tlbi.contains(opcode) || opcode == 0x30 {
                let c = try #require(converted, "iteration \(i)")
                #expect(c.0.bits(47, 32) == UInt64(vsmmu.vmid.rawValue), "iteration \(i): VMID forced")
                #expect(UInt8(truncatingIfNeeded: c.0) == (opcode == 0x30 ? 0x10 : opcode))
            } else if sidCommands.contains(opcode) {
                if w0 >> 32 == F.vSID {
                    let c = try #require(converted, "iteration \(i)")
                    #expect(c.0 >> 32 == UInt64(F.pSID.rawValue), "iteration \(i): pSID")
                    #expect(c.0 & 0xFFFF_FFFF == w0 & 0xFFFF_FFFF && c.1 == w1)
                } else {
                    #expect(converted == nil, "iteration \(i): unknown vSID")
                }
            } else {
                #expect(converted == nil, "iteration \(i): opcode \(opcode) is not the guest's")
            }
        }
    }

    @Test("200 random batches through IOMMU_HWPT_INVALIDATE: the SMMU never sees a command outside the guest's reach, entry_num ≤ the batch")
    func randomInvalidateBatches() throws {
        let f = try F.make()
        try f.buildGuestStage1()
        try f.attachNested(F.translatingVSTE)
        let vmid = try #require(f.iommufd.object(f.viommu) as? IOMMUFDVIOMMU).vsmmu.vmid
        var rng = SeededGenerator(seed: 0xBA7C_0005)
        let ops: [UInt8] = [0x05, 0x06, 0x10, 0x11, 0x12, 0x13, 0x30, 0x03, 0x20, 0xFF]
        for i in 0..<200 {
            let count = Int.random(in: 1...4, using: &rng)
            let commands: [(UInt64, UInt64)] = (0..<count).map { _ in
                var w0 = UInt64.random(in: 0...UInt64.max, using: &rng) & ~0xFF
                w0 |= UInt64(ops[Int.random(in: 0..<ops.count, using: &rng)])
                if Bool.random(using: &rng) { w0 = (w0 & 0xFFFF_FFFF) | (F.vSID << 32) }
                return (w0, UInt64.random(in: 0...UInt64.max, using: &rng))
            }
            f.smmu.resetCommandLog()
            var entryNum = UInt32(count)
            do {
                try f.iommufd.hwptInvalidate(hwptID: f.viommu, dataType: IOMMUFD.viommuInvalidateDataARMSMMUv3, commands: commands, entryNum: &entryNum)
                #expect(entryNum == UInt32(count))
            } catch {
                #expect(entryNum < UInt32(count), "iteration \(i)")
            }
            try f.smmu.serviceGlobalErrors()
            for command in f.smmu.commandLog {
                switch command {
                case .tlbiNHAll(let v), .tlbiNHASID(let v, _), .tlbiNHVA(let v, _, _, _, _), .tlbiNHVAA(let v, _, _, _):
                    #expect(v == vmid, "iteration \(i): \(command)")
                case .cfgiCD(let sid, _, _), .cfgiCDAll(let sid):
                    #expect(sid == F.pSID, "iteration \(i): \(command)")
                case .sync:
                    break
                default:
                    Issue.record("iteration \(i): \(command) reached the SMMU")
                }
            }
        }
        // The device still translates through the guest's stage 1 afterwards.
        #expect(f.dmaWrite(F.gIOVA, 0xA5) == .completed)
        #expect(try f.guestRead64(F.bufferIPA) == 0xA5)
    }
}
