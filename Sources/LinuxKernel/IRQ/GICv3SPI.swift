import Bus
import Firmware

extension IRQSubsystem {
    /// `irq_create_of_mapping` for a GICv3 specifier <0 (SPI) n flags>: `gic_irq_domain_translate`
    /// gives hwirq n + 32; an INTID already mapped returns its Linux number
    /// (`irq_find_mapping`), else a new one. Level-high, as `of_irq_parse_and_map_pci` maps INTx.
    func mapSPI(intid: UInt32, device: Device?) -> Int {
        if let existing = descriptorByHWIRQ[intid] { return existing.irq }
        let irq = nextIRQ
        nextIRQ += 1
        let d = IRQDescriptor(irq: irq, hwirq: intid, chipName: "GICv3", device: device, msiDescriptor: nil,
                              itsIndex: -1, eventID: 0, cpuCount: cpuCount)
        descriptors[irq] = d
        descriptorByHWIRQ[intid] = d
        return irq
    }

    /// `request_irq` on an SPI: `gic_set_type` (level: GICD_ICFGR bit 2n+1 cleared; an MSI
    /// delivered as an SPI stays edge, as its domain's alloc set it),
    /// `irq_setup_affinity` → `gic_set_affinity` (GICv3: GICD_IROUTER<n> = the first online CPU
    /// of the default mask, CPU 0, as its MPIDR affinity with Interrupt_Routing_Mode 0; GICv2,
    /// irq-gic.c: the GICD_ITARGETSR<n> byte = CPU interface 0's bit), then `gic_unmask_irq`
    /// (GICD_ISENABLER<n>; for an MSI first `pci_msi_unmask_irq`, `gicv2m_unmask_msi_irq` /
    /// `mbi_unmask_msi_irq`).
    func startSPI(_ d: IRQDescriptor) throws(Errno) {
        guard let base = kernel.topology.gic?.distributor.base else { throw .ENODEV }
        let n = UInt64(d.hwirq)
        try setSPITrigger(d, edge: isSPIMSI(d))
        if kernel.topology.gic?.architecture == .v2 {
            guard let target = base.adding(0x800 + n) else { throw .EINVAL }
            try kernel.mmio.write(target, size: 1, 1)
        } else {
            guard let irouter = base.adding(0x6000 + 8 * n) else { throw .EINVAL }
            let mpidr = kernel.topology.cpus.first?.mpidr ?? 0
            try kernel.mmio.write(irouter, size: 8, IRQSubsystem.routerAffinity(mpidr: mpidr))
        }
        d.effectiveCPU = 0
        d.isActivated = true
        d.isStarted = true
        try maskSPI(d, masked: false)
    }

    /// `gic_set_type` / `gic_configure_irq`: GICD_ICFGR<n> Int_config[1] = 1 for edge-rising,
    /// 0 for level-high.
    func setSPITrigger(_ d: IRQDescriptor, edge: Bool) throws(Errno) {
        guard let base = kernel.topology.gic?.distributor.base else { throw .ENODEV }
        let n = UInt64(d.hwirq)
        guard let icfgr = base.adding(0xC00 + (n / 16) * 4) else { throw .EINVAL }
        let bit = UInt32(1) << UInt32((n % 16) * 2 + 1)
        let config = try kernel.mmio.read32(icfgr)
        try kernel.mmio.write32(icfgr, edge ? config | bit : config & ~bit)
    }

    /// `gic_mask_irq` / `gic_unmask_irq`: GICD_ICENABLER<n> / GICD_ISENABLER<n>.
    /// `device`: also the PCI vector of an MSI delivered as an SPI (the v2m/MBI PCI chip's
    /// `irq_mask`); false for the GIC chip alone, as `gic_set_affinity` masks.
    func maskSPI(_ d: IRQDescriptor, masked: Bool, device: Bool = true) throws(Errno) {
        if device, isSPIMSI(d), let msi = d.msiDescriptor, let dev = d.device?.pci {
            try kernel.pci.maskVector(dev, msi, masked: masked, vector: d.irq - msi.irq)
        }
        guard let base = kernel.topology.gic?.distributor.base,
              let register = base.adding((masked ? 0x180 : 0x100) + UInt64(d.hwirq / 32) * 4) else { throw .ENODEV }
        try kernel.mmio.write32(register, UInt32(1) << (d.hwirq % 32))
        d.isMasked = masked
    }

    /// `irq_set_affinity` on an SPI → `gic_set_affinity(d, cpumask_of(cpu), false)`: an enabled
    /// SPI is masked first (GICD_ICENABLER), GICD_IROUTER<n> (GICv2: GICD_ITARGETSR<n>) gets the CPU's MPIDR affinity
    /// (`gic_mpidr_to_affinity`, Interrupt_Routing_Mode 0), then it is unmasked again; the
    /// effective affinity becomes that CPU. The CPU must have an MPIDR in the description.
    func setSPIAffinity(_ d: IRQDescriptor, cpu: Int) throws(Errno) {
        let cpus = kernel.topology.cpus
        let v2 = kernel.topology.gic?.architecture == .v2
        guard cpus.indices.contains(cpu), let base = kernel.topology.gic?.distributor.base,
              let irouter = base.adding(0x6000 + 8 * UInt64(d.hwirq)), let target = base.adding(0x800 + UInt64(d.hwirq)),
              let enabler = base.adding(0x100 + UInt64(d.hwirq / 32) * 4), !v2 || cpu < 8 else { throw .EINVAL }
        // irq-gic-v3.c masks an enabled SPI around the IROUTER write; irq-gic.c writes the
        // ITARGETSR byte alone.
        let enabled = try kernel.mmio.read32(enabler) & (UInt32(1) << (d.hwirq % 32)) != 0 && !v2
        if enabled { try maskSPI(d, masked: true, device: false) }
        if v2 {
            // irq-gic.c `gic_set_affinity`: the ITARGETSR byte = `gic_cpu_map[cpu]` (CPU
            // interface `cpu`'s bit here).
            try kernel.mmio.write(target, size: 1, UInt64(1) << UInt64(cpu))
        } else {
            try kernel.mmio.write(irouter, size: 8, IRQSubsystem.routerAffinity(mpidr: cpus[cpu].mpidr))
        }
        if enabled { try maskSPI(d, masked: false, device: false) }
        d.affinity = [cpu]
        d.effectiveCPU = cpu
    }
}
