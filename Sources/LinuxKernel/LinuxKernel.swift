import Bus
import Firmware

/// One instance of the Linux model: the host on the physical machine now, and the guest on the
/// VM's bus later (the same code: docs/architecture.md, principle 2). It reaches hardware only through MMIO
/// and memory on `bus`, and the GIC CPU interface's system registers.
///
/// `boot()` probes in the order Linux's initcalls reach these drivers: the GIC and its ITSs
/// (irqchip, early), the SMMUs (arm-smmu-v3 platform driver), then the PCI host bridge and
/// its functions, each of which the IOMMU core probes into a group with a default domain.
public final class LinuxKernel {
    /// Where this kernel runs: the host (entered at EL2, the GIC's EOImode drop/deactivate
    /// split) or a guest (EL1). Decides which journal entries the IRQ core appends.
    public let role: KernelRole
    public let bus: SystemBus
    public let topology: Topology
    public let configuration: KernelConfiguration
    public let cpuInterface: any CPUInterfaceRegisters
    public let log: KernelLog
    /// The functions that refused something, with errno and window/ID: the causes reports name.
    public let refusals: KernelRefusals
    /// The journal of the message being followed, if any: the IRQ core appends each interrupt
    /// it takes (a host interrupt, or a guest handler when `role` is `.guest`), `eventfd_signal`
    /// under it appends its signal, KVM its vITS translations and injections.
    public var journal: Journal?
    public let mmio: MMIOAccess
    public let pages: PhysicalPages
    /// Every device the kernel knows, in discovery order.
    public internal(set) var devices: [Device] = []

    // Subsystems.
    public lazy var irq = IRQSubsystem(kernel: self)
    public lazy var pci = PCISubsystem(kernel: self)
    public lazy var iommu = IOMMUSubsystem(kernel: self)
    public lazy var dma = DMAMapping(kernel: self)
    public lazy var vfio = VFIOSubsystem(kernel: self)
    /// virt/lib/irqbypass.c: VFIO's interrupt producers and KVM's irqfd consumers, paired by
    /// eventfd (`IRQBypass.swift`).
    public let irqBypass: IRQBypassManager
    /// Open /dev/iommu file descriptors (`iommufd_fops_open` creates one context each).
    public internal(set) var iommufdContexts: [IOMMUFD] = []

    /// Every device's IOMMU driver state goes with the kernel (`iommu_release_device` →
    /// `arm_smmu_release_device` frees the master). The master names its device
    /// (`master->dev`) and the device holds its master (`dev_iommu_priv_set`), both strongly
    /// here because either may be reached alone (a domain's attached masters, a device a test
    /// keeps); cutting the device's side when the kernel goes frees them both.
    deinit {
        for device in devices { device.iommu?.driverData = nil }
    }

    /// `open("/dev/iommu")`: a new iommufd context.
    public func openIOMMUFD() -> IOMMUFD {
        let context = IOMMUFD(kernel: self)
        iommufdContexts.append(context)
        return context
    }
    /// One driver instance per ITS node, per SMMUv3 node.
    public internal(set) var itsDrivers: [GICv3ITSDriver] = []
    public internal(set) var smmuDrivers: [ArmSMMUv3Driver] = []
    /// One arm-smmu driver instance per Arm SMMUv1/v2 node (MMU-500, `arm,smmu-v2`).
    public internal(set) var armSMMUDrivers: [ArmSMMUDriver] = []
    /// A per-kernel counter for object ids (domains, groups) in reports.
    var nextObjectID = 0

    /// Page frames for the kernel's own allocations: RAM from the description, less
    /// `reservedTop` bytes at the top of the first window (left for whoever builds the machine).
    public init(role: KernelRole = .host, topology: Topology, bus: SystemBus, cpuInterface: any CPUInterfaceRegisters,
                configuration: KernelConfiguration = KernelConfiguration()) {
        self.role = role
        self.topology = topology
        self.bus = bus
        self.cpuInterface = cpuInterface
        self.configuration = configuration
        self.mmio = MMIOAccess(bus: bus)
        self.pages = PhysicalPages(bus: bus, ranges: topology.usableMemory.map { ($0.base.rawValue, $0.size) })
        self.log = KernelLog()
        self.refusals = KernelRefusals()
        self.irqBypass = IRQBypassManager()
    }

    /// A forked world's kernel before its subsystems and drivers are copied into it: the same
    /// role, description and configuration, on the copied bus and CPU interface, with copies of
    /// the log, refusals, page allocator and irqbypass registry. No journal: a fork starts with
    /// none attached (whoever follows a message attaches its own).
    init(copying original: LinuxKernel, map: inout CloneMap) {
        role = original.role
        topology = original.topology
        configuration = original.configuration
        bus = map.clone(original.bus)
        guard let cpuInterface = map.cloneDynamic(original.cpuInterface) as? any CPUInterfaceRegisters else {
            preconditionFailure("LinuxKernel: its CPU interface (\(type(of: original.cpuInterface))) cannot be copied into a forked world")
        }
        self.cpuInterface = cpuInterface
        mmio = MMIOAccess(bus: bus)
        pages = map.clone(original.pages)
        log = map.clone(original.log)
        refusals = map.clone(original.refusals)
        irqBypass = map.clone(original.irqBypass)
        nextObjectID = original.nextObjectID
    }

    /// Probes everything, in initcall order: the ITS, the SMMUs (and the IORT's ACS request),
    /// PCI enumeration (each function's IOMMU at its `device_add` from v6.15,
    /// `iommuProbeAtDeviceAdd`; before it, at driver probe), then the PCIe port driver on
    /// every port.
    public func boot() throws(Errno) {
        try irq.probe()
        try probeSMMUs()
        pci.requestACSFromIORT()
        try pci.enumerate()
        pci.bindPortDriver()
    }

    func probeSMMUs() throws(Errno) {
        for (index, node) in topology.smmus.enumerated() where node.enabled {
            let driver = ArmSMMUv3Driver(kernel: self, index: smmuDrivers.count, node: node)
            try driver.probe()
            smmuDrivers.append(driver)
            log.log("arm-smmu-v3", "\(node.path): probed as smmu\(index)")
        }
        // arm-smmu (SMMUv1/v2) platform driver: device-tree nodes `arm_smmu_of_match` binds and
        // IORT SMMUv1/v2 nodes whose model `acpi_smmu_get_data` knows.
        for (index, node) in topology.otherIOMMUs.enumerated() where node.enabled && node.isArmSMMU && !node.regions.isEmpty {
            let driver = ArmSMMUDriver(kernel: self, index: armSMMUDrivers.count, node: node, nodeIndex: index)
            do { try driver.probe() } catch {
                log.log("arm-smmu", "\(node.path): probe failed (\(error))")
                continue
            }
            armSMMUDrivers.append(driver)
        }
    }

    func makeObjectID() -> Int {
        nextObjectID += 1
        return nextObjectID
    }

    /// Registers a device the kernel discovered (the PCI core calls this).
    public func addDevice(_ device: Device) {
        devices.append(device)
    }
}

/// Where a `LinuxKernel` runs. The raw value names it in logs and reports.
public enum KernelRole: String, Hashable, Sendable {
    case host
    case guest
}
