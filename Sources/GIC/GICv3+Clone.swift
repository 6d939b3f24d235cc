import Bus

/// Copying the interrupt controller for a forked world. The GIC copies its parts (distributor,
/// redistributors, CPU interfaces, the shared LPI configuration cache, ITSs, GICv2m frames) and
/// records each copy; a part reached first through the bus clones its GIC and returns what the
/// GIC recorded, so the copy has one distributor, not two. Everything software can observe is
/// copied: registers, pending bits, cached LPI configuration (a stale cached byte is
/// architecturally allowed until INV/INVALL, GICv3 §5.1.2), ITS caches, counters and logs.
extension GICv3: WorldCloneable {
    public func clone(into map: inout CloneMap) -> GICv3 {
        let copy = GICv3(configuration: configuration, affinities: redistributors.map(\.affinity))
        map.record(self, as: copy)
        copy.distributor.copyState(of: distributor)
        map.record(distributor, as: copy.distributor)
        copy.lpiConfigurationCache.copyState(of: lpiConfigurationCache)
        map.record(lpiConfigurationCache, as: copy.lpiConfigurationCache)
        for (original, twin) in zip(cpuInterfaces, copy.cpuInterfaces) {
            twin.copyState(of: original)
            map.record(original, as: twin)
        }
        for (original, twin) in zip(redistributors, copy.redistributors) {
            twin.copyState(of: original, bus: map.clone(original.bus))
            map.record(original, as: twin)
        }
        let bus = map.clone(self.bus)
        var copiedITSs: [ITS] = []
        for its in itss {
            let twin = ITS(gic: copy, bus: map.clone(its.bus), number: its.number,
                           entryStorage: its.entryStorage.map { storage in
                               guard let cloned = map.cloneDynamic(storage) as? any ITSEntryStorage else {
                                   preconditionFailure("ITS: its entry storage (\(type(of: storage))) cannot be copied into a forked world")
                               }
                               return cloned
                           })
            map.record(its, as: twin)
            twin.copyState(of: its)
            copiedITSs.append(twin)
        }
        copy.copyAttachment(of: self, bus: bus, itss: copiedITSs)
        copy.v2mFrames = v2mFrames.map { frame in
            let twin = GICv2mMSIFrame(number: frame.number, distributor: copy.distributor, baseSPI: frame.baseSPI,
                                      spiCount: frame.spiCount, iidr: frame.iidr)
            twin.copyState(of: frame)
            map.record(frame, as: twin)
            return twin
        }
        return copy
    }
}

/// The part's copy: its GIC's record when it has one, else a copy on its own.
private func partCopy<Part: AnyObject>(_ part: Part, owner: GICv3?, map: inout CloneMap, alone: (inout CloneMap) -> Part) -> Part {
    if let owner {
        let _: GICv3 = map.clone(owner)
        if let done = map.copy(of: part) { return done }
    }
    return alone(&map)
}

extension Distributor: WorldCloneable {
    public func clone(into map: inout CloneMap) -> Distributor {
        partCopy(self, owner: owner, map: &map) { _ in
            let copy = Distributor(configuration: configuration)
            copy.copyState(of: self)
            return copy
        }
    }
}

extension LPIConfigurationCache: WorldCloneable {
    public func clone(into map: inout CloneMap) -> LPIConfigurationCache {
        let copy = LPIConfigurationCache(lpiCount: bytes.count)
        copy.copyState(of: self)
        return copy
    }
}

extension Redistributor: WorldCloneable {
    public func clone(into map: inout CloneMap) -> Redistributor {
        partCopy(self, owner: owner, map: &map) { map in
            let copy = Redistributor(processorNumber: processorNumber, affinity: affinity, isLast: isLast,
                                     configuration: configuration, configurationCache: map.clone(configurationCache))
            copy.copyState(of: self, bus: map.clone(bus))
            return copy
        }
    }
}

extension ITS: WorldCloneable {
    public func clone(into map: inout CloneMap) -> ITS {
        partCopy(self, owner: gic, map: &map) { _ in
            preconditionFailure("ITS \(number): its GIC did not record a copy")
        }
    }
}

extension GICv2mMSIFrame: WorldCloneable {
    public func clone(into map: inout CloneMap) -> GICv2mMSIFrame {
        partCopy(self, owner: distributor.owner, map: &map) { map in
            let copy = GICv2mMSIFrame(number: number, distributor: map.clone(distributor), baseSPI: baseSPI,
                                      spiCount: spiCount, iidr: iidr)
            copy.copyState(of: self)
            return copy
        }
    }
}

extension GICv2CPUInterface: WorldCloneable {
    public func clone(into map: inout CloneMap) -> GICv2CPUInterface {
        let copy = GICv2CPUInterface(gic: map.clone(gic))
        copy.copyState(of: self)
        return copy
    }
}

extension PreITS: WorldCloneable {
    public func clone(into map: inout CloneMap) -> PreITS {
        let copy = PreITS(its: map.clone(its), base: base, size: size)
        copy.counters = counters
        return copy
    }
}
