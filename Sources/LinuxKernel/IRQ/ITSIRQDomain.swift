import Bus
import GIC

extension GICv3ITSDriver {
    /// `its_msi_prepare` → `its_create_device(its, dev_id, nvec, true)`: reuse the ITS device if
    /// the DeviceID is already mapped (another alias of the same requester), else: the device
    /// table entry (`its_alloc_device_table`), `nr_ites = max(2, nvec)` (nvec is already a power
    /// of two, see `PCISubsystem.itsEventCount`), an ITT of `max(nr_ites × ite_size,
    /// ITS_ITT_ALIGN = 256)` bytes aligned to 256, `its_lpi_alloc(nvec)` for the LPIs, and
    /// MAPD(DeviceID, Size = log2(nr_ites) − 1, ITT, V=1) — with no SYNC (`its_build_mapd_cmd`
    /// returns NULL).
    func prepareDevice(deviceID: UInt32, vectors nvec: Int) throws(Errno) -> ITSDevice {
        if let existing = devices[deviceID] { return existing }
        guard nvec > 0, nvec <= 1 << 16 else { throw .EINVAL }
        var nrITEs = 2
        while nrITEs < nvec { nrITEs <<= 1 }
        // MAPD Size must not exceed GITS_TYPER.IDbits (command error 0x010802 otherwise).
        guard nrITEs <= 1 << min(eventIDBits, 20) else { throw .ENOSPC }
        try ensureDeviceTableEntry(deviceID)
        let ittBytes = max(UInt64(nrITEs) * UInt64(iteSize), GICv3ITSDriver.ittAlign)
        let itt = try kernel.pages.allocate(bytes: ittBytes, alignment: GICv3ITSDriver.ittAlign)
        guard let (lpiBase, lpiCount) = kernel.irq.lpiAllocator.allocate(nvec) else { throw .ENOSPC }
        let device = ITSDevice(deviceID: deviceID, ittAddress: itt, ittBytes: ittBytes, eventCount: nrITEs,
                               lpiBase: lpiBase, lpiCount: lpiCount)
        register(device)
        try send(.mapd(device: DeviceID(deviceID), size: device.mapdSize, ittAddress: itt, valid: true), syncOn: nil)
        kernel.log.log("ITS", "DeviceID \(Hex.format(UInt64(deviceID), minDigits: 1)): ITT \(nrITEs) entries @\(itt), LPIs \(lpiBase)-\(lpiBase &+ UInt32(lpiCount) &- 1)")
        return device
    }

    /// `ITS_ITT_ALIGN`.
    public static let ittAlign: UInt64 = 256

    /// `its_alloc_device_irq(dev, nvecs)`: `bitmap_find_free_region(lpi_map, nr_lpis,
    /// get_count_order(nvecs))` — the lowest free run of 2^order events starting at a multiple
    /// of 2^order (what multi-message MSI needs, since the function ORs the vector number into
    /// the data); the first LPI is `lpi_base + event`. ENOSPC when no such run is free.
    func allocateEvents(on device: ITSDevice, count: Int = 1) throws(Errno) -> UInt32 {
        var order = 0
        while (1 << order) < count { order += 1 }
        let span = 1 << order
        var start = 0
        while start + span <= device.eventsInUse.count {
            if !device.eventsInUse[start..<(start + span)].contains(true) {
                for i in start..<(start + count) { device.eventsInUse[i] = true }
                return UInt32(start)
            }
            start += span
        }
        throw .ENOSPC
    }

    /// `its_select_cpu(d, aff_mask)` → `cpumask_pick_least_loaded`: the CPU of `cpus` (all
    /// CPUs when nil) with the fewest LPIs of the interrupt's kind (`its_read_lpi_count`: the
    /// managed count for a managed interrupt, the unmanaged one otherwise), the lowest number
    /// on a tie (`for_each_cpu` ascending, strict `<`). Unmanaged: the mask ANDed with the
    /// online CPUs, all online CPUs when that is empty (the ITS has no NUMA node here, so the
    /// node pass is skipped). Managed: the mask as it is (`cpumask_copy(tmpmask, aff_mask)`:
    /// Marc Zyngier's 2022 change "directly use this affinity when computing a target CPU",
    /// after the core was fixed to pass only online CPUs). The managed/unmanaged split dates
    /// from "irqchip/gic-v3-its: Balance initial LPI affinity across CPUs" (c5d6082d35e0,
    /// v5.10); no release the model names changed it.
    func selectCPU(among cpus: [Int]? = nil, managed: Bool = false) -> Int {
        let online = Array(0..<collectionTargets.count)
        var candidates = (cpus ?? online).filter { $0 >= 0 && $0 < collectionTargets.count }
        if candidates.isEmpty { candidates = online }
        return candidates.min {
            (kernel.irq.lpiCount(cpu: $0, managed: managed), $0) < (kernel.irq.lpiCount(cpu: $1, managed: managed), $1)
        } ?? 0
    }

    /// `its_irq_domain_activate`: choose the CPU (`its_select_cpu(d, cpu_online_mask)`), count
    /// it, MAPTI(DeviceID, EventID, LPI, ICID = cpu) + SYNC on that collection. (MAPTI is sent
    /// here, at activation, not at allocation: `its_irq_domain_alloc` only reserves the event.)
    /// A managed interrupt is placed over every online CPU here and moves to its own mask at
    /// `request_irq` (`reselectCPU`). For an unmanaged interrupt the model picks within
    /// `cpus` (its affinity) at once — the CPU Linux ends on after the same startup step.
    func activate(_ descriptor: IRQDescriptor, device: ITSDevice, among cpus: [Int]?) throws(Errno) {
        let managed = descriptor.isManaged
        let target = selectCPU(among: managed ? nil : cpus, managed: managed)
        guard let sync = collectionTarget(target) else { throw .EINVAL }
        let event = Int(descriptor.eventID)
        guard device.collectionMap.indices.contains(event) else { throw .EINVAL }
        device.collectionMap[event] = target
        kernel.irq.adjustLPICount(cpu: target, by: 1, managed: managed)
        descriptor.effectiveCPU = target
        try send(.mapti(device: DeviceID(device.deviceID), event: EventID(descriptor.eventID), intid: INTID(descriptor.hwirq),
                        collection: CollectionID(UInt16(truncatingIfNeeded: target))), syncOn: sync)
    }

    /// `its_set_affinity(d, mask, false)` as `irq_startup` calls it: uncount the current CPU,
    /// `its_select_cpu(d, mask)`, MOVI + SYNC when the CPU changes, count the chosen one.
    func reselectCPU(_ descriptor: IRQDescriptor, device: ITSDevice, among cpus: [Int]?) throws(Errno) {
        let managed = descriptor.isManaged
        let event = Int(descriptor.eventID)
        guard device.collectionMap.indices.contains(event) else { throw .EINVAL }
        let previous = device.collectionMap[event]
        kernel.irq.adjustLPICount(cpu: previous, by: -1, managed: managed)
        let target = selectCPU(among: cpus, managed: managed)
        if target != previous {
            guard let sync = collectionTarget(target) else {
                kernel.irq.adjustLPICount(cpu: previous, by: 1, managed: managed)
                throw .EINVAL
            }
            try send(.movi(device: DeviceID(device.deviceID), event: EventID(descriptor.eventID),
                           collection: CollectionID(UInt16(truncatingIfNeeded: target))), syncOn: sync)
            device.collectionMap[event] = target
            descriptor.effectiveCPU = target
        }
        kernel.irq.adjustLPICount(cpu: target, by: 1, managed: managed)
    }

    /// `its_irq_domain_deactivate`: uncount the CPU, DISCARD + SYNC.
    func deactivate(_ descriptor: IRQDescriptor, device: ITSDevice) throws(Errno) {
        let event = Int(descriptor.eventID)
        let cpu = device.collectionMap.indices.contains(event) ? device.collectionMap[event] : 0
        kernel.irq.adjustLPICount(cpu: cpu, by: -1, managed: descriptor.isManaged)
        try send(.discard(device: DeviceID(device.deviceID), event: EventID(descriptor.eventID)), syncOn: collectionTarget(cpu))
    }

    /// `its_irq_domain_free` (v6.15): release the event; when the device has no event left,
    /// free its LPIs (`its_lpi_free`) and unmap it (MAPD V=0, `its_free_device`).
    ///
    /// v6.15 calls `msi_prepare` on every allocation and marks a device found again "shared",
    /// which then is never unmapped; v6.16 moved preparation to per-device MSI domain creation
    /// and the unmap to `.msi_teardown` (Marc Zyngier's "irqchip/gic-v3-its: Implement
    /// .msi_teardown() callback"). Both unmap once the last vector of a function is gone, which
    /// is what this does; the shared-after-dynamic-allocation leak of v6.15 is not reproduced.
    func free(event: UInt32, device: ITSDevice) throws(Errno) {
        let e = Int(event)
        if device.eventsInUse.indices.contains(e) { device.eventsInUse[e] = false }
        guard device.isEmpty else { return }
        kernel.irq.lpiAllocator.release(base: device.lpiBase, count: device.lpiCount)
        unregister(device)
        try send(.mapd(device: DeviceID(device.deviceID), size: device.mapdSize, ittAddress: device.ittAddress, valid: false), syncOn: nil)
    }

    /// `its_irq_compose_msi_msg`: address = `its->get_msi_base(its_dev)` (ITS PA + 0x1_0040, or
    /// the device's pre-ITS slot),
    /// data = EventID; then v6.15+ `msi_msg_set_addr(desc, msg, addr)` (the IOVA the IOMMU
    /// layer stored at prepare time, or the address itself); v6.14: the raw address, then
    /// `iommu_dma_compose_msi_msg(desc, msg)` (IOMMU core).
    ///
    /// `.irqchipMSIIOVA` (RFCv1 2/7): a preset `desc->msi_iova` replaces the composed address
    /// whole ("msg->address_lo = lower_32_bits(iova); msg->address_hi = upper_32_bits(iova)"),
    /// on either version; the data stays the EventID. The preset lives in the descriptor, so
    /// every recompose (deactivate + activate) yields it again.
    func composeMessage(_ descriptor: IRQDescriptor) -> MSIMessage {
        let doorbell = descriptor.itsDevice.map { self.msiBase(forDeviceID: $0.deviceID) } ?? self.msiBase
        var message = MSIMessage(address: doorbell, data: descriptor.eventID)
        if let msi = descriptor.msiDescriptor {
            if usesPresetIOVA(msi), let iova = msi.presetIOVA {
                message.addressLo = UInt32(truncatingIfNeeded: iova)
                message.addressHi = UInt32(truncatingIfNeeded: iova >> 32)
                msi.addressSource = MSIAddressSource(function: "its_irq_compose_msi_msg",
                    detail: "wrote the preset desc->msi_iova \(Hex.format(iova)) (RFCv1's irqchip patch)")
            } else if kernel.configuration.has(.nativeSWMSI) {
                msi.setAddress(of: &message, to: doorbell)
                msi.addressSource = msi.iommuMSIShift != 0
                    ? MSIAddressSource(function: "msi_msg_set_addr",
                        detail: "wrote \(Hex.format(message.address)): the \(Hex.format(1 << UInt64(msi.iommuMSIShift), minDigits: 1))-byte IOVA page the domain's sw_msi (iommu_dma_sw_msi or iommufd_sw_msi) stored with msi_desc_set_iommu_msi_iova, plus the doorbell \(Hex.format(doorbell))'s offset in it")
                    : MSIAddressSource(function: "msi_msg_set_addr",
                        detail: "wrote the doorbell's physical address \(Hex.format(doorbell)): no sw_msi stored an IOVA for it (the device's domain maps no MSI page)")
            } else {
                kernel.iommu.composeMSIMessageLegacy(msi, &message)
                msi.addressSource = message.address == doorbell
                    ? MSIAddressSource(function: "iommu_dma_compose_msi_msg",
                        detail: "left the doorbell's physical address \(Hex.format(doorbell)): the device's domain has no dma-iommu MSI cookie (a nested or iommufd domain)")
                    : MSIAddressSource(function: "iommu_dma_compose_msi_msg",
                        detail: "wrote \(Hex.format(message.address)): the MSI cookie's page IOVA for the doorbell \(Hex.format(doorbell))")
            }
        }
        return message
    }

    /// `msi_desc_get_iova(desc) != PHYS_ADDR_MAX` in a kernel with `.irqchipMSIIOVA`.
    func usesPresetIOVA(_ msi: MSIDescriptor) -> Bool {
        msi.presetIOVA != nil && kernel.configuration.patches.contains(.irqchipMSIIOVA)
    }

    /// `its_set_affinity`: if the new CPU differs, recount, MOVI(DeviceID, EventID, new ICID) +
    /// SYNC on the new collection, and record it in `col_map`.
    func setAffinity(_ descriptor: IRQDescriptor, device: ITSDevice, cpu: Int) throws(Errno) {
        guard let sync = collectionTarget(cpu) else { throw .EINVAL }
        let event = Int(descriptor.eventID)
        guard device.collectionMap.indices.contains(event) else { throw .EINVAL }
        let old = device.collectionMap[event]
        guard old != cpu else { return }
        kernel.irq.adjustLPICount(cpu: cpu, by: 1, managed: descriptor.isManaged)
        kernel.irq.adjustLPICount(cpu: old, by: -1, managed: descriptor.isManaged)
        try send(.movi(device: DeviceID(device.deviceID), event: EventID(descriptor.eventID),
                       collection: CollectionID(UInt16(truncatingIfNeeded: cpu))), syncOn: sync)
        device.collectionMap[event] = cpu
        descriptor.effectiveCPU = cpu
    }

    /// `lpi_update_config` (from `its_mask_irq` / `its_unmask_irq`): rewrite the LPI's
    /// configuration byte (`lpi_write_config`, Enable = bit 0), then make the redistributor
    /// reread it: with `has_direct_lpi` (every GICR_TYPER.DirectLPI, or GICv4.1's RVPEID)
    /// `direct_lpi_inv` (GICR_INVLPIR = the INTID on the redistributor of the event's CPU, then
    /// `wait_for_syncr`), else `its_send_inv` (INV + SYNC).
    func updateConfiguration(_ descriptor: IRQDescriptor, device: ITSDevice, enable: Bool) throws(Errno) {
        try writeConfiguration(descriptor, device: device, clear: 1, set: enable ? 1 : 0)
    }

    /// `lpi_update_config(d, clr, set)` on a host LPI: `lpi_write_config` (`*cfg &= ~clr;
    /// *cfg |= set | LPI_PROP_GROUP1`) then the invalidation `updateConfiguration` describes.
    func writeConfiguration(_ descriptor: IRQDescriptor, device: ITSDevice, clear: UInt8, set: UInt8) throws(Errno) {
        let table = kernel.irq.propertyTable
        guard descriptor.hwirq >= 8192, let byte = table.adding(UInt64(descriptor.hwirq - 8192)) else { throw .EINVAL }
        let old = UInt8(truncatingIfNeeded: kernel.bus.kernelRead(byte.rawValue, size: 1))
        let new = (old & ~clear) | set | 0x2
        kernel.bus.kernelWrite(byte.rawValue, size: 1, value: UInt64(new))
        let event = Int(descriptor.eventID)
        let cpu = device.collectionMap.indices.contains(event) ? device.collectionMap[event] : 0
        if kernel.irq.gicv4.hasDirectLPI {
            try kernel.irq.directLPIInvalidate(cpu: cpu, value: UInt64(descriptor.hwirq))
            return
        }
        try send(.inv(device: DeviceID(device.deviceID), event: EventID(descriptor.eventID)), syncOn: collectionTarget(cpu))
    }

    /// The ITS device with `deviceID`.
    public func device(_ deviceID: UInt32) -> ITSDevice? { devices[deviceID] }
}
