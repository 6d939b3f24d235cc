import Bus
import Firmware
import SMMUv2

/// drivers/iommu/arm/arm-smmu/arm-smmu.c (v6.14-v7.0): one instance per Arm SMMU node the
/// driver binds (`struct arm_smmu_device`): version 2 (MMU-500, `arm,smmu-v2`) or version 1
/// (`arm,smmu-v1`, `arm,mmu-400`: ARM_SMMU_V1; `arm,mmu-401`: ARM_SMMU_V1_64K), the version from
/// the match data or the IORT model (`features.version`). It reaches the SMMU only through its
/// registers (`kernel.mmio`): global space 0 at the base, global space 1 one register page up,
/// context bank n at page `numpage + n` (`ARM_SMMU_CB`).
///
/// Probe is `arm_smmu_device_probe`: `arm_smmu_device_cfg_probe` (IDR0-2 → `features`), the
/// stream map tables (`smmu->smrs`, `smmu->s2crs` initialised to `s2cr_init_val`: fault, since
/// CONFIG_ARM_SMMU_DISABLE_BYPASS_BY_DEFAULT=y makes `disable_bypass` true), then
/// `arm_smmu_device_reset` and `arm_smmu_test_smr_masks`.
///
/// Nesting: the SMMUv2 architecture has nested context banks (CBAR.TYPE 3), but Linux's driver
/// offers none: arm-smmu.c's `arm_smmu_ops` have `domain_alloc_paging` only (no
/// `domain_alloc_paging_flags`, so IOMMU_HWPT_ALLOC_NEST_PARENT is refused with -EOPNOTSUPP by
/// `iommufd_hwpt_paging_alloc`), no `viommu_alloc`/`get_viommu_size` and no `hw_info`, and
/// include/uapi/linux/iommufd.h defines no IOMMU_HWPT_DATA type for it (only
/// IOMMU_HWPT_DATA_VTD_S1 and IOMMU_HWPT_DATA_ARM_SMMUV3). The old `enable_nesting` op
/// (`arm_smmu_enable_nesting`, ARM_SMMU_DOMAIN_NESTED, which only forced stage 2 for
/// VFIO_TYPE1_NESTING_IOMMU) was removed with that VFIO type in 2024, before v6.14 ("iommu:
/// Remove iommu_domain_ops::enable_nesting"). The model refuses the same way (`allocatePagingDomain`).
public final class ArmSMMUDriver: IOMMUDriver {
    unowned(safe) let kernel: LinuxKernel
    public let index: Int
    public let node: IOMMUDescription
    /// Position of `node` in `topology.otherIOMMUs`.
    public let nodeIndex: Int
    public var name: String { "arm-smmu.\(index)" }
    public internal(set) var features = ArmSMMUFeatures()
    /// `smmu->version`: from `arm_smmu_of_match` or `acpi_smmu_get_data`.
    public var version: ArmSMMUVersion { node.armSMMUVersion ?? .v2 }
    /// `smmu->num_context_irqs`: the node's interrupts less its `#global-interrupts` (at least
    /// one, else `arm_smmu_device_probe` fails: "found %d interrupts but expected at least
    /// %d"); a node that lists none counts as one context interrupt here. Version 2 then uses
    /// one per bank.
    var contextInterrupts: Int {
        guard let count = node.interruptCount else { return 1 }
        return max(1, count - Int(node.globalInterrupts ?? 0))
    }
    /// `smmu->irptndx`: the version 1 round-robin of context interrupts
    /// (`atomic_inc_return(&smmu->irptndx) % num_context_irqs`).
    var irptndxCounter = 0

    /// `struct arm_smmu_smr` / `struct arm_smmu_s2cr`, one per stream map entry.
    public struct StreamMatchRegister: Hashable, Sendable {
        public var id: UInt16 = 0
        public var mask: UInt16 = 0
        public var valid = false
    }
    public struct StreamToContext: Hashable, Sendable {
        public var type: UInt32
        public var cbndx: UInt8 = 0
        public var privcfg: UInt32 = 0
        /// Masters sharing the entry.
        public var count = 0
    }
    /// `smmu->smrs` (nil without stream matching) and `smmu->s2crs`.
    public internal(set) var smrs: [StreamMatchRegister]?
    public internal(set) var s2crs: [StreamToContext] = []
    /// `smmu->context_map`: which context banks a domain holds.
    public internal(set) var contextMap: [Bool] = []

    /// `disable_bypass` (CONFIG_ARM_SMMU_DISABLE_BYPASS_BY_DEFAULT=y in arm64 defconfig):
    /// unattached streams fault and sCR0.USFCFG is set.
    public let disableBypass = true
    /// `s2cr_init_val`.
    var initialS2CR: StreamToContext { StreamToContext(type: disableBypass ? SMMUv2Field.s2crTypeFault : SMMUv2Field.s2crTypeBypass) }

    /// Made on first use (`StaticIOMMUDomains`).
    public var identityDomain: IOMMUDomain { staticDomains.domain(.identity, of: self, kernel: kernel) }
    public var blockedDomain: IOMMUDomain { staticDomains.domain(.blocked, of: self, kernel: kernel) }
    var staticDomains = StaticIOMMUDomains()

    init(kernel: LinuxKernel, index: Int, node: IOMMUDescription, nodeIndex: Int) {
        self.kernel = kernel
        self.index = index
        self.node = node
        self.nodeIndex = nodeIndex
    }

    func log(_ message: String) { kernel.log.log("arm-smmu", "\(node.path): \(message)") }

    // MARK: Registers

    var base: UInt64 { node.regions.first?.base.rawValue ?? 0 }
    var pageSize: UInt64 { UInt64(1) << UInt64(features.pageShift) }
    func gr0(_ offset: UInt64) -> PhysicalAddress { PhysicalAddress(base &+ offset) }
    func gr1(_ offset: UInt64) -> PhysicalAddress { PhysicalAddress(base &+ pageSize &+ offset) }
    /// `ARM_SMMU_CB(smmu, n)` = page `numpage + n`.
    func cb(_ n: Int, _ offset: UInt64) -> PhysicalAddress {
        PhysicalAddress(base &+ (features.numPage &+ UInt64(n)) &* pageSize &+ offset)
    }
    func read32(_ address: PhysicalAddress) throws(Errno) -> UInt32 { try kernel.mmio.read32(address) }
    func write32(_ address: PhysicalAddress, _ value: UInt32) throws(Errno) { try kernel.mmio.write32(address, value) }
    func write64(_ address: PhysicalAddress, _ value: UInt64) throws(Errno) { try kernel.mmio.write64(address, value) }

    // MARK: Probe

    /// `arm_smmu_device_probe` → `arm_smmu_device_cfg_probe`, stream map init, reset, SMR mask test.
    func probe() throws(Errno) {
        guard let region = node.regions.first else { throw .ENODEV }
        let idr0 = try read32(gr0(SMMUv2Register.idr0))
        let idr1 = try read32(gr0(SMMUv2Register.idr1))
        let idr2 = try read32(gr0(SMMUv2Register.idr2))
        switch ArmSMMUFeatures.decode(idr0: idr0, idr1: idr1, idr2: idr2, version: version) {
        case .success(let decoded): features = decoded
        case .failure(let error):
            log(error.description)
            throw .ENODEV
        }
        log("probing hardware configuration...")
        log("SMMUv\(version.isVersion1 ? 1 : 2) with:")
        if features.stage1 { log("\tstage 1 translation") }
        if features.stage2 { log("\tstage 2 translation") }
        if features.nested { log("\tnested translation") }
        if features.translationOps { log("\taddress translation ops") }
        // "SMMU address space size (0x%x) differs from mapped region size (0x%x)!"
        let expected = 2 &* features.numPage << UInt64(features.pageShift)
        if expected != region.size {
            log("SMMU address space size (0x\(String(expected, radix: 16))) differs from mapped region size (0x\(String(region.size, radix: 16)))!")
        }
        if features.streamMatching {
            smrs = Array(repeating: StreamMatchRegister(), count: features.mappingGroups)
            log("\tstream matching with \(features.mappingGroups) register groups")
        }
        s2crs = Array(repeating: initialS2CR, count: features.mappingGroups)
        contextMap = Array(repeating: false, count: features.contextBanks)
        log("\t\(features.contextBanks) context banks (\(features.stage2ContextBanks) stage-2 only)")
        let sizes = String(features.pageSizeBitmap, radix: 16)
        log("\tSupported page sizes: 0x\(String(repeating: "0", count: max(0, 8 - sizes.count)))\(sizes)")
        if features.stage1 { log("\tStage-1: \(features.vaSize)-bit VA -> \(features.ipaSize)-bit IPA") }
        if features.stage2 { log("\tStage-2: \(features.ipaSize)-bit IPA -> \(features.paSize)-bit PA") }
        guard features.pageSizeBitmap != 0 else {
            log("\tno supported page table formats!")
            throw .ENODEV
        }
        try reset()
        try testSMRMasks()
    }

    /// `arm_smmu_write_smr`: ID[15:0] | MASK[31:16] | VALID[31] (no extended StreamIDs).
    func writeSMR(_ idx: Int) throws(Errno) {
        guard let smrs, idx < smrs.count else { return }
        let smr = smrs[idx]
        var value = UInt32(smr.id) | UInt32(smr.mask) << 16
        if smr.valid { value |= 1 << 31 }
        try write32(gr0(SMMUv2Register.smrBase &+ UInt64(idx) * 4), value)
    }

    /// `arm_smmu_write_s2cr`: TYPE[17:16] | CBNDX[7:0] | PRIVCFG[25:24].
    func writeS2CR(_ idx: Int) throws(Errno) {
        guard idx < s2crs.count else { return }
        let s2cr = s2crs[idx]
        let value = s2cr.type << 16 | UInt32(s2cr.cbndx) | s2cr.privcfg << 24
        try write32(gr0(SMMUv2Register.s2crBase &+ UInt64(idx) * 4), value)
    }

    /// `arm_smmu_write_sme`: S2CR first, then the SMR.
    func writeSME(_ idx: Int) throws(Errno) {
        try writeS2CR(idx)
        try writeSMR(idx)
    }

    /// `arm_smmu_device_reset`, with `arm_mmu500_reset` (arm-smmu-impl.c) for an MMU-500.
    func reset() throws(Errno) {
        let gfsr = try read32(gr0(SMMUv2Register.sGFSR))
        try write32(gr0(SMMUv2Register.sGFSR), gfsr)
        for idx in 0..<features.mappingGroups { try writeSME(idx) }
        for n in 0..<features.contextBanks {
            try writeContextBank(n, context: nil)
            try write32(cb(n, SMMUv2Register.cbFSR), ArmSMMUDriver.fsrFault)
        }
        try write32(gr0(SMMUv2Register.tlbiAllH), 0)
        try write32(gr0(SMMUv2Register.tlbiAllNSNH), 0)
        var scr0 = try read32(gr0(SMMUv2Register.sCR0))
        scr0 |= 1 << 1 | 1 << 2 | 1 << 4 | 1 << 5            // GFRE, GFIE, GCFGFRE, GCFGFIE
        scr0 |= 1 << 11 | 1 << 12                             // VMIDPNE, PTM: no TLB broadcast
        scr0 &= ~1                                            // CLIENTPD
        if disableBypass { scr0 |= 1 << 10 } else { scr0 &= ~(1 << 10) }   // USFCFG
        scr0 &= ~(1 << 13)                                    // FB
        scr0 &= ~(3 << 14)                                    // BSU
        if features.vmid16 { scr0 |= 1 << 31 }
        if node.compatible.contains("arm,mmu-500") { try mmu500Reset() }
        try syncGlobal()
        try write32(gr0(SMMUv2Register.sCR0), scr0)
    }

    /// `arm_mmu500_reset`: from r2p0 clear sACR.CACHE_LOCK[26], set SMTNMB_TLBEN[8] and
    /// S2CRB_TLBEN[10]; clear every bank's ACTLR.CPRE[1] (errata 841119, 826419).
    func mmu500Reset() throws(Errno) {
        let idr7 = try read32(gr0(SMMUv2Register.idr7))
        var acr = try read32(gr0(SMMUv2Register.sACR))
        if idr7.bits(7, 4) >= 2 { acr &= ~(1 << 26) }
        acr |= 1 << 8 | 1 << 10
        try write32(gr0(SMMUv2Register.sACR), acr)
        for n in 0..<features.contextBanks {
            let actlr = try read32(cb(n, SMMUv2Register.cbACTLR))
            try write32(cb(n, SMMUv2Register.cbACTLR), actlr & ~(1 << 1))
        }
    }

    static let pollLimit = 64
    /// ARM_SMMU_CB_FSR_FAULT: MULTI | SS | UUT | ASF | TLBLKF | TLBMCF | EF | PF | AFF | TF.
    static let fsrFault: UInt32 = 1 << 31 | 1 << 30 | 0x1FE

    /// `arm_smmu_tlb_sync_global` → `__arm_smmu_tlb_sync(sTLBGSYNC, sTLBGSTATUS)`: write, poll
    /// GSACTIVE ("TLB sync timed out -- SMMU may be deadlocked").
    func syncGlobal() throws(Errno) {
        try write32(gr0(SMMUv2Register.sTLBGSYNC), 0)
        for _ in 0..<Self.pollLimit where try read32(gr0(SMMUv2Register.sTLBGSTATUS)) & 1 == 0 { return }
        log("TLB sync timed out -- SMMU may be deadlocked")
        throw .ETIMEDOUT
    }

    /// `arm_smmu_tlb_sync_context`: CB_TLBSYNC, poll CB_TLBSTATUS.SACTIVE.
    func syncContext(_ n: Int) throws(Errno) {
        try write32(cb(n, SMMUv2Register.cbTLBSYNC), 0)
        for _ in 0..<Self.pollLimit where try read32(cb(n, SMMUv2Register.cbTLBSTATUS)) & 1 == 0 { return }
        log("TLB sync timed out -- SMMU may be deadlocked")
        throw .ETIMEDOUT
    }

    /// `arm_smmu_test_smr_masks`: with a free SMR, write all ID bits and read back which stick
    /// (`streamid_mask`), then the same for MASK (`smr_mask_mask`).
    func testSMRMasks() throws(Errno) {
        guard let smrs, let free = smrs.firstIndex(where: { !$0.valid }) else { return }
        let address = gr0(SMMUv2Register.smrBase &+ UInt64(free) * 4)
        try write32(address, features.streamIDMask & 0xFFFF)
        features.streamIDMask = try read32(address) & 0xFFFF
        try write32(address, (features.streamIDMask & 0xFFFF) << 16)
        features.smrMaskMask = (try read32(address) >> 16) & 0xFFFF
        try writeSMR(free)
    }

    // MARK: IOMMUDriver

    /// The page sizes of a paging domain (io-pgtable restricted for the kernel's PAGE_SIZE).
    public var pageSizeBitmap: UInt64 {
        IOPageTableARM.restrictPageSizes(features.pageSizeBitmap, kernelPageSize: kernel.pageSize,
                                         inputBits: features.vaSize, outputBits: features.ipaSize).pageSizes
    }

    /// `def_domain_type`: `arm_smmu_def_domain_type` forces IDENTITY only for an impl's list of
    /// clients (Qualcomm); none here.
    public func defaultDomainType(for device: Device) -> IOMMUDomainType? { nil }

    /// `arm_smmu_get_resv_regions`: the SW_MSI window MSI_IOVA_BASE 0x0800_0000, length
    /// MSI_IOVA_LENGTH 0x10_0000 (arm-smmu.c defines the same pair as arm-smmu-v3.h), prot
    /// IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO, then `iommu_dma_get_resv_regions` (the device
    /// tree's `iommu-addresses` reserved regions through `of_iommu_get_resv_regions`).
    public func reservedRegions(for device: Device) -> [ReservedRegion] {
        let prot: IOMMUProtection = [.write, .noExec, .mmio]
        var regions = [ReservedRegion(start: ArmSMMUv3Driver.msiIOVABase, length: ArmSMMUv3Driver.msiIOVALength, protection: prot, type: .swMSI)]
        regions += kernel.iommu.deviceTreeReservedRegions(for: device)
        return regions
    }
}
