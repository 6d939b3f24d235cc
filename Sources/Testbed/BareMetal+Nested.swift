import Bus
import Machine
import SMMUv3

/// A nested (stage 1 + stage 2) configuration of the kind a VM with a passthrough device gets,
/// built directly on the hardware: the host's stage-2 tables map a window of "guest RAM" (IPA
/// space) onto a different host-physical window, and the stage-1 tables and the CD live inside
/// that guest RAM, addressed by IPA, so the SMMU must walk stage 2 to read every one of them
/// (SMMUv3 §3.3.2 / docs/hardware.md §Translation table walks, "Nested walk").
extension BareMetal {
    public struct NestedSetup {
        public let streamID: StreamID
        public let vmid: VMID
        public let asid: ASID
        /// Stage-2 tables (host-owned, in host RAM): IPA → PA.
        public let stage2: PageTableBuilder
        /// Stage-1 tables (guest-owned, in guest RAM): IOVA → IPA. Descriptor addresses are IPAs.
        public let stage1: PageTableBuilder
        /// The CD's IPA (what the STE's S1ContextPtr holds).
        public let contextDescriptorIPA: UInt64
        /// Guest RAM: IPA base, the PA that backs it, and its size.
        public let guestRAM: (ipa: UInt64, pa: UInt64, size: UInt64)
    }

    /// Guest RAM for the nested demo: IPA 0x4000_0000 (where QEMU `virt` puts a guest's RAM,
    /// hw/arm/virt.c `VIRT_MEM`; the IPA space is the guest's own, so this is not a platform
    /// address), backed by up to 256 MiB of host RAM centred in the largest usable span, below
    /// the table memory at its top and aligned to 2 MiB so stage 2 can use block mappings.
    public var defaultGuestRAM: (ipa: UInt64, pa: UInt64, size: UInt64) {
        let below = allocator.base &- ramSpan.base.rawValue
        let size = min(0x1000_0000, below / 2) & ~0x1F_FFFF
        let middle = (ramSpan.base.rawValue &+ ramSpan.size / 2) & ~0x1F_FFFF
        let pa = min(middle, allocator.base &- size)
        return (0x4000_0000, max(pa, ramSpan.base.rawValue), size)
    }

    /// Builds the nested configuration for `streamID`: stage 2 with a `stage2InputSize`-bit IPA
    /// space (Linux's concatenated start level), guest RAM IPA `guestRAM.ipa` → PA `guestRAM.pa`
    /// (`defaultGuestRAM` when nil), and a 48-bit stage 1 whose tables and CD are allocated at
    /// the top of guest RAM. The caller adds mappings (`stage1.map`, `stage2.map`) and the STE
    /// is installed at once.
    public func enableNested(streamID: StreamID, vmid: VMID = VMID(1), asid: ASID = ASID(1),
                             guestRAM requested: (ipa: UInt64, pa: UInt64, size: UInt64)? = nil,
                             stage1Granule: Granule = .size4K, stage2Granule: Granule = .size4K,
                             stage1InputSize: Int = 48, stage2InputSize: Int = 40, smmu index: Int = 0) throws(Failure) -> NestedSetup {
        guard index < machine.smmus.count else { throw .noSuchComponent("SMMU \(index)") }
        let guestRAM = requested ?? defaultGuestRAM
        guard guestRAM.size >= 0x20_0000 else { throw .outOfTableMemory }
        let oas = machine.smmus[index].translator.configuration.outputAddressSize
        let stage2: PageTableBuilder
        let stage1: PageTableBuilder
        let guestTables = PageAllocator(base: guestRAM.ipa &+ guestRAM.size / 2, size: guestRAM.size / 2)
        let s1Geometry = WalkGeometry(granule: stage1Granule, inputSize: stage1InputSize,
                                      startLevel: WalkGeometry.stage1StartLevel(granule: stage1Granule, inputSize: stage1InputSize))
        do {
            stage2 = try PageTableBuilder(stage2InputSize: stage2InputSize, granule: stage2Granule, bus: machine.bus, allocator: allocator)
            try stage2.map(input: guestRAM.ipa, output: guestRAM.pa, size: guestRAM.size)
            stage1 = try PageTableBuilder(stage: .stage1, geometry: s1Geometry, bus: machine.bus, allocator: guestTables,
                                          physicalOffset: guestRAM.pa &- guestRAM.ipa)
        } catch { throw .outOfTableMemory }
        guard let cdIPA = guestTables.allocate(bytes: 64, alignment: 64) else { throw .outOfTableMemory }
        let cd = ContextDescriptor.stage1(asid: asid, ttb0: stage1.root, geometry: s1Geometry, ips: oas)
        for (i, word) in cd.words.enumerated() {
            try write(PhysicalAddress(cdIPA &- guestRAM.ipa &+ guestRAM.pa &+ UInt64(i) * 8), 8, word)
        }
        let ste = StreamTableEntry.nested(contextPtr: cdIPA, vmid: vmid, s2TTB: PhysicalAddress(stage2.root),
                                          s2Geometry: stage2.geometry, outputSize: oas)
        try installSTE(ste, streamID: streamID, smmu: index)
        return NestedSetup(streamID: streamID, vmid: vmid, asid: asid, stage2: stage2, stage1: stage1,
                           contextDescriptorIPA: cdIPA, guestRAM: guestRAM)
    }
}
