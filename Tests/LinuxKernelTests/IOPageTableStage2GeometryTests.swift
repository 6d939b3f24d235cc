import Testing
import Bus
import Machine
import PCI
import SMMUv3
@testable import LinuxKernel

/// The stage-2 walk io-pgtable-arm sets up (`arm_64_lpae_alloc_pgtable_s2` with
/// `arm_lpae_concat_mandatory`, commits 4dcac8407fe1 and b7b8a6305557, both in v6.14) and
/// whether the model's SMMU accepts the STE the driver builds from it.
///
/// Expected values are worked out by hand from the Linux code, not from the model's formula:
/// va_bits = ias − pg_shift, levels = ⌈va_bits / bits_per_level⌉ (9 for 4K, 11 for 16K, 13
/// for 64K), start = 4 − levels, pgd_bits = va_bits − bits_per_level × (levels − 1); then
/// concatenation only for 4K at level 0 with oas 40/42, 16K at level 0 with oas or ias 48,
/// 16K at level 1 with oas 40; SL0 = ~(start + 1 for 4K) & 3; T0SZ = 64 − ias.
@Suite("io-pgtable-arm stage 2: start level, concatenation, VTCR, and the SMMU's verdict")
struct IOPageTableStage2GeometryTests {
    /// (granule, ias, oas) → (start level, start-table entries, concatenated tables, SL0).
    static let expected: [(Granule, Int, Int, Int, Int, Int, Int)] = [
        // 4K: ias = oas as the SMMUv3 driver sets them on an AArch64-only SMMU.
        (.size4K, 32, 32, 1, 4, 1, 1),
        (.size4K, 36, 36, 1, 64, 1, 1),
        (.size4K, 40, 40, 1, 1024, 2, 1),     // R_SRKBC a): 2 tables at level 1
        (.size4K, 42, 42, 1, 4096, 8, 1),     // R_SRKBC c): 8 tables at level 1
        (.size4K, 44, 44, 0, 32, 1, 2),
        (.size4K, 48, 48, 0, 512, 1, 2),
        // 4K with ias < oas (the selftest's cases): level 0 stays, unconcatenated, since v6.14.
        (.size4K, 40, 44, 0, 2, 1, 2),
        (.size4K, 42, 48, 0, 8, 1, 2),
        // 4K with ias > oas: an SMMU walking AArch32 tables too (ias 40) with a 36-bit OAS.
        (.size4K, 40, 36, 0, 2, 1, 2),
        // 16K.
        (.size16K, 32, 32, 2, 128, 1, 1),
        (.size16K, 36, 36, 2, 2048, 1, 1),
        (.size16K, 40, 40, 2, 32768, 16, 1),  // R_SRKBC b): 16 tables at level 2 (the fix)
        (.size16K, 40, 42, 1, 16, 1, 2),
        (.size16K, 42, 42, 1, 64, 1, 2),
        (.size16K, 44, 44, 1, 256, 1, 2),
        (.size16K, 48, 48, 1, 4096, 2, 2),    // R_DXBSH / R_SRKBC d): 2 tables at level 1
        (.size16K, 40, 36, 1, 16, 1, 2),
        // 64K: never starts at level 0, never concatenates.
        (.size64K, 32, 32, 2, 8, 1, 1),
        (.size64K, 36, 36, 2, 128, 1, 1),
        (.size64K, 40, 40, 2, 2048, 1, 1),
        (.size64K, 42, 42, 2, 8192, 1, 1),
        (.size64K, 44, 44, 1, 4, 1, 2),
        (.size64K, 48, 48, 1, 64, 1, 2),
        (.size64K, 52, 52, 1, 1024, 1, 2),
    ]

    @Test("arm_64_lpae_alloc_pgtable_s2: start level, pgd entries, concatenated tables, VTCR.SL0/T0SZ", arguments: expected)
    func geometry(_ c: (Granule, Int, Int, Int, Int, Int, Int)) throws {
        let (granule, ias, oas, start, entries, tables, sl0) = c
        let g = try #require(IOPageTableARM.stage2Geometry(granule: granule, inputBits: ias, outputBits: oas))
        #expect(g.startLevel == start && g.startTableEntries == entries && g.concatenatedTables == tables)
        #expect(WalkGeometry.sl0(granule: granule, startLevel: g.startLevel) == sl0)

        // The same through the io-pgtable object the driver uses.
        let pageSizes: UInt64 = switch granule {
        case .size4K: (1 << 12) | (1 << 21) | (1 << 30)
        case .size16K: (1 << 14) | (1 << 25)
        case .size64K: (1 << 16) | (1 << 29)
        }
        let f = try SMMUFixture.make()
        let table = try IOPageTableARM(kernel: f.kernel, format: .stage2, inputBits: ias, outputBits: oas, smmuPageSizes: pageSizes)
        #expect(table.geometry == g)
        #expect(table.tableSize == 64 - ias && table.startLevelField == sl0)
        #expect(table.root.rawValue & (UInt64(entries) * 8 - 1) == 0, "the pgd is aligned to its size")
    }

    @Test("before v6.14 (a level-0 pgd of ≤ 16 entries was always concatenated) and since: they differ only where the OAS says so")
    func ruleChange() {
        // ias = oas: the old rule and the new agree except for 16K/40, which the old rule left at
        // level 1 (SL0 = 2, invalid with PAMax 40).
        for (granule, bits) in [(Granule.size4K, 40), (.size4K, 42), (.size16K, 48), (.size4K, 44), (.size64K, 48)] {
            #expect(IOPageTableARM.stage2Geometry(granule: granule, inputBits: bits, outputBits: bits)
                    == WalkGeometry.linuxStage2(granule: granule, inputSize: bits))
        }
        #expect(WalkGeometry.linuxStage2(granule: .size16K, inputSize: 40).startLevel == 1)
        #expect(IOPageTableARM.stage2Geometry(granule: .size16K, inputBits: 40, outputBits: 40)?.startLevel == 2)
        // ias < oas: the old rule concatenated 4K/40 whatever the OAS; v6.14 does not.
        #expect(WalkGeometry.linuxStage2(granule: .size4K, inputSize: 40).startLevel == 1)
        #expect(IOPageTableARM.stage2Geometry(granule: .size4K, inputBits: 40, outputBits: 48)?.startLevel == 0)
    }

    @Test("a concatenation the architecture requires but that would need more than 16 tables: WARN_ON, NULL, -ENOMEM")
    func tooManyConcatenatedTables() throws {
        // 4K, ias 48 with oas 40: level 0 has 512 entries; ARM_LPAE_S2_MAX_CONCAT_PAGES is 16.
        #expect(IOPageTableARM.concatenationMandatory(granule: .size4K, startLevel: 0, inputBits: 48, outputBits: 40))
        #expect(IOPageTableARM.stage2Geometry(granule: .size4K, inputBits: 48, outputBits: 40) == nil)
        let f = try SMMUFixture.make()
        #expect(throws: Errno.ENOMEM) {
            _ = try IOPageTableARM(kernel: f.kernel, format: .stage2, inputBits: 48, outputBits: 40, smmuPageSizes: 0x4020_1000)
        }
    }

    // MARK: The model's SMMU walks what Linux builds

    static let granules: [Granule] = [.size4K, .size16K, .size64K]

    /// An SMMU with IDR5.OAS = `oas` and only `granule` (so a 4K kernel's io-pgtable picks it:
    /// PAGE_SIZE if offered, else the smallest size above).
    static func smmu(granule: Granule, oas: OutputAddressSize) -> SMMUConfiguration {
        var c = MachinePreset.qemuVirt.options.smmu
        c.outputAddressSize = oas
        c.granule4K = granule == .size4K
        c.granule16K = granule == .size16K
        c.granule64K = granule == .size64K
        return c
    }

    @Test("every stage-2 table the driver builds, for each granule and each OAS the SMMU can report, is a legal STE and the SMMU walks DMA through its first and last page",
          arguments: granules, OutputAddressSize.allCases)
    func smmuAcceptsStage2(granule: Granule, oas: OutputAddressSize) throws {
        let f = try SMMUFixture.make(smmu: Self.smmu(granule: granule, oas: oas))
        #expect(f.driver.features.outputAddressBits == oas.bits && f.driver.features.inputAddressBits == oas.bits)
        let device = try f.device("0000:00:01.0", sids: [0x8])
        let domain = try f.driver.allocatePagingDomain(for: device, flags: .nestParent)
        let smmuDomain = try #require(domain.driverData as? ArmSMMUv3Domain)
        let table = smmuDomain.pageTable
        let ias = table.inputBits
        #expect(ias == min(oas.bits, granule == .size64K ? 52 : 48), "arm_lpae_restrict_pgsizes clips ias to max_addr_bits")
        #expect(table.geometry.granule == granule)
        #expect(table.geometry == IOPageTableARM.stage2Geometry(granule: granule, inputBits: ias, outputBits: table.outputBits))

        try f.driver.attach(domain, to: device)
        let ste = try #require(try f.driver.streamTableEntry(for: StreamID(0x8)))
        #expect(ste.valid && ste.config == .stage2)
        #expect(ste.s2Granule == granule && ste.s2T0SZ == 64 - ias && ste.s2SL0 == table.startLevelField)
        let hardware = f.machine.smmus[0].configuration
        #expect(ste.illegalRule(on: hardware) == nil, "the SMMU's C_BAD_STE checks (§5.2 S2T0SZ, S2SL0)")

        // Map a RAM granule at the first and the last granule of the IAS and DMA through each.
        let page = try f.kernel.pages.allocate(bytes: granule.size, alignment: granule.size)
        let ops = try #require(domain.operations)
        for (index, iova) in [UInt64(0), (UInt64(1) << UInt64(ias)) - granule.size].enumerated() {
            try ops.map(iova: iova, physical: page, size: granule.size, protection: [.read, .write])
            let marker = UInt64(0xD0_0000 + index)
            let dma = f.functions[0].dma(.write, address: IOVA(iova + 0x10), size: 4, data: marker)
            #expect(dma.result?.status == .completed, "DMA to 0x\(String(iova, radix: 16))")
            #expect(try f.ram(page.rawValue + 0x10) & 0xFFFF_FFFF == marker)
            var gather = IOTLBGather()
            #expect(ops.unmap(iova: iova, size: granule.size, gather: &gather) == granule.size)
            ops.iotlbSync(gather)
        }
        #expect(f.driver.commandErrors.isEmpty)
    }

    @Test("the pre-v6.14 16K layout for a 40-bit OAS (start level 1, SL0 = 2) is C_BAD_STE on that SMMU; the concatenated one is legal")
    func oldSixteenKLayoutIsIllegal() throws {
        let hardware = Self.smmu(granule: .size16K, oas: .bits40)
        let old = WalkGeometry(granule: .size16K, inputSize: 40, startLevel: 1)
        let ste = ArmSMMUv3Entries.stage2STE(vmid: VMID(1), ttb: PhysicalAddress(0x4000_0000), geometry: old, outputSize: .bits40,
                                             features: ArmSMMUv3Features())
        #expect(ste.s2SL0 == 2)
        #expect(ste.illegalRule(on: hardware) == .s2StartLevelInconsistent)
        let linux = try #require(IOPageTableARM.stage2Geometry(granule: .size16K, inputBits: 40, outputBits: 40))
        let fixed = ArmSMMUv3Entries.stage2STE(vmid: VMID(1), ttb: PhysicalAddress(0x4000_0000), geometry: linux, outputSize: .bits40,
                                               features: ArmSMMUv3Features())
        #expect(fixed.s2SL0 == 1 && fixed.illegalRule(on: hardware) == nil)
    }
}
