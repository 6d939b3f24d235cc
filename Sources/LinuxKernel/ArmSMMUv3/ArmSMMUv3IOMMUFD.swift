import Bus
import SMMUv3

/// drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-iommufd.c (v6.15): the driver side of iommufd
/// nesting. A VM's guest owns stage 1 — its STE words (through a nested domain) and the CD and
/// tables they point to, all in guest memory (IPAs) — while the host keeps stage 2 (the nest
/// parent) and with it the VMID. Later kernels renamed `arm_vsmmu_alloc` to
/// `arm_vsmmu_init` + `arm_smmu_get_viommu_size`; the checks are the same.

/// `struct arm_vsmmu`: the vIOMMU's SMMU, its stage-2 parent and the VMID taken from it.
public final class ArmVSMMU {
    public unowned(safe) let driver: ArmSMMUv3Driver
    /// `vsmmu->s2_parent`.
    public let s2Parent: ArmSMMUv3Domain
    public let parentDomain: IOMMUDomain
    /// `vsmmu->vmid = s2_parent->s2_cfg.vmid` ("FIXME Move VMID allocation from the S2 domain
    /// allocation to here").
    public let vmid: VMID
    /// `vsmmu->core`: iommufd's vIOMMU (virtual IDs, event queues).
    public internal(set) weak var core: IOMMUFDVIOMMU?

    init(driver: ArmSMMUv3Driver, s2Parent: ArmSMMUv3Domain, parentDomain: IOMMUDomain, vmid: VMID) {
        self.driver = driver
        self.s2Parent = s2Parent
        self.parentDomain = parentDomain
        self.vmid = vmid
    }

    /// `arm_vsmmu_alloc_domain_nested(viommu, flags, user_data)`: flags → EOPNOTSUPP; the vSTE
    /// validated (`arm_smmu_validate_vste`); a NESTED domain keeping ste[0] and ste[1] without
    /// EATS, and whether the guest asked for ATS.
    public func allocDomainNested(flags: UInt32, ste: [UInt64]) throws(Errno) -> IOMMUDomain {
        guard flags == 0 else { throw .EOPNOTSUPP }
        guard ste.count == 2 else { throw .EINVAL }
        var words = ste
        let enableATS = try ArmSMMUv3Nesting.validateVSTE(&words)
        let nested = ArmSMMUv3NestedDomain(vsmmu: self, ste: (words[0], words[1] & ~ArmSMMUv3Nesting.ste1EATS), enableATS: enableATS)
        let domain = IOMMUDomain(type: .nested, driver: driver, operations: nil, pageSizeBitmap: 0, id: driver.kernel.makeObjectID())
        domain.driverData = nested
        return domain
    }

    /// `arm_vsmmu_cache_invalidate(viommu, array)`: each 2-word command is converted in place
    /// (`arm_vsmmu_convert_user_cmd`) and issued in batches of CMDQ_BATCH_ENTRIES − 1 (63) with a
    /// CMD_SYNC each (`arm_smmu_cmdq_issue_cmdlist(…, sync=true)`). A command that cannot be
    /// converted stops the loop with EIO: the converted commands of the current, unsent batch
    /// are dropped, and `done` (entry_num) is the failing command's index. A submission error
    /// leaves `done` one short of the batch end (Linux's `cur--`).
    public func cacheInvalidate(_ commands: [(UInt64, UInt64)], done: inout Int) throws(Errno) {
        var batch: [(UInt64, UInt64)] = []
        var cur = 0
        done = 0
        while cur < commands.count {
            guard let converted = convertUserCommand(commands[cur]) else {
                done = cur
                throw .EIO
            }
            batch.append(converted)
            cur += 1
            if cur != commands.count && batch.count != ArmSMMUv3Driver.batchEntries - 1 { continue }
            do throws(Errno) {
                try driver.issueRawCommandList(batch, sync: true)
            } catch {
                done = cur - 1
                throw error
            }
            batch.removeAll(keepingCapacity: true)
        }
        done = cur
    }

    /// `arm_vsmmu_convert_user_cmd`: TLBI_NSNH_ALL → TLBI_NH_ALL with the VMID (word 1 zeroed);
    /// TLBI_NH_VA / NH_VAA / NH_ALL / NH_ASID keep their fields with the VMID field [47:32]
    /// forced to the vIOMMU's; ATC_INV, CFGI_CD, CFGI_CD_ALL have their StreamID field [63:32]
    /// translated from the vSID through the vDEVICEs (an unknown vSID → nil, EIO); every other
    /// opcode → nil (EIO): a guest cannot reach the STE cache, stage 2 or EL2 this way.
    func convertUserCommand(_ command: (UInt64, UInt64)) -> (UInt64, UInt64)? {
        var (w0, w1) = command
        let vmidField = UInt64(vmid.rawValue) << 32
        switch UInt8(truncatingIfNeeded: w0) {
        case CommandOpcode.tlbiNSNHAll.rawValue:
            w0 = UInt64(CommandOpcode.tlbiNHAll.rawValue) | vmidField
            w1 = 0
        case CommandOpcode.tlbiNHVA.rawValue, CommandOpcode.tlbiNHVAA.rawValue,
             CommandOpcode.tlbiNHAll.rawValue, CommandOpcode.tlbiNHASID.rawValue:
            w0 = (w0 & ~(UInt64(0xFFFF) << 32)) | vmidField
        case CommandOpcode.atcInvalidate.rawValue, CommandOpcode.cfgiCD.rawValue, CommandOpcode.cfgiCDAll.rawValue:
            guard let sid = physicalStreamID(virtual: w0 >> 32) else { return nil }
            w0 = (w0 & 0xFFFF_FFFF) | (UInt64(sid.rawValue) << 32)
        default:
            return nil
        }
        return (w0, w1)
    }

    /// `arm_vsmmu_vsid_to_sid`: the vDEVICE's device's first StreamID ("iommufd only supports
    /// PCI device that has one SID").
    func physicalStreamID(virtual vsid: UInt64) -> StreamID? {
        guard let core, let device = core.findDevice(virtualID: vsid),
              let master = device.iommu?.driverData as? ArmSMMUv3Master else { return nil }
        return master.streamIDs.first
    }
}

/// `struct arm_smmu_nested_domain`: the guest's STE words (validated) on a vSMMU.
public final class ArmSMMUv3NestedDomain {
    public let vsmmu: ArmVSMMU
    /// `ste[2]`, EATS cleared.
    public let ste: (UInt64, UInt64)
    /// `enable_ats`: the guest's EATS was TRANS on an S1 vSTE.
    public let enableATS: Bool

    init(vsmmu: ArmVSMMU, ste: (UInt64, UInt64), enableATS: Bool) {
        self.vsmmu = vsmmu
        self.ste = ste
        self.enableATS = enableATS
    }
}

/// `struct arm_smmu_vmaster`: a master attached to a translating nested domain knows its vSID,
/// so its stage-1 events can be reported to the VM.
public struct ArmSMMUv3VMaster {
    public let vsmmu: ArmVSMMU
    public let virtualStreamID: UInt64
}

/// The vSTE rules and the physical STE a nested domain becomes.
public enum ArmSMMUv3Nesting {
    /// STRTAB_STE_0_NESTING_ALLOWED (arm-smmu-v3.h): V [0], CFG [3:1], S1FMT [5:4],
    /// S1CTXPTR [51:6], S1CDMAX [63:59].
    public static let ste0Allowed: UInt64 = 1 | (UInt64(0b111) << 1) | (UInt64(0b11) << 4)
        | (UInt64.lowMask(46) << 6) | (UInt64(0x1F) << 59)
    /// STRTAB_STE_1_NESTING_ALLOWED: S1DSS [1:0], S1CIR [3:2], S1COR [5:4], S1CSH [7:6],
    /// S1STALLD [27], EATS [29:28].
    public static let ste1Allowed: UInt64 = 0xFF | (1 << 27) | ste1EATS
    /// STRTAB_STE_1_EATS.
    public static let ste1EATS: UInt64 = UInt64(0b11) << 28
    /// STRTAB_STE_1_MEV: "Merge events for DoS mitigations on eventq".
    public static let ste1MEV: UInt64 = 1 << 19

    /// `arm_smmu_validate_vste`: a vSTE with V = 0 becomes all zeros (valid input: a non-valid
    /// STE); any bit outside the allowed masks → EIO ("EIO is reserved for invalid STE
    /// data"); Config other than abort (0b000), bypass (0b100) or S1 translate (0b101) → EIO;
    /// EATS other than ABT (0) or TRANS (1) → EIO. EATS is cleared from the words. Returns
    /// `enable_ats` (TRANS on an S1 vSTE).
    public static func validateVSTE(_ ste: inout [UInt64]) throws(Errno) -> Bool {
        guard ste.count == 2 else { throw .EINVAL }
        guard ste[0] & 1 != 0 else {
            ste = [0, 0]
            return false
        }
        if ste[0] & ~ste0Allowed != 0 || ste[1] & ~ste1Allowed != 0 { throw .EIO }
        let cfg = ste[0].bits(3, 1)
        guard cfg == StreamConfig.abort.rawValue || cfg == StreamConfig.bypass.rawValue || cfg == StreamConfig.stage1.rawValue else {
            throw .EIO
        }
        let eats = ste[1].bits(29, 28)
        ste[1] &= ~ste1EATS
        guard eats == 0 || eats == 1 else { throw .EIO }
        return cfg == StreamConfig.stage1.rawValue && eats == 1
    }

    /// `arm_smmu_make_nested_domain_ste`: a non-valid vSTE → abort (Linux's comment hopes a
    /// C_BAD_STE reaches the guest, but a valid STE with Config = abort terminates traffic
    /// without an event, SMMUv3 §5.2 Config — in the model as on hardware);
    /// S1 translate → `arm_smmu_make_nested_cd_table_ste`; bypass → the parent's S2-only STE
    /// (`arm_smmu_make_s2_domain_ste`); abort → abort STE. ATS is not modelled: `ats_enabled`
    /// is false.
    public static func physicalSTE(for nested: ArmSMMUv3NestedDomain, features: ArmSMMUv3Features,
                                   configuration: KernelConfiguration) -> StreamTableEntry {
        var cfg = nested.ste.0.bits(3, 1)
        if nested.ste.0 & 1 == 0 { cfg = StreamConfig.abort.rawValue }
        let vsmmu = nested.vsmmu
        switch cfg {
        case StreamConfig.stage1.rawValue:
            return nestedCDTableSTE(vste: nested.ste, vmid: vsmmu.vmid, parent: vsmmu.s2Parent.pageTable,
                                    features: features, configuration: configuration)
        case StreamConfig.bypass.rawValue:
            return ArmSMMUv3Entries.stage2STE(vmid: vsmmu.vmid, table: vsmmu.s2Parent.pageTable, features: features)
        default:
            return ArmSMMUv3Entries.abortSTE()
        }
    }

    /// `arm_smmu_make_nested_cd_table_ste(target, master, nested_domain, ats_enabled)`: the
    /// parent's S2 STE (`arm_smmu_make_s2_domain_ste` with `ats`), then word 0 = V | Config =
    /// nested | the guest's word 0 without Config; word 1 |= the guest's word 1 (EATS already
    /// cleared by `arm_smmu_validate_vste`), and MEV ("Merge events for DoS mitigations on
    /// eventq") with `KernelBehaviour.nestedSTEMergeEvents` (commit da0c56520e88, v6.15).
    public static func nestedCDTableSTE(vste: (UInt64, UInt64), vmid: VMID, parent: IOPageTableARM,
                                        features: ArmSMMUv3Features, configuration: KernelConfiguration,
                                        ats: Bool = false) -> StreamTableEntry {
        nestedCDTableSTE(vste: vste, vmid: vmid, s2TTB: parent.root, s2Geometry: parent.geometry, outputSize: parent.outputSize,
                         features: features, mergeEvents: configuration.has(.nestedSTEMergeEvents), ats: ats)
    }

    /// `arm_smmu_make_nested_cd_table_ste` with the parent's S2 as primitives (VTTBR, walk, PS)
    /// and `mergeEvents` standing for `KernelBehaviour.nestedSTEMergeEvents`, so bring-up code
    /// that writes its own stage-2 tables builds the same nested STE.
    public static func nestedCDTableSTE(vste: (UInt64, UInt64), vmid: VMID, s2TTB: PhysicalAddress, s2Geometry: WalkGeometry,
                                        outputSize: OutputAddressSize, features: ArmSMMUv3Features, mergeEvents: Bool,
                                        ats: Bool = false) -> StreamTableEntry {
        var ste = ArmSMMUv3Entries.stage2STE(vmid: vmid, ttb: s2TTB, geometry: s2Geometry, outputSize: outputSize,
                                             features: features, ats: ats)
        ste.dw0 = 1 | (StreamConfig.nested.rawValue << 1)
        ste.dw0 |= vste.0 & ~(UInt64(0b111) << 1)
        ste.dw1 |= vste.1
        if mergeEvents { ste.dw1 |= ste1MEV }
        return ste
    }
}

extension ArmSMMUv3Driver {
    /// `arm_smmu_get_viommu_size` (the v6.15 `arm_vsmmu_alloc` checks): the SMMU must nest
    /// (ARM_SMMU_FEAT_NESTING = both stages), and either the master is fully coherent
    /// (`arm_smmu_master_canwbs`: the model's PCIe is coherent with a coherent SMMU) or the SMMU
    /// has S2FWB — "Must support some way to prevent the VM from bypassing the cache". Only
    /// IOMMU_VIOMMU_TYPE_ARM_SMMUV3 (no implementation-specific types).
    ///
    /// `arm_smmu_master_canwbs` is the fwspec's `IOMMU_FWSPEC_PCI_RC_CANWBS`, which only the
    /// ACPI path sets (`iort_iommu_configure_id`, from the IORT root complex's memory access
    /// flag CANWBS); on ACPI that flag decides. On a device-tree host Linux never sets it, so
    /// nesting there needs S2FWB; the model does not decode S2FWB (IDR3.FWB) and keeps its
    /// approximation for DT: a coherent SMMU stands for both.
    public func viommuSupported(for device: Device, type: IOMMUVIOMMUType) -> Bool {
        guard features.nesting, type == .armSMMUv3 else { return false }
        if kernel.topology.iort != nil { return device.iommu?.flags.contains(.pciRCCANWBS) == true }
        return features.coherent
    }

    /// `arm_vsmmu_alloc` / `arm_vsmmu_init`: the parent must be this SMMU's stage-2 domain
    /// (EINVAL otherwise); the vSMMU takes its VMID.
    public func vsmmuAlloc(parent: IOMMUDomain, type: IOMMUVIOMMUType) throws(Errno) -> ArmVSMMU {
        guard type == .armSMMUv3 else { throw .EOPNOTSUPP }
        guard let s2 = parent.driverData as? ArmSMMUv3Domain, s2.driver === self, case .stage2(let vmid) = s2.stage else {
            throw .EINVAL
        }
        return ArmVSMMU(driver: self, s2Parent: s2, parentDomain: parent, vmid: vmid)
    }

    /// `arm_smmu_attach_dev_nested`: a vSMMU of another SMMU → EINVAL; with
    /// `KernelBehaviour.nestedVMaster` (v6.15) the vmaster prepared
    /// (`arm_smmu_attach_prepare_vmaster`: `iommufd_viommu_get_vdev_id` finds the device's
    /// vDEVICE, else its ENOENT is returned — except, with `KernelBehaviour.nestedGBPAAttach`,
    /// for a vSTE whose Config field is abort or bypass, which attaches without a vmaster and so
    /// reports no vevents); the physical STE installed; the vmaster committed (replacing any
    /// previous one).
    func attachNested(_ nested: ArmSMMUv3NestedDomain, master: ArmSMMUv3Master) throws(Errno) {
        guard nested.vsmmu.driver === self else { throw .EINVAL }
        let cfg = nested.ste.0.bits(3, 1)
        var vmaster: ArmSMMUv3VMaster?
        if !kernel.configuration.has(.nestedVMaster) {
            // v6.14: no vmaster, no vDEVICE needed, no event forwarding.
        } else if let vsid = nested.vsmmu.core?.virtualID(of: master.device) {
            vmaster = ArmSMMUv3VMaster(vsmmu: nested.vsmmu, virtualStreamID: vsid)
        } else if !(kernel.configuration.has(.nestedGBPAAttach)
                    && (cfg == StreamConfig.abort.rawValue || cfg == StreamConfig.bypass.rawValue)) {
            let sids = master.streamIDs.map { Hex.format(UInt64($0.rawValue), minDigits: 1) }.joined(separator: ", ")
            throw kernel.refusals.refuse(.ENOENT, in: "arm_smmu_attach_prepare_vmaster", for: "\(master.device.name) (StreamID \(sids))",
                because: "iommufd_viommu_get_vdev_id finds no vDEVICE for it on the vIOMMU, so the nested attach is refused and the StreamID keeps no usable configuration")
        }
        try installSTE(ArmSMMUv3Nesting.physicalSTE(for: nested, features: features, configuration: kernel.configuration), for: master)
        master.vmaster = vmaster
    }

    /// `arm_smmu_handle_event` (v6.15) for a non-stalling event: only C_BAD_STE,
    /// F_STREAM_DISABLED, C_BAD_SUBSTREAMID, C_BAD_CD and F_TRANSLATION/F_ADDR_SIZE/F_ACCESS/
    /// F_PERMISSION are handled; the StreamID must belong to a master (EINVAL); a master with a
    /// vmaster and a stage-1 event (S2 = 0) goes to the VM (`arm_vmaster_report_event`: word 0's
    /// StreamID [63:32] replaced by the vSID, the other words unchanged,
    /// `iommufd_viommu_report_event(…, IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, …)`); everything else is
    /// EOPNOTSUPP, and the caller dumps it.
    func handleEvent(_ record: EventRecord, words: [UInt64]) throws(Errno) {
        switch record.eventID {
        case 0x04, 0x06, 0x08, 0x0A, 0x10, 0x11, 0x12, 0x13: break
        default: throw .EOPNOTSUPP
        }
        guard words.count == 4, !record.stall else { throw .EOPNOTSUPP }
        guard let master = streams[record.streamID.rawValue] else { throw .EINVAL }
        guard let vmaster = master.vmaster, !words[1].bit(39) else { throw .EOPNOTSUPP }
        guard let core = vmaster.vsmmu.core else { throw .EOPNOTSUPP }
        var event = words
        event[0] = (event[0] & 0xFFFF_FFFF) | ((vmaster.virtualStreamID & 0xFFFF_FFFF) << 32)
        try core.reportEvent(type: .armSMMUv3, data: event)
    }
}

extension ArmSMMUv3Driver {
    /// `arm_smmu_hw_info`: IDR0–IDR5, IIDR and AIDR read from the SMMU's registers
    /// (`readl_relaxed(smmu->base + ARM_SMMU_IDR0 + i * 4)`).
    func hwInfo() throws(Errno) -> IOMMUHWInfoARMSMMUv3 {
        var idr: [UInt32] = []
        for i in 0..<6 { idr.append(try read32(SMMURegisterOffset.idr0 &+ UInt64(i) * 4)) }
        return IOMMUHWInfoARMSMMUv3(idr: idr, iidr: try read32(SMMURegisterOffset.iidr), aidr: try read32(SMMURegisterOffset.aidr))
    }
}
