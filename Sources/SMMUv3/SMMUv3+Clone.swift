import Bus

/// Copying the SMMU for a forked world. Everything the architecture lets software observe is
/// copied: registers, the stream-table configuration, the configuration caches and the TLB
/// (a stale cached STE or TLB entry answers until it is invalidated, SMMUv3 §16.2, so a copy
/// with empty caches would translate differently), counters and interrupt pulses. Trace and
/// journal are observers and start detached.
extension SMMUTranslator: WorldCloneable {
    public func clone(into map: inout CloneMap) -> SMMUTranslator {
        let bus = map.clone(self.bus)
        if let done = map.copy(of: self) { return done }
        let copy = SMMUTranslator(configuration: configuration, bus: bus, tlbCapacity: tlb.capacity)
        map.record(self, as: copy)
        copy.copyState(of: self)
        return copy
    }

    /// Takes `other`'s state: stream table, caches, TLB and counters (the same capacity).
    func copyState(of other: SMMUTranslator) {
        streamTable = other.streamTable
        recordInvalidStreamIDs = other.recordInvalidStreamIDs
        counters = other.counters
        tlb.copyContents(of: other.tlb)
        streamCache.copyContents(of: other.streamCache)
        contextCache.copyContents(of: other.contextCache)
        hitRoutes.removeAll()   // derived from the caches; rebuilt on the first full translation
    }
}

extension SMMURegisterFile: WorldCloneable {
    public func clone(into map: inout CloneMap) -> SMMURegisterFile {
        let copy = SMMURegisterFile(configuration: configuration, iidr: iidr, state: state)
        copy.consumingCommands = consumingCommands
        return copy
    }
}

extension SMMUv3: WorldCloneable {
    public func clone(into map: inout CloneMap) -> SMMUv3 {
        // The bus lists this SMMU among its devices: cloning the bus may already have copied it.
        let bus = map.clone(self.bus)
        if let done = map.copy(of: self) { return done }
        let copy = SMMUv3(configuration: configuration, bus: bus, msiDeviceID: msiDeviceID, iidr: iidr)
        map.record(self, as: copy)
        copy.registerFile.state = registerFile.state
        copy.registerFile.consumingCommands = registerFile.consumingCommands
        // The translator is the SMMU's own: whoever reaches it (a machine's port) must have
        // cloned this SMMU first, so it is recorded here, not copied on its own.
        copy.translator.copyState(of: translator)
        map.record(translator, as: copy.translator)
        copy.wiredInterrupts = wiredInterrupts
        copy.messageInterrupts = messageInterrupts
        return copy
    }
}
