import Bus
import SMMUv2
import SMMUv3

/// Copying a machine for a forked world (`Machine.init(copying:map:)` does the work). The ports
/// hold their SMMU and bus as owners do, so they clone them; their last bus error is state a
/// report reads, so it is copied too.
extension Machine: WorldCloneable {
    public func clone(into map: inout CloneMap) -> Machine {
        Machine(copying: self, map: &map)
    }
}

extension TranslatedPort: WorldCloneable {
    public func clone(into map: inout CloneMap) -> TranslatedPort {
        let copy = TranslatedPort(smmu: map.clone(smmu), bus: map.clone(bus), untranslatedWindows: untranslatedWindows)
        copy.copyLastBusError(of: self)
        return copy
    }
}

extension DirectPort: WorldCloneable {
    public func clone(into map: inout CloneMap) -> DirectPort {
        let copy = DirectPort(bus: map.clone(bus))
        copy.copyLastBusError(of: self)
        return copy
    }
}

extension SMMUv2Port: WorldCloneable {
    public func clone(into map: inout CloneMap) -> SMMUv2Port {
        let copy = SMMUv2Port(smmu: map.clone(smmu), bus: map.clone(bus), untranslatedWindows: untranslatedWindows)
        copy.copyLastBusError(of: self)
        return copy
    }
}
