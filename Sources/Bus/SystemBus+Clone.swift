/// Copying a bus for a forked world: its RAM forks copy-on-write, its region table is a value,
/// and each device is copied through the map (every device on a bus that is forked must be
/// `WorldCloneable`). The copy is recorded before its devices are copied, so a device's
/// back-reference to its bus resolves to the copy. Trace and journal are observers attached for
/// one fire (`World.fire`), not state: the copy starts with none.
extension SystemBus: WorldCloneable {
    public func clone(into map: inout CloneMap) -> SystemBus {
        let copy = SystemBus(ram: map.clone(ram))
        map.record(self, as: copy)
        copy.regions = regions
        copy.lastRegionIndex = lastRegionIndex
        copy.hot.pointee = hot.pointee
        copy.devices = devices.map { device in
            guard let cloned = map.cloneDynamic(device) as? any MMIODevice else {
                preconditionFailure("SystemBus: the device \(device.mmioName) (\(type(of: device))) cannot be copied into a forked world")
            }
            return cloned
        }
        return copy
    }
}
