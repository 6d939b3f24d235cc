import Bus
import Firmware
import GIC

/// The kernel's interrupt core for the GICv3 + ITS path: CPU-side LPI bring-up
/// (irq-gic-v3.c `gic_cpu_init`, irq-gic-v3-its.c `its_cpu_init_lpis`), the ITS drivers, the
/// LPI allocator, Linux interrupt numbers with their descriptors, `request_irq`/`free_irq`, the
/// exception-level loop that acknowledges interrupts (`gic_handle_irq`), affinity and masking.
public final class IRQSubsystem {
    unowned(safe) let kernel: LinuxKernel

    /// One redistributor as `gic_iterate_rdists` found it for a CPU.
    public struct RedistributorInfo: Hashable, Sendable {
        public var cpu: Int
        /// RD_base.
        public var base: PhysicalAddress
        /// GICR_TYPER.
        public var typer: UInt64
        /// GICR_TYPER.Processor_Number.
        public var processorNumber: Int { Int(typer.bits(23, 8)) }
        /// GICR_PENDBASER's table.
        public var pendingTable: PhysicalAddress
    }

    /// Redistributors by CPU, found at probe.
    public internal(set) var redistributors: [RedistributorInfo] = []
    /// `gic_rdists->prop_table_pa`: the LPI configuration table shared by all redistributors.
    public internal(set) var propertyTable = PhysicalAddress(0)
    /// `lpi_id_bits`: min(GICD_TYPER.IDbits + 1, ITS_MAX_LPI_NRBITS = 16).
    public internal(set) var lpiIDBits = 0
    /// The LPI allocator (`its_lpi_alloc`).
    public internal(set) var lpiAllocator = LPIAllocator(first: 8192, count: 0)

    /// The SPI MSI parents probed (`GICSPIMSIDomain`): GICv2m frames and/or GICv3 MBIs.
    public internal(set) var spiMSIDomains: [GICSPIMSIDomain] = []

    /// Linux interrupt numbers in use, by number.
    public internal(set) var descriptors: [Int: IRQDescriptor] = [:]
    /// INTID → descriptor (`irq_find_mapping` in the ITS domain).
    var descriptorByHWIRQ: [UInt32: IRQDescriptor] = [:]
    var nextIRQ = IRQSubsystem.firstDynamicIRQ
    /// The first number handed out. Linux's numbers are dynamic (`irq_domain_alloc_descs`); on
    /// arm64 the GIC's SGIs/PPIs/SPIs usually take the first few dozen, so MSIs land above them.
    /// The model starts at 64 and never reuses a number (deterministic, like `PhysicalPages`).
    public static let firstDynamicIRQ = 64
    /// Interrupts acknowledged with no descriptor for their INTID (`handle_bad_irq`): all of
    /// them counted, the last 64 kept (a device hammering an unmapped LPI for a whole run does
    /// not grow the kernel).
    public internal(set) var spuriousINTIDs = BoundedLog<UInt32>(capacity: 64)
    /// Unmanaged LPIs mapped per CPU (`cpu_lpi_count.unmanaged`, used by `its_select_cpu`).
    public internal(set) var lpiCountPerCPU: [Int] = []
    /// Managed LPIs mapped per CPU (`cpu_lpi_count.managed`): `its_read_lpi_count` reads the
    /// count of the interrupt's own kind, so managed and unmanaged vectors balance separately.
    public internal(set) var managedLPICountPerCPU: [Int] = []
    /// The GICv4/GICv4.1 facts `gic_rdists` holds and the vPE tables each CPU set up
    /// (`GICv4RDists.swift`), and the VMs whose vPEs the host ITS driver manages.
    public internal(set) var gicv4 = GICv4HostState()
    /// `its_vpeid_ida`: vPEIDs in use.
    var vpeIDsInUse: Set<UInt16> = []
    /// `struct its_vm`s allocated through `its_alloc_vcpu_irqs`, in allocation order.
    public internal(set) var itsVMs: [ITSVM] = []

    init(kernel: LinuxKernel) { self.kernel = kernel }

    /// Number of CPUs the kernel runs (`nr_cpu_ids`).
    public var cpuCount: Int { max(kernel.cpuInterface.cpuCount, 1) }

    /// The descriptor of Linux interrupt `irq` (`irq_to_desc`).
    public func descriptor(_ irq: Int) -> IRQDescriptor? { descriptors[irq] }

    /// All descriptors in number order (/proc/interrupts).
    public var sortedDescriptors: [IRQDescriptor] { descriptors.keys.sorted().compactMap { descriptors[$0] } }
}

extension IRQSubsystem {
    /// `its_inc_lpi_count` / `its_dec_lpi_count`: the managed or the unmanaged count.
    func adjustLPICount(cpu: Int, by delta: Int, managed: Bool = false) {
        if managed {
            if managedLPICountPerCPU.count < lpiCountPerCPU.count {
                managedLPICountPerCPU += Array(repeating: 0, count: lpiCountPerCPU.count - managedLPICountPerCPU.count)
            }
            guard managedLPICountPerCPU.indices.contains(cpu) else { return }
            managedLPICountPerCPU[cpu] = max(managedLPICountPerCPU[cpu] + delta, 0)
            return
        }
        guard lpiCountPerCPU.indices.contains(cpu) else { return }
        lpiCountPerCPU[cpu] = max(lpiCountPerCPU[cpu] + delta, 0)
    }

    /// `its_read_lpi_count(d, cpu)`.
    func lpiCount(cpu: Int, managed: Bool) -> Int {
        let counts = managed ? managedLPICountPerCPU : lpiCountPerCPU
        return counts.indices.contains(cpu) ? counts[cpu] : 0
    }

    func driver(_ descriptor: IRQDescriptor) throws(Errno) -> (GICv3ITSDriver, ITSDevice) {
        guard kernel.itsDrivers.indices.contains(descriptor.itsIndex) else { throw .EINVAL }
        let driver = kernel.itsDrivers[descriptor.itsIndex]
        guard let device = descriptor.itsDevice else { throw .EINVAL }
        return (driver, device)
    }

    func lookup(_ irq: Int) throws(Errno) -> IRQDescriptor {
        guard let d = descriptors[irq] else { throw .EINVAL }
        return d
    }

    /// `request_irq(irq, handler, 0, name, dev)`: installs the action; `__setup_irq` then
    /// `irq_activate` (re-activates an interrupt that `free_irq` deactivated: MAPTI + message
    /// write) and `irq_startup` → `irq_enable` → unmask: the PCI/MSI chip's `irq_unmask`
    /// (`pci_msi_unmask` — the MSI-X entry's Mask bit or the MSI mask bit — and the parent's
    /// `its_unmask_irq`: LPI Enable + INV + SYNC). EBUSY if the interrupt already has an action
    /// (no IRQF_SHARED here), EINVAL for an unknown number.
    public func requestIRQ(_ irq: Int, name: String, handler: @escaping (_ irq: Int, _ cpu: Int) -> IRQReturn) throws(Errno) {
        try requestIRQ(irq, action: IRQAction(name: name, kind: .handler(handler)))
    }

    /// `request_irq` with VFIO's `vfio_msihandler`: the handler signals `eventfd`.
    public func requestIRQ(_ irq: Int, name: String, eventfd: EventFD) throws(Errno) {
        try requestIRQ(irq, action: IRQAction(name: name, kind: .eventfd(eventfd)))
    }

    public func requestIRQ(_ irq: Int, action: IRQAction) throws(Errno) {
        let d = try lookup(irq)
        guard d.action == nil else { throw .EBUSY }
        if d.isSPI {
            d.action = action
            if isSPIMSI(d) { try activateSPIMSI(d) }
            try startSPI(d)
            return
        }
        d.action = action
        try activate(irq: irq)
        try setupStartupAffinity(d)
        d.isStarted = true
        try unmask(irq: irq)
    }

    /// `irq_startup`'s affinity step: a managed interrupt takes its spread mask
    /// (`IRQ_STARTUP_MANAGED` → `irq_do_set_affinity(d, aff, false)`); an unmanaged one
    /// `irq_setup_affinity`: the mask user space or a driver set, else `irq_default_affinity`
    /// (every CPU), ANDed with the online CPUs. Either way `msi_domain_set_affinity` →
    /// `its_set_affinity(d, mask, false)`: uncount the current CPU, `its_select_cpu(d, mask)`,
    /// MOVI if it differs, count the new one. Activation already chose a CPU over the online
    /// mask (`its_irq_domain_activate` passes `cpu_online_mask`), so this is where a managed
    /// vector reaches its own CPU; an unmanaged one whose activation was the latest change to
    /// the counts stays where it is.
    func setupStartupAffinity(_ d: IRQDescriptor) throws(Errno) {
        guard d.isActivated, !d.isStarted else { return }
        let (driver, device) = try driver(d)
        try driver.reselectCPU(d, device: device, among: d.affinity)
    }

    /// `free_irq` → `__free_irq`: the action is removed; as it was the last one, `irq_shutdown`
    /// masks the interrupt (PCI vector and LPI) and then "there is no interrupt on the fly
    /// anymore. Deactivate it completely": `irq_domain_deactivate_irq` — an all-zero message
    /// written to the device and DISCARD + SYNC on the ITS. The Linux number, the event and the
    /// descriptor stay until `pci_free_irq_vectors`; a later `request_irq` activates again.
    public func freeIRQ(_ irq: Int) throws(Errno) {
        let d = try lookup(irq)
        guard d.action != nil else { return }
        d.action = nil
        if d.isSPI {
            try maskSPI(d, masked: true)
            d.isStarted = false
            if isSPIMSI(d) { try deactivateSPIMSI(d) }
            return
        }
        try mask(irq: irq)
        d.isStarted = false
        try deactivate(irq: irq)
    }

    /// `mask_irq` through the chip hierarchy: the PCI vector (`pci_msi_mask`) and the LPI
    /// (`its_mask_irq`).
    public func mask(irq: Int) throws(Errno) {
        let d = try lookup(irq)
        if d.isSPI { return try maskSPI(d, masked: true) }
        if let msi = d.msiDescriptor, let dev = d.device?.pci { try kernel.pci.maskVector(dev, msi, masked: true, vector: d.irq - msi.irq) }
        let (driver, device) = try driver(d)
        try driver.updateConfiguration(d, device: device, enable: false)
        d.isMasked = true
    }

    /// `unmask_irq`: the reverse of `mask(irq:)`.
    public func unmask(irq: Int) throws(Errno) {
        let d = try lookup(irq)
        if d.isSPI { return try maskSPI(d, masked: false) }
        let (driver, device) = try driver(d)
        try driver.updateConfiguration(d, device: device, enable: true)
        if let msi = d.msiDescriptor, let dev = d.device?.pci { try kernel.pci.maskVector(dev, msi, masked: false, vector: d.irq - msi.irq) }
        d.isMasked = false
    }

    /// `irq_set_affinity(irq, cpumask_of(cpu))` → `msi_domain_set_affinity` →
    /// `its_set_affinity` (MOVI + SYNC). The MSI message does not change on the ITS (the
    /// doorbell and EventID are per device, not per CPU), so nothing is rewritten in the device.
    public func setAffinity(irq: Int, cpu: Int) throws(Errno) {
        let d = try lookup(irq)
        // A GICv2 has no redistributors: its CPUs are its CPU interfaces.
        let cpus = kernel.topology.gic?.architecture == .v2 ? cpuCount : redistributors.count
        guard cpu >= 0, cpu < cpus else { throw .EINVAL }
        // `irq_can_set_affinity_usr`: a managed interrupt's affinity is the kernel's (EIO from
        // /proc/irq/N/smp_affinity).
        guard !d.isManaged else { throw .EIO }
        if d.isSPI { return try setSPIAffinity(d, cpu: cpu) }
        let (driver, device) = try driver(d)
        d.affinity = [cpu]
        if d.isActivated { try driver.setAffinity(d, device: device, cpu: cpu) }
        if let msi = d.msiDescriptor, msi.irq == d.irq { msi.cpu = cpu }
    }

    /// `gic_handle_irq` on `cpu`, once per exception the CPU takes while something is
    /// signalled: read ICC_IAR1_EL1; 1020–1023 (spurious) ends the loop; with EOImode = 1
    /// (`supports_deactivate_key`, see `usesEOImodeDrop`) `gic_complete_ack` drops the priority
    /// at once (ICC_EOIR1_EL1); then `generic_handle_domain_irq` → the flow handler, and the
    /// chip's `irq_eoi`: `gic_eoimode1_eoi_irq` (ICC_DIR_EL1 for an SGI/PPI/SPI, nothing for an
    /// LPI) or `gic_eoi_irq` (ICC_EOIR1_EL1). An INTID without a descriptor is recorded in
    /// `spuriousINTIDs` and `gic_deactivate_unhandled` ends it the same way.
    ///
    /// LPIs: the action runs, counted in `kstat_irqs` for this CPU; an LPI without an action is
    /// counted there and as unhandled. SPIs: `handle_fasteoi_irq` (see `handleFastEOI`).
    /// At most 4096 interrupts are taken per call (a line nobody clears would otherwise be
    /// taken forever; Linux's `note_interrupt` disables such a line after 100000, not
    /// modelled). Returns how many interrupts were taken.
    @discardableResult
    public func handleInterrupts(cpu: Int) -> Int {
        var taken = 0
        let limit = 4096
        let split = usesEOImodeDrop
        while taken < limit {
            let intid = kernel.cpuInterface.readIAR1(cpu: cpu)
            if intid >= 1020 && intid <= 1023 { break }
            taken += 1
            if split { kernel.cpuInterface.writeEOIR1(cpu: cpu, intid) }
            let d = descriptorByHWIRQ[intid]
            if let journal = kernel.journal {
                if kernel.role != .guest {
                    journal.append(.hostInterrupt(cpu: cpu, hwirq: intid, irq: d?.irq, handler: d?.action?.name))
                } else if let d, d.action != nil {
                    journal.append(.guestHandler(irq: d.irq, lpi: intid, cpu: cpu))
                }
            }
            if let d {
                if d.isSPI {
                    handleFastEOI(d, cpu: cpu)
                } else {
                    if d.perCPUCount.indices.contains(cpu) { d.perCPUCount[cpu] += 1 }
                    if let action = d.action {
                        if action.run(irq: d.irq, cpu: cpu, journal: kernel.journal) == .none { d.unhandledCount += 1 }
                    } else {
                        d.unhandledCount += 1
                    }
                }
            } else {
                spuriousINTIDs.append(intid)
            }
            if split {
                if intid < 8192 { kernel.cpuInterface.writeDIR(cpu: cpu, intid) }
            } else {
                kernel.cpuInterface.writeEOIR1(cpu: cpu, intid)
            }
        }
        return taken
    }

    /// `handle_fasteoi_irq` (kernel/irq/chip.c), the flow `gic_irq_domain_map` gives SPIs: with
    /// no action or the interrupt disabled the core marks it `IRQS_PENDING` (`replayPending`)
    /// and masks it (`mask_irq` → `gic_mask_irq`, GICD_ICENABLER); otherwise it counts the
    /// interrupt in `kstat_irqs` for this CPU and runs the action (`handle_irq_event`; an
    /// `IRQ_NONE` counts as unhandled, `note_interrupt`). The GICv3 chip has no
    /// `IRQCHIP_EOI_IF_HANDLED`, so `irq_eoi` follows either way (in `handleInterrupts`). For a
    /// level-sensitive SPI the driver's handler must clear the device's interrupt condition
    /// before that: if the wire is still asserted at deactivation the SPI is pending again and
    /// taken again.
    func handleFastEOI(_ d: IRQDescriptor, cpu: Int) {
        guard let action = d.action, d.isStarted else {
            d.replayPending = true
            d.unhandledCount += 1
            try? maskSPI(d, masked: true)
            return
        }
        if d.perCPUCount.indices.contains(cpu) { d.perCPUCount[cpu] += 1 }
        if action.run(irq: d.irq, cpu: cpu, journal: kernel.journal) == .none { d.unhandledCount += 1 }
    }

    /// The descriptor of the interrupt whose INTID is `hwirq`.
    public func descriptor(hwirq: UInt32) -> IRQDescriptor? { descriptorByHWIRQ[hwirq] }
}
