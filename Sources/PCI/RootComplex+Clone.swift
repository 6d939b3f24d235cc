import Bus

/// Copying the PCIe hierarchy for a forked world. The root complex copies its bridges and
/// functions and attaches the copies in the original order (behind the copied parent bridges),
/// so requester-ID lookups, ECAM decoding and enumeration order are the original's. A function
/// or bridge reached first on its own clones its root complex and returns what it attached.
/// The upstream ports are copied through the map (the machine's `TranslatedPort`/`DirectPort`);
/// `intxSink` is a closure its installer (`Machine`) installs again on the copy. Trace and
/// journal are observers and start detached.
extension RootComplex: WorldCloneable {
    public func clone(into map: inout CloneMap) -> RootComplex {
        let copy = RootComplex(name: name, busRange: busRange, memoryWindowBase: memoryWindowBase)
        map.record(self, as: copy)
        copy.iommuMap = iommuMap
        copy.msiMap = msiMap
        for bridge in bridges {
            let twin = PCIToPCIBridge(copying: bridge)
            map.record(bridge, as: twin)
            let parent = bridge.parentBridge.flatMap { map.copy(of: $0) }
            // The original accepted the same bridge behind the same parent, in this order.
            do { try copy.attach(twin, behind: parent) } catch { preconditionFailure("RootComplex copy: \(error)") }
        }
        for function in functions {
            let twin = PCIFunction(copying: function)
            map.record(function, as: twin)
            let parent = function.parentBridge.flatMap { map.copy(of: $0) }
            do { try copy.attach(twin, behind: parent) } catch { preconditionFailure("RootComplex copy: \(error)") }
        }
        copy.upstream = upstream.map { port in upstreamCopy(port, map: &map) }
        copy.untranslatedUpstream = untranslatedUpstream.map { port in upstreamCopy(port, map: &map) }
        return copy
    }

    private func upstreamCopy(_ port: any UpstreamPort, map: inout CloneMap) -> any UpstreamPort {
        guard let cloned = map.cloneDynamic(port) as? any UpstreamPort else {
            preconditionFailure("RootComplex \(name): its upstream port (\(type(of: port))) cannot be copied into a forked world")
        }
        return cloned
    }
}

extension PCIFunction: WorldCloneable {
    public func clone(into map: inout CloneMap) -> PCIFunction {
        if let rootComplex {
            let _: RootComplex = map.clone(rootComplex)
            if let done = map.copy(of: self) { return done }
        }
        return PCIFunction(copying: self)
    }
}

extension PCIToPCIBridge: WorldCloneable {
    public func clone(into map: inout CloneMap) -> PCIToPCIBridge {
        if let rootComplex {
            let _: RootComplex = map.clone(rootComplex)
            if let done = map.copy(of: self) { return done }
        }
        return PCIToPCIBridge(copying: self)
    }
}

extension ECAM: WorldCloneable {
    public func clone(into map: inout CloneMap) -> ECAM {
        guard let rootComplex else { preconditionFailure("ECAM copied after its root complex was released") }
        return map.clone(rootComplex).ecam
    }
}

extension PCIMemoryWindow: WorldCloneable {
    public func clone(into map: inout CloneMap) -> PCIMemoryWindow {
        guard let rootComplex else { preconditionFailure("PCI memory window copied after its root complex was released") }
        return map.clone(rootComplex).memoryWindow
    }
}
