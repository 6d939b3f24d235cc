import Bus

/// MMIO access to the register file (§6.2, §6.3): `SMMURegisterFile` stores, this SMMU reacts
/// to what a write asks (`SMMURegisterWriteEffects`).
extension SMMUv3 {
    public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
        registerFile.read(offset: offset, size: size)
    }

    public func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
        apply(registerFile.write(offset: offset, size: size, value: value))
    }

    /// SMMU_AIDR (§6.3.8), as the configuration advertises it (`SMMUConfiguration.aidr`).
    public var aidr: UInt32 { configuration.aidr }

    /// - STRTAB_BASE/CFG: the translator's stream table follows (§6.3.24–25).
    /// - CR2: RECINVSID decides whether C_BAD_STREAMID is recorded (§6.3.12).
    /// - CMDQ_PROD written, CMDQEN set, CMDQ_ERR acknowledged: commands are consumed.
    func apply(_ effects: SMMURegisterWriteEffects) {
        if effects.contains(.streamTable) { updateTranslatorStreamTable() }
        if effects.contains(.control2) { translator.recordInvalidStreamIDs = registers.cr2.bit(1) }
        if effects.contains(.commandQueue) { consumeCommands() }
    }
}
