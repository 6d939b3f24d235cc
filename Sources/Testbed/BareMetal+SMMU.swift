import Bus
import Machine
import SMMUv3

/// SMMU bring-up in the order of SMMUv3 §3.11 / Linux `arm_smmu_device_reset` (docs/hardware.md
/// §SMMUv3 bring-up): queues and stream table programmed with the SMMU disabled, CFGI_ALL + TLBI_NSNH_ALL +
/// CMD_SYNC through the command queue, then SMMUEN.
extension BareMetal {
    /// Where one SMMU's structures live after `resetSMMU`.
    public struct SMMULayout: Hashable, Sendable {
        public var streamTable: PhysicalAddress
        public var streamTableLog2Size: Int
        public var commandQueue: PhysicalAddress
        public var commandQueueLog2Size: Int
        public var eventQueue: PhysicalAddress
        public var eventQueueLog2Size: Int
    }

    /// Programs SMMU `index` with a linear stream table of 2^`streamIDBits` STEs (all V=0, so
    /// every stream aborts with C_BAD_STE until software installs one), an 8-entry-per-page
    /// command queue and an event queue, and enables it.
    @discardableResult
    public func resetSMMU(_ index: Int = 0, streamIDBits: Int = 16) throws(Failure) -> SMMULayout {
        guard index < machine.smmus.count, let base = smmuBase(index) else { throw .noSuchComponent("SMMU \(index)") }
        let r = SMMURegisterOffset.self
        let steBytes = UInt64(64) << UInt64(streamIDBits)
        let layout = SMMULayout(
            streamTable: try allocate(steBytes, alignment: max(steBytes, 64)),
            streamTableLog2Size: streamIDBits,
            commandQueue: try allocate(4096), commandQueueLog2Size: 8,
            eventQueue: try allocate(4096), eventQueueLog2Size: 7)
        let allocate = SMMURegisterField.allocateHint
        try write(register(base, r.cr0), 4, 0)
        // CR1: queues and tables Inner Shareable, write-back (Linux's coherent choice).
        try write(register(base, r.cr1), 4, UInt64(SMMUControl1.coherentWriteBack.rawValue))
        // STRTAB_BASE: RA[62] | ADDR[51:6]; STRTAB_BASE_CFG: FMT=0 (linear), LOG2SIZE.
        try write(register(base, r.strtabBase), 8, allocate | layout.streamTable.rawValue)
        try write(register(base, r.strtabBaseCfg), 4, UInt64(streamIDBits))
        try write(register(base, r.cmdqBase), 8, allocate | layout.commandQueue.rawValue | UInt64(layout.commandQueueLog2Size))
        try write(register(base, r.cmdqProd), 4, 0)
        try write(register(base, r.cmdqCons), 4, 0)
        smmuLayouts[index] = layout
        var control: SMMUControl0 = [.commandQueueEnable]
        try write(register(base, r.cr0), 4, UInt64(control.rawValue))
        try submit([.cfgiSTERange(StreamID(0), range: 31), .tlbiNSNHAll, .sync(CommandSync(completionSignal: .none))], smmu: index)
        try write(register(base, r.eventqBase), 8, allocate | layout.eventQueue.rawValue | UInt64(layout.eventQueueLog2Size))
        try write(register(base, r.eventqProd), 4, 0)
        try write(register(base, r.eventqCons), 4, 0)
        control.insert(.eventQueueEnable)
        try write(register(base, r.cr0), 4, UInt64(control.rawValue))
        control.insert(.smmuEnable)
        try write(register(base, r.cr0), 4, UInt64(control.rawValue))
        return layout
    }

    /// Writes `commands` at CMDQ_PROD and advances it; fails if the SMMU stopped on an error.
    public func submit(_ commands: [Command], smmu index: Int = 0) throws(Failure) {
        guard let base = smmuBase(index), let layout = smmuLayouts[index] else { throw .noSuchComponent("SMMU \(index) (reset it first)") }
        let r = SMMURegisterOffset.self
        let geometry = QueueGeometry(log2Size: layout.commandQueueLog2Size)
        var prod = UInt32(truncatingIfNeeded: try read(register(base, r.cmdqProd), 4))
        for command in commands {
            let (w0, w1) = command.encode()
            let slot = UInt64(geometry.index(prod)) * 16
            try write(PhysicalAddress(layout.commandQueue.rawValue &+ slot), 8, w0)
            try write(PhysicalAddress(layout.commandQueue.rawValue &+ slot &+ 8), 8, w1)
            prod = geometry.advanced(prod)
        }
        try write(register(base, r.cmdqProd), 4, UInt64(prod))
        let cons = UInt32(truncatingIfNeeded: try read(register(base, r.cmdqCons), 4))
        if SMMURegisterField.commandError(cons) != CommandErrorCode.none.rawValue { throw .smmuCommandError(cons) }
    }

    /// Writes an STE for `streamID` into the linear stream table, then CFGI_STE + CMD_SYNC so the
    /// SMMU stops using any copy it cached (§4.3.1: the change takes effect only after that).
    public func installSTE(_ ste: StreamTableEntry, streamID: StreamID, smmu index: Int = 0) throws(Failure) {
        guard let layout = smmuLayouts[index] else { throw .noSuchComponent("SMMU \(index) (reset it first)") }
        let at = layout.streamTable.rawValue &+ UInt64(streamID.rawValue) &* 64
        for (i, word) in ste.words.enumerated() { try write(PhysicalAddress(at &+ UInt64(i) * 8), 8, word) }
        try submit([.cfgiSTE(streamID, leaf: true), .sync(CommandSync(completionSignal: .none))], smmu: index)
    }

    /// Gives `streamID` a stage-1 translation: a fresh 4-level 4K table set (48-bit input, as
    /// Linux's io-pgtable-arm picks for the SMMU's default domain), one CD with `asid`, and an
    /// S1-only STE. Returns the builder so callers can map pages.
    public func enableStage1(streamID: StreamID, asid: ASID = ASID(1), granule: Granule = .size4K, inputSize: Int = 48, smmu index: Int = 0) throws(Failure) -> PageTableBuilder {
        let geometry = WalkGeometry(granule: granule, inputSize: inputSize,
                                    startLevel: WalkGeometry.stage1StartLevel(granule: granule, inputSize: inputSize))
        let builder: PageTableBuilder
        do { builder = try PageTableBuilder(stage: .stage1, geometry: geometry, bus: machine.bus, allocator: allocator) } catch { throw .outOfTableMemory }
        let cdAddress = try allocate(64, alignment: 64)
        let oas = index < machine.smmus.count ? machine.smmus[index].translator.configuration.outputAddressSize : .bits48
        let cd = ContextDescriptor.stage1(asid: asid, ttb0: builder.root, geometry: geometry, ips: oas)
        for (i, word) in cd.words.enumerated() { try write(PhysicalAddress(cdAddress.rawValue &+ UInt64(i) * 8), 8, word) }
        try installSTE(.stage1(contextPtr: cdAddress.rawValue), streamID: streamID, smmu: index)
        return builder
    }

    func smmuBase(_ index: Int) -> PhysicalAddress? {
        let enabled = machine.topology.smmus.filter(\.enabled)
        return index < enabled.count ? enabled[index].region.base : nil
    }
}
