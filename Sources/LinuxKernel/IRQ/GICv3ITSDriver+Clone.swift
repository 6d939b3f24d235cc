import Bus

/// A forked world's ITS driver instance: what `its_probe_one` found and programmed (GITS_TYPER,
/// tables, command queue and `cmd_write`, collections), its devices (copied through the map:
/// an IRQ descriptor reaches the same `its_device`), and the command log, so the copy's next
/// command goes to the slot the original's would and the logs compare equal. It belongs to a
/// kernel, whose copy it takes from the map.
extension GICv3ITSDriver: WorldCloneable {
    public func clone(into map: inout CloneMap) -> GICv3ITSDriver {
        let kernelCopy = map.clone(kernel)
        if let done = map.copy(of: self) { return done }
        let copy = GICv3ITSDriver(kernel: kernelCopy, index: index, node: node)
        map.record(self, as: copy)
        copy.copyState(of: self, devices: devices.mapValues { map.clone($0) })
        return copy
    }
}

/// A forked world's `struct its_device`: its ITT and LPI block, event and collection maps, and
/// the VM its forwarded events belong to (copied through the map, shared with the vLPI maps).
extension ITSDevice: WorldCloneable {
    public func clone(into map: inout CloneMap) -> ITSDevice {
        let copy = ITSDevice(deviceID: deviceID, ittAddress: ittAddress, ittBytes: ittBytes, eventCount: eventCount,
                             lpiBase: lpiBase, lpiCount: lpiCount)
        copy.eventsInUse = eventsInUse
        copy.collectionMap = collectionMap
        copy.vm = map.clone(vm)
        copy.vlpiCount = vlpiCount
        return copy
    }
}
