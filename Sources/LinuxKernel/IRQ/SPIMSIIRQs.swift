import Bus

/// The generic MSI core over an SPI MSI parent (`GICSPIMSIDomain`): the same steps
/// `allocateMSIIRQs` runs over the ITS, with the v2m/MBI domain's `.alloc`
/// (`gicv2m_irq_domain_alloc` / `mbi_irq_domain_alloc`), `.free` and compose.
extension IRQSubsystem {
    /// `__msi_domain_alloc_irqs` for `descriptors`: per descriptor one `.alloc` of its vectors
    /// (a 2^order-aligned run of SPIs), `iommu_dma_prepare_msi(desc, doorbell)`, then per vector
    /// `gicv2m_irq_gic_domain_alloc` / `mbi_irq_gic_domain_alloc` (the parent GIC's SPI,
    /// `irq_set_type(IRQ_TYPE_EDGE_RISING)`: GICD_ICFGR Int_config[1] = 1) and, MSI_FLAG_ACTIVATE_EARLY,
    /// activation: the message composed and written. On failure what was allocated is undone.
    func allocateSPIMSIIRQs(device: Device, descriptors msiDescriptors: [MSIDescriptor], vectorsPerDescriptor: Int = 1,
                            domain: GICSPIMSIDomain, chipName: String) throws(Errno) -> [Int] {
        var allocated: [Int] = []
        do throws(Errno) {
            for msi in msiDescriptors {
                let count = max(vectorsPerDescriptor, 1)
                let (range, first) = try domain.allocate(count: count)
                do {
                    try kernel.iommu.prepareMSI(msi, device: device, msiAddress: range.doorbell.rawValue)
                } catch {
                    domain.free(range: range, hwirq: first, count: count)
                    throw error
                }
                for vector in 0..<count {
                    let irq = nextIRQ
                    nextIRQ += 1
                    let d = IRQDescriptor(irq: irq, hwirq: first &+ UInt32(vector), chipName: chipName, device: device,
                                          msiDescriptor: msi, itsIndex: -1, eventID: 0, cpuCount: cpuCount)
                    d.spiRange = range
                    d.spiDomain = domain
                    insertMSIDescriptor(d, vector: vector, of: msi)
                    allocated.append(irq)
                    try setSPITrigger(d, edge: true)
                    try activateSPIMSI(d)
                }
            }
        } catch {
            for irq in allocated.reversed() { try? freeSPIMSIIRQ(irq) }
            throw error
        }
        return allocated
    }

    /// `gicv2m_compose_msi_msg` / `mbi_compose_msi_msg`: the physical doorbell and the SPI, then
    /// the IOMMU's address: `msi_msg_set_addr` (v6.15+, the IOVA page `sw_msi` stored) or
    /// `iommu_dma_compose_msi_msg` (v6.14, the MSI cookie's page). The data is never changed by
    /// the IOMMU: an SPI MSI's data is its INTID.
    func composeSPIMessage(_ d: IRQDescriptor) -> MSIMessage {
        guard let range = d.spiRange else { return MSIMessage() }
        let function = range.kind == .v2m ? "gicv2m_compose_msi_msg" : "mbi_compose_msi_msg"
        var message = range.composePhysical(hwirq: d.hwirq)
        guard let msi = d.msiDescriptor else { return message }
        let doorbell = range.doorbell.rawValue
        if kernel.configuration.has(.nativeSWMSI) {
            msi.setAddress(of: &message, to: doorbell)
            msi.addressSource = MSIAddressSource(function: "\(function) → msi_msg_set_addr",
                detail: message.address == doorbell
                    ? "wrote the doorbell's physical address \(Hex.format(doorbell)): no sw_msi stored an IOVA for it"
                    : "wrote \(Hex.format(message.address)): the IOVA page sw_msi mapped for the doorbell \(Hex.format(doorbell)), plus its offset")
        } else {
            kernel.iommu.composeMSIMessageLegacy(msi, &message)
            msi.addressSource = MSIAddressSource(function: "\(function) → iommu_dma_compose_msi_msg",
                detail: message.address == doorbell
                    ? "left the doorbell's physical address \(Hex.format(doorbell)): the device's domain has no MSI cookie"
                    : "wrote \(Hex.format(message.address)): the MSI cookie's page IOVA for the doorbell \(Hex.format(doorbell))")
        }
        return message
    }

    /// `msi_domain_activate` for an SPI MSI (the v2m/MBI/GIC levels have no activate of their
    /// own): compose and write.
    func activateSPIMSI(_ d: IRQDescriptor) throws(Errno) {
        guard !d.isActivated else { return }
        d.isActivated = true
        try writeMessage(d, composeSPIMessage(d))
    }

    /// `msi_domain_deactivate`: an all-zero message.
    func deactivateSPIMSI(_ d: IRQDescriptor) throws(Errno) {
        guard d.isActivated else { return }
        try writeMessage(d, MSIMessage())
        d.isActivated = false
    }

    /// `irq_domain_free_irqs` for one SPI MSI: deactivate, release its SPI.
    func freeSPIMSIIRQ(_ irq: Int) throws(Errno) {
        guard let d = descriptors[irq] else { return }
        if d.isActivated { try deactivateSPIMSI(d) }
        descriptors[irq] = nil
        descriptorByHWIRQ[d.hwirq] = nil
        if let range = d.spiRange, let domain = d.spiDomain { domain.free(range: range, hwirq: d.hwirq, count: 1) }
    }

    /// Whether `d` is an MSI delivered as an SPI (v2m or MBI).
    func isSPIMSI(_ d: IRQDescriptor) -> Bool { d.isSPI && d.spiRange != nil }
}
