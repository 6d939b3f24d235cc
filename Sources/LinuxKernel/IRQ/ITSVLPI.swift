import Bus
import GIC

/// `struct its_vlpi_map` (include/linux/irqchip/arm-gic-v4.h): which vPE and vINTID a host LPI
/// becomes, with the vLPI's configuration byte.
public struct ITSVLPIMap {
    public let vm: ITSVM
    public let vpe: ITSVPE
    public let vintid: UInt32
    public var properties: UInt8
    public var doorbellEnabled: Bool

    public init(vm: ITSVM, vpe: ITSVPE, vintid: UInt32, properties: UInt8, doorbellEnabled: Bool) {
        self.vm = vm
        self.vpe = vpe
        self.vintid = vintid
        self.properties = properties
        self.doorbellEnabled = doorbellEnabled
    }
}

extension IRQSubsystem {
    /// `its_map_vlpi(irq, map)` (irq-gic-v4.c) → `irq_set_vcpu_affinity` → the ITS chip's
    /// `its_irq_set_vcpu_affinity` (EINVAL without a GICv4 ITS) → `its_vlpi_map`:
    /// - the device's `event_map.vm` is set on its first vLPI; another VM's map is EINVAL;
    /// - already forwarded: the map is replaced and VMOVI (+ VSYNC) moves the vLPI;
    /// - else `its_map_vm` (nothing on GICv4.1: vPEs are mapped eagerly), the interrupt is
    ///   flagged forwarded, the vLPI's configuration byte written into the VM's `vprop_page`
    ///   (`lpi_write_config(d, 0xff, properties)`), then DISCARD (+ SYNC) drops the physical
    ///   mapping and VMAPTI (+ VSYNC; Dbell_pINTID 1023 on GICv4.1, whose doorbells are per
    ///   vPE) installs the virtual one; `nr_vlpis` counts it.
    public func mapVLPI(irq: Int, _ map: ITSVLPIMap) throws(Errno) {
        let d = try lookup(irq)
        let (driver, device) = try self.driver(d)
        guard driver.isV4 else { throw .EINVAL }
        if let vm = device.vm, vm !== map.vm { throw .EINVAL }
        device.vm = map.vm
        let event = EventID(d.eventID)
        let deviceID = DeviceID(device.deviceID)
        if d.vlpiMap != nil {
            d.vlpiMap = map
            let db = driver.isV41 || !map.doorbellEnabled ? ITSVirtualCommand.noDoorbell : map.vpe.doorbellLPI
            try driver.sendVirtual(.vmovi(device: deviceID, event: event, vpe: map.vpe.id, doorbellValid: true, doorbell: db),
                                   vsync: map.vpe.id)
            return
        }
        d.vlpiMap = map
        try writeVLPIConfiguration(map, clear: 0xFF, set: map.properties)
        let cpu = device.collectionMap.indices.contains(Int(d.eventID)) ? device.collectionMap[Int(d.eventID)] : 0
        try driver.send(.discard(device: deviceID, event: event), syncOn: driver.collectionTarget(cpu))
        let db = driver.isV41 || !map.doorbellEnabled ? ITSVirtualCommand.noDoorbell : map.vpe.doorbellLPI
        try driver.sendVirtual(.vmapti(device: deviceID, event: event, vpe: map.vpe.id, vintid: map.vintid, doorbell: db),
                               vsync: map.vpe.id)
        device.vlpiCount += 1
        map.vpe.vlpiCount += 1
        kernel.log.log("GICv4", "irq \(irq) (LPI \(d.hwirq)) → vINTID \(map.vintid) of vPE \(map.vpe.id)")
    }

    /// `its_unmap_vlpi(irq)` → `its_vlpi_unmap`: EINVAL unless forwarded; DISCARD (+ SYNC) drops
    /// the virtual mapping, the flag is cleared, MAPTI (+ SYNC) restores the physical one and
    /// `lpi_update_config(d, 0xff, LPI_PROP_DEFAULT_PRIO | LPI_PROP_ENABLED | LPI_PROP_GROUP1)`
    /// rewrites the host LPI's byte (and invalidates it); `its_unmap_vm` does nothing on
    /// GICv4.1; the last vLPI frees the device for another VM.
    public func unmapVLPI(irq: Int) throws(Errno) {
        let d = try lookup(irq)
        let (driver, device) = try self.driver(d)
        guard driver.isV4, let map = d.vlpiMap, device.vm != nil else { throw .EINVAL }
        let event = EventID(d.eventID)
        let deviceID = DeviceID(device.deviceID)
        let cpu = device.collectionMap.indices.contains(Int(d.eventID)) ? device.collectionMap[Int(d.eventID)] : 0
        guard let sync = driver.collectionTarget(cpu) else { throw .EINVAL }
        try driver.send(.discard(device: deviceID, event: event), syncOn: sync)
        d.vlpiMap = nil
        try driver.send(.mapti(device: deviceID, event: event, intid: INTID(d.hwirq), collection: CollectionID(UInt16(truncatingIfNeeded: cpu))),
                        syncOn: sync)
        try driver.writeConfiguration(d, device: device, clear: 0xFF, set: IRQSubsystem.defaultLPIConfiguration | 1)
        map.vpe.vlpiCount = max(map.vpe.vlpiCount - 1, 0)
        device.vlpiCount = max(device.vlpiCount - 1, 0)
        if device.vlpiCount == 0 { device.vm = nil }
        kernel.log.log("GICv4", "irq \(irq) (LPI \(d.hwirq)) back on the host (vINTID \(map.vintid) of vPE \(map.vpe.id) unmapped)")
    }

    /// `lpi_write_config` on a forwarded interrupt: the byte at `vintid − 8192` of the VM's
    /// `vprop_page` (`map->properties` remembers it).
    func writeVLPIConfiguration(_ map: ITSVLPIMap, clear: UInt8, set: UInt8) throws(Errno) {
        guard map.vintid >= 8192, let byte = map.vm.propertyTable.adding(UInt64(map.vintid - 8192)) else { throw .EINVAL }
        let old = UInt8(truncatingIfNeeded: kernel.bus.kernelRead(byte.rawValue, size: 1))
        kernel.bus.kernelWrite(byte.rawValue, size: 1, value: UInt64((old & ~clear) | set | 0x2))
    }

    /// `direct_lpi_inv`: GICR_INVLPIR = `value` on `cpu`'s redistributor (`gic_write_lpir`),
    /// then `wait_for_syncr` (GICR_SYNCR.Busy).
    func directLPIInvalidate(cpu: Int, value: UInt64) throws(Errno) {
        guard redistributors.indices.contains(cpu),
              let invlpir = redistributors[cpu].base.adding(Redistributor.VirtualOffset.invlpir),
              let syncr = redistributors[cpu].base.adding(Redistributor.VirtualOffset.syncr) else { throw .EINVAL }
        try kernel.mmio.write64(invlpir, value)
        for _ in 0..<1000 {
            if try kernel.mmio.read32(syncr) & 1 == 0 { return }
        }
        throw .ETIMEDOUT
    }
}
