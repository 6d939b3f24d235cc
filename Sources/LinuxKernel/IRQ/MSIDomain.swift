import Bus
import GIC

/// The generic MSI core (kernel/irq/msi.c) over the ITS domain: allocation of Linux interrupts
/// for a device's MSI descriptors, activation (compose + write), deactivation, free.
extension IRQSubsystem {
    /// `msi_domain_alloc_irqs_all_locked` → `__msi_domain_alloc_irqs` for `descriptors` of
    /// `device`, whose ITS device `its_msi_prepare` already mapped: per descriptor one
    /// `its_irq_domain_alloc` for all its vectors (an aligned run of events, LPI = lpi_base +
    /// event, one `iommu_dma_prepare_msi(desc, its->get_msi_base(its_dev))`: the pre-ITS slot's
    /// page on a pre-ITS ITS), a Linux number and
    /// descriptor per vector, then — PCI MSI domains set MSI_FLAG_ACTIVATE_EARLY — `irq_domain_activate_irq`
    /// at once (MAPTI, then compose and write the message). On failure what was allocated is
    /// torn down and the error returned.
    ///
    /// `.irqchipMSIIOVA` (RFCv1 2/7, "Bypass iommu_dma_prepare_msi if msi_iova is preset"): a
    /// descriptor with a preset IOVA skips `iommu_dma_prepare_msi`, so no IOMMU layer maps a
    /// doorbell page or touches its `iommu_msi_iova` for it.
    func allocateMSIIRQs(device: Device, descriptors msiDescriptors: [MSIDescriptor], vectorsPerDescriptor: Int = 1,
                         driver: GICv3ITSDriver, itsDevice: ITSDevice, chipName: String) throws(Errno) -> [Int] {
        var allocated: [Int] = []
        do throws(Errno) {
            for msi in msiDescriptors {
                let count = max(vectorsPerDescriptor, 1)
                let first = try driver.allocateEvents(on: itsDevice, count: count)
                do {
                    if !driver.usesPresetIOVA(msi) {
                        try kernel.iommu.prepareMSI(msi, device: device, msiAddress: driver.msiBase(forDeviceID: itsDevice.deviceID))
                    }
                } catch {
                    for e in 0..<UInt32(count) { try? driver.free(event: first &+ e, device: itsDevice) }
                    throw error
                }
                for vector in 0..<count {
                    let event = first &+ UInt32(vector)
                    let irq = nextIRQ
                    nextIRQ += 1
                    let d = IRQDescriptor(irq: irq, hwirq: itsDevice.lpiBase &+ event, chipName: chipName, device: device,
                                          msiDescriptor: msi, itsIndex: driver.index, eventID: event, cpuCount: cpuCount)
                    d.itsDevice = itsDevice
                    insertMSIDescriptor(d, vector: vector, of: msi)
                    allocated.append(irq)
                    try activate(irq: irq)
                }
            }
        } catch {
            for irq in allocated.reversed() { try? freeMSIIRQ(irq) }
            throw error
        }
        return allocated
    }

    /// `irq_domain_activate_irq`: parent first (`its_irq_domain_activate`: MAPTI + SYNC), then
    /// `msi_domain_activate`: `irq_chip_compose_msi_msg` (`its_irq_compose_msi_msg`) and
    /// `irq_chip_write_msi_msg` (`pci_msi_domain_write_msg` → `__pci_write_msi_msg`, which
    /// caches it in `desc->msg`). No-op if already active.
    public func activate(irq: Int) throws(Errno) {
        let d = try lookup(irq)
        if isSPIMSI(d) { return try activateSPIMSI(d) }
        guard !d.isActivated else { return }
        let (driver, device) = try driver(d)
        try driver.activate(d, device: device, among: d.affinity)
        d.isActivated = true
        let message = driver.composeMessage(d)
        try writeMessage(d, message)
    }

    /// `irq_domain_deactivate_irq`: `msi_domain_deactivate` writes an all-zero message to the
    /// device, then `its_irq_domain_deactivate` (DISCARD + SYNC). No-op if not active.
    public func deactivate(irq: Int) throws(Errno) {
        let d = try lookup(irq)
        if isSPIMSI(d) { return try deactivateSPIMSI(d) }
        guard d.isActivated else { return }
        try writeMessage(d, MSIMessage())
        let (driver, device) = try driver(d)
        try driver.deactivate(d, device: device)
        d.isActivated = false
    }

    /// `irq_chip_write_msi_msg` for the PCI/MSI chip (`pci_msi_domain_write_msg`): only the
    /// interrupt that owns the descriptor writes (for multi-message MSI, the first), through
    /// `__pci_write_msi_msg`; a device that is not PCI just caches it.
    func writeMessage(_ d: IRQDescriptor, _ message: MSIMessage) throws(Errno) {
        guard let msi = d.msiDescriptor, msi.irq == d.irq else { return }
        if let device = d.device, let pci = kernel.pci.pciDevice(of: device) {
            try kernel.pci.writeMSIMessage(pci, msi, message)
        } else {
            msi.message = message
        }
    }

    /// `irq_domain_free_irqs` for one interrupt: deactivate if active, `its_irq_domain_free`
    /// (release the event; MAPD V=0 with the last one), drop the number.
    func freeMSIIRQ(_ irq: Int) throws(Errno) {
        guard let d = descriptors[irq] else { return }
        if isSPIMSI(d) { return try freeSPIMSIIRQ(irq) }
        if d.isActivated { try deactivate(irq: irq) }
        let (driver, device) = try driver(d)
        descriptors[irq] = nil
        descriptorByHWIRQ[d.hwirq] = nil
        try driver.free(event: d.eventID, device: device)
    }

    /// `get_cached_msi_msg`: the message last written for `descriptor`.
    public func cachedMessage(_ descriptor: MSIDescriptor) -> MSIMessage { descriptor.message }

    /// Recomposes and rewrites the message of an active interrupt (what deactivate + activate
    /// does to the device side, and what `msi_domain_set_affinity` would do on a controller
    /// whose message depends on the CPU).
    public func recompose(irq: Int) throws(Errno) {
        let d = try lookup(irq)
        guard d.isActivated else { return }
        if isSPIMSI(d) { return try writeMessage(d, composeSPIMessage(d)) }
        let (driver, _) = try driver(d)
        try writeMessage(d, driver.composeMessage(d))
    }
}

extension IRQSubsystem {
    /// One vector's new descriptor, whichever MSI parent (ITS or SPI frame) allocated it:
    /// `irq_domain_alloc_descs(…, desc->affinity)` gives it the vector's mask (and
    /// IRQD_AFFINITY_MANAGED when the mask is managed), then it is found by irq and by hwirq,
    /// and the MSI descriptor's `irq` is the first vector's.
    func insertMSIDescriptor(_ d: IRQDescriptor, vector: Int, of msi: MSIDescriptor) {
        if let masks = msi.affinity, masks.indices.contains(vector) {
            d.isManaged = masks[vector].isManaged
            d.affinity = masks[vector].cpus
        }
        descriptors[d.irq] = d
        descriptorByHWIRQ[d.hwirq] = d
        if vector == 0 { msi.irq = d.irq }
    }
}
