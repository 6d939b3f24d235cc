/// `struct irq_desc` with its `irq_data`: one Linux interrupt number (virq) and everything the
/// core keeps about it.
///
/// In the ITS hierarchy the top level is the PCI/MSI domain and the bottom the ITS domain; the
/// model folds the levels into one descriptor that knows its ITS device and event (the
/// bottom's `irq_data`), its MSI descriptor (the top's `msi_desc`) and its state flags.
public final class IRQDescriptor {
    /// The Linux interrupt number (`desc->irq_data.irq`).
    public let irq: Int
    /// `irq_data.hwirq` in the ITS domain: the LPI's INTID.
    public let hwirq: UInt32
    /// `irq_chip.name` of the top level ("ITS-PCI-MSIX-0000:00:01.0" style names are Linux's
    /// since the per-device MSI domains; the model keeps the chip family).
    public let chipName: String
    /// The device the interrupt belongs to.
    public weak var device: Device?
    /// The MSI descriptor (`irq_data_get_msi_desc`).
    public weak var msiDescriptor: MSIDescriptor?
    /// The ITS that translates it and the device's event.
    public let itsIndex: Int
    public let eventID: UInt32
    /// The ITS device (`irq_data_get_irq_chip_data` in the ITS domain).
    public internal(set) var itsDevice: ITSDevice?
    /// For an MSI delivered as an SPI: the v2m frame or MBI range whose SPI it is, and its domain
    /// (`irq_data_get_irq_chip_data` in the v2m/MBI domain).
    public internal(set) var spiRange: GICSPIMSIDomain.Range?
    var spiDomain: GICSPIMSIDomain?
    /// `desc->action`, nil until `request_irq`.
    public internal(set) var action: IRQAction?
    /// `kstat_irqs` per CPU (what /proc/interrupts prints).
    public internal(set) var perCPUCount: [Int]
    /// The CPU the ITS routes it to (`irq_data_get_effective_affinity_mask`; the collection of
    /// its ITE).
    public internal(set) var effectiveCPU: Int
    /// The affinity mask (`irq_data_get_affinity_mask`) as a CPU list; nil = every CPU (the
    /// default for an unmanaged interrupt). For an unmanaged interrupt a non-nil mask is one
    /// user space or a driver set (`IRQD_AFFINITY_SET`); a managed one has its spread mask.
    public internal(set) var affinity: [Int]?
    /// `irqd_affinity_is_managed`: its mask came from `irq_create_affinity_masks` with
    /// `is_managed` (a spread vector of `PCI_IRQ_AFFINITY`); user space cannot move it.
    public internal(set) var isManaged = false
    /// `irqd_is_activated`: MAPTI done and the message written to the device.
    public internal(set) var isActivated = false
    /// `irqd_irq_masked`.
    public internal(set) var isMasked = true
    /// `irqd_irq_disabled`: true until `request_irq` starts it up.
    public internal(set) var isStarted = false
    /// Interrupts that arrived with no action installed (`note_interrupt` / spurious count).
    public internal(set) var unhandledCount = 0
    /// `IRQS_PENDING`: an SPI taken while it had no action or was disabled, which
    /// `handle_fasteoi_irq` masked and left for a replay.
    public internal(set) var replayPending = false
    /// `irqd_is_forwarded_to_vcpu` with the event's `its_vlpi_map`: the LPI is a vLPI of a
    /// vPE (`ITSVLPI.swift`), so the host no longer takes it.
    public internal(set) var vlpiMap: ITSVLPIMap?

    init(irq: Int, hwirq: UInt32, chipName: String, device: Device?, msiDescriptor: MSIDescriptor?,
         itsIndex: Int, eventID: UInt32, cpuCount: Int) {
        self.irq = irq
        self.hwirq = hwirq
        self.chipName = chipName
        self.device = device
        self.msiDescriptor = msiDescriptor
        self.itsIndex = itsIndex
        self.eventID = eventID
        self.perCPUCount = Array(repeating: 0, count: max(cpuCount, 1))
        self.effectiveCPU = 0
    }

    /// A wired interrupt of the GIC's own domain (an SPI), not an ITS LPI.
    public var isSPI: Bool { itsIndex < 0 }

    /// Total count over all CPUs.
    public var count: Int { perCPUCount.reduce(0, +) }
}
