/// Copying a bus for a forked world: its RAM forks copy-on-write, its region table is a value,
/// and each device is copied through the map (every device on a bus that is forked must be
/// `WorldCloneable`). The devices are copied last, in `CloneMap.finish()`: by then an owner
/// reachable from the world (a GIC owning its distributor and ITSs) has copied its parts, and
/// the bus takes those copies instead of making orphans. Trace and journal are observers attached for
/// one fire (`World.fire`), not state: the copy starts with none.
extension SystemBus: WorldCloneable {
    public func clone(into map: inout CloneMap) -> SystemBus {
        let copy = SystemBus(ram: map.clone(ram))
        map.record(self, as: copy)
        copy.regions = regions
        copy.lastRegionIndex = lastRegionIndex
        copy.hot.pointee = hot.pointee
        let devices = self.devices
        map.afterCloning { map in
            copy.devices = devices.map { device in
                guard let cloned = map.cloneDynamic(device) as? any MMIODevice else {
                    preconditionFailure("SystemBus: the device \(device.mmioName) (\(type(of: device))) cannot be copied into a forked world")
                }
                return cloned
            }
        }
        return copy
    }
}
