import Bus

/// A GICv3 (or GICv4, physical LPIs only) interrupt controller: distributor, one redistributor
/// and CPU interface per PE, and any number of ITSs, mapped onto a `SystemBus`.
///
/// Software drives it as on hardware: MMIO to GICD/GICR/GITS, tables and the command queue in
/// RAM, and the CPU-interface calls `acknowledge(cpu:)` / `endOfInterrupt(cpu:intid:)` standing
/// in for ICC_IAR1_EL1 / ICC_EOIR1_EL1 reads and writes.
public final class GICv3 {
    public let configuration: GICConfiguration
    public let distributor: Distributor
    public let redistributors: [Redistributor]
    public let cpuInterfaces: [CPUInterface]
    /// The LPI configuration cache shared by all redistributors (GICR_TYPER.CommonLPIAff = 0).
    public let lpiConfigurationCache: LPIConfigurationCache
    public private(set) var itss: [ITS] = []
    /// GICv2m MSI frames (`addV2mFrame`), in creation order.
    public internal(set) var v2mFrames: [GICv2mMSIFrame] = []
    unowned(safe) var bus: SystemBus?
    public private(set) var distributorBase: PhysicalAddress?
    public private(set) var redistributorBase: PhysicalAddress?

    /// Trace log shared by the ITSs and redistributors (nil = off).
    public var trace: TraceLog? {
        didSet {
            for its in itss { its.trace = trace }
            for rd in redistributors { rd.trace = trace }
            for frame in v2mFrames { frame.trace = trace }
        }
    }

    /// GICD/GICR/GITS_IIDR: JEP106 code for Arm (0x43B) in Implementer[11:0], revision and product
    /// 0, the value QEMU's GICv3 reports (`gicv3_iidr`).
    public static let iidr: UInt32 = 0x43B

    /// The IIDR of Arm's GIC-500 r1p1 (Implementer 0x43B, Revision 1, Variant 1, ProductID 0):
    /// the value Linux's `its_quirks` entry "ITS: Socionext Synquacer pre-ITS" matches exactly
    /// (`.iidr = 0x0001143b, .mask = 0xffffffff`, drivers/irqchip/irq-gic-v3-its.c), and which
    /// TI K3 ITSs report (their boot logs print "GIC: enabling workaround for ITS: Socionext
    /// Synquacer pre-ITS", which `gic_enable_quirks` prints only on that match).
    public static let gic500r1p1IIDR: UInt32 = 0x0001_143B

    /// GICD/GICR/GITS_PIDR2: ArchRev[7:4] (3 or 4; Linux `GIC_PIDR2_ARCH_MASK`) and JEP106
    /// bits [2:0] = 0b011 with JEDEC-used bit 3, i.e. 0x3B for GICv3 (QEMU's id registers).
    public static func pidr2(version: Int) -> UInt32 { UInt32(version >= 4 ? 4 : 3) << 4 | 0xB }

    /// MPIDR-style affinity of PE `cpu`: Aff0 = cpu mod 16, Aff1 = cpu / 16, the clustering QEMU
    /// `virt` uses with GICv3 (16 PEs per cluster, the GICv3 target-list width). Not re-verified
    /// against the current QEMU tree; pass `affinities:` to override.
    public static func defaultAffinity(ofCPU cpu: Int) -> UInt32 {
        UInt32(truncatingIfNeeded: (cpu / 16) << 8 | cpu % 16)
    }

    public init(configuration: GICConfiguration = .qemuVirt, affinities: [UInt32]? = nil) {
        let c = configuration.normalized
        self.configuration = c
        distributor = Distributor(configuration: c)
        let cache = LPIConfigurationCache(lpiCount: Int(c.lpiLimit) - 8192)
        lpiConfigurationCache = cache
        redistributors = (0..<c.cpuCount).map { cpu in
            let affinity = affinities.flatMap { cpu < $0.count ? $0[cpu] : nil } ?? GICv3.defaultAffinity(ofCPU: cpu)
            return Redistributor(processorNumber: cpu, affinity: affinity, isLast: cpu == c.cpuCount - 1, configuration: c,
                                 configurationCache: cache)
        }
        cpuInterfaces = (0..<c.cpuCount).map { CPUInterface(cpu: $0) }
        distributor.owner = self
        for rd in redistributors { rd.owner = self }
    }

    /// Maps the distributor (64 KiB) and the redistributors (one `redistributorStride` each,
    /// contiguous, the last with GICR_TYPER.Last=1) onto `bus`. The GIC keeps an unowned
    /// reference: the bus must outlive it (the bus owns its devices).
    public func attach(to bus: SystemBus, distributorBase: PhysicalAddress, redistributorBase: PhysicalAddress) throws(BusError) {
        try attach(to: bus, distributorBase: distributorBase,
                   redistributorRegions: [(redistributorBase, .max)], stride: nil)
    }

    /// Maps the distributor and the redistributors across several regions, as a device tree's
    /// `#redistributor-regions` / `redistributor-stride` describe them (binding arm,gic-v3):
    /// redistributors fill the first region frame by frame (`stride`, or the architectural frame
    /// size for this version when nil), then the next; the last frame placed in each region has
    /// GICR_TYPER.Last=1, which is how software (Linux `gic_iterate_rdists`) finds the end of a
    /// region. Redistributors that fit in no region are not mapped (their rdBase stays nil).
    public func attach(to bus: SystemBus, distributorBase: PhysicalAddress,
                       redistributorRegions: [(base: PhysicalAddress, size: UInt64)], stride: UInt64?) throws(BusError) {
        self.bus = bus
        // GICv3 GICD is 64 KiB; a GICv2's is 4 KiB (IHI 0048B §4.1.2), and boards put GICC
        // right after it (RK3328: GICD 0xff81_1000, GICC 0xff81_2000).
        try bus.addDevice(distributor, base: distributorBase, size: configuration.version == 2 ? 0x1000 : 0x1_0000, name: "gicd")
        let frame = configuration.redistributorStride
        let step = max(stride ?? frame, frame)
        var next = 0
        for region in redistributorRegions where next < redistributors.count {
            var offset: UInt64 = 0
            var placedInRegion: Redistributor?
            while next < redistributors.count {
                let (end, overflow) = offset.addingReportingOverflow(frame)
                guard !overflow, end <= region.size, let base = region.base.adding(offset) else { break }
                let rd = redistributors[next]
                try bus.addDevice(rd, base: base, size: frame, name: "gicr\(rd.processorNumber)")
                rd.rdBase = base
                rd.bus = bus
                rd.isLast = false
                placedInRegion = rd
                next += 1
                let (advanced, o2) = offset.addingReportingOverflow(step)
                guard !o2 else { break }
                offset = advanced
            }
            placedInRegion?.isLast = true
        }
        self.distributorBase = distributorBase
        self.redistributorBase = redistributorRegions.first?.base
    }

    /// Creates an ITS with its 128 KiB frame (control + translation) at `base` on the attached
    /// bus. Throws if the GIC is not attached or the frame overlaps another region.
    /// `entryStorage`: where the ITS keeps its DTEs/ITEs/CTEs instead of the memory tables (an
    /// emulated ITS's own lists; nil for hardware).
    @discardableResult
    public func addITS(base: PhysicalAddress, entryStorage: (any ITSEntryStorage)? = nil) throws(BusError) -> ITS {
        guard let bus else { throw .deviceError(base, "GIC not attached to a bus") }
        let its = ITS(gic: self, bus: bus, number: itss.count, entryStorage: entryStorage)
        try bus.addDevice(its, base: base, size: ITS.frameSize, name: "gits\(itss.count)")
        its.base = base
        its.trace = trace
        itss.append(its)
        return its
    }

    // MARK: - Target resolution

    /// The redistributor an ITS target names, per GITS_TYPER.PTA: a processor number, or the
    /// RD_base physical address [51:16].
    @inlinable
    func redistributorIndex(for target: ITSTarget) -> Int? {
        if !configuration.physicalTargetAddresses {
            return target.rawValue < UInt64(redistributors.count) ? Int(target.rawValue) : nil
        }
        // RDbase names the redistributor's frame address, wherever its region put it.
        let address = target.physicalAddress
        return redistributors.firstIndex { $0.rdBase == address }
    }

    /// The target field that names redistributor `cpu` under this GIC's PTA setting (what
    /// software puts in MAPC/MOVALL/SYNC after reading GITS_TYPER.PTA and GICR_TYPER).
    public func target(ofCPU cpu: Int) -> ITSTarget {
        if configuration.physicalTargetAddresses, cpu >= 0, cpu < redistributors.count, let base = redistributors[cpu].rdBase {
            return .address(base)
        }
        return .processor(cpu)
    }

    // MARK: - CPU interface

    /// ICC_IAR1_EL1 on PE `cpu`: acknowledges and returns the highest-priority pending interrupt
    /// — an enabled LPI of its redistributor or an SPI the distributor routes to it — below the
    /// priority mask and the running priority, or 1023. Ties go to the lowest INTID (so an SPI
    /// before an LPI of equal priority). An LPI's pending bit clears; an SPI becomes active.
    public func acknowledge(cpu: Int) -> UInt32 {
        guard cpu >= 0, cpu < cpuInterfaces.count else { return INTID.spurious.rawValue }
        let interface = cpuInterfaces[cpu]
        let rd = redistributors[cpu]
        let threshold = interface.signalThreshold
        let lpi = rd.enableLPIs ? rd.highestPriorityPending(below: threshold) : nil
        let spi = distributor.highestPriorityPendingSPI(affinity: rd.affinity, cpu: cpu, below: lpi.map { UInt16($0.priority) + 1 } ?? threshold)
        if let spi {
            distributor.activate(intid: spi.intid)
            interface.recordAcknowledge(CPUInterface.Delivery(intid: INTID(spi.intid), priority: spi.priority))
            trace?.append(.cpu, "acknowledge", value: UInt64(spi.intid),
                          "CPU\(cpu) takes SPI \(spi.intid) (priority \(Hex.format(UInt64(spi.priority), minDigits: 2)))")
            return spi.intid
        }
        guard let (intid, priority) = lpi else {
            interface.counters.spuriousAcknowledges &+= 1
            return INTID.spurious.rawValue
        }
        rd.clearPending(intid)
        interface.recordAcknowledge(CPUInterface.Delivery(intid: intid, priority: priority))
        trace?.append(.cpu, "acknowledge", value: UInt64(intid.rawValue),
                      "CPU\(cpu) takes LPI \(intid.rawValue) (priority \(Hex.format(UInt64(priority), minDigits: 2)))")
        return intid.rawValue
    }

    /// ICC_EOIR1_EL1 on PE `cpu`: priority drop of the innermost active interrupt; with
    /// EOImode = 0 also the deactivation of `intid` (an SPI's active state clears).
    public func endOfInterrupt(cpu: Int, intid: UInt32) {
        guard cpu >= 0, cpu < cpuInterfaces.count else { return }
        let interface = cpuInterfaces[cpu]
        if interface.endOfInterrupt(INTID(intid)), intid < 8192, distributor.deactivate(intid: intid) {
            interface.counters.deactivations &+= 1
        }
    }

    /// ICC_DIR_EL1 on PE `cpu`: deactivates `intid` when EOImode = 1 (an SPI's active state
    /// clears; an LPI has none). With EOImode = 0 the write is UNPREDICTABLE and ignored.
    public func deactivate(cpu: Int, intid: UInt32) {
        guard cpu >= 0, cpu < cpuInterfaces.count else { return }
        let interface = cpuInterfaces[cpu]
        guard interface.eoiMode, intid < 8192 else {
            if !interface.eoiMode { interface.counters.ignoredDeactivations &+= 1 }
            return
        }
        if distributor.deactivate(intid: intid) {
            interface.counters.deactivations &+= 1
        } else {
            interface.counters.ignoredDeactivations &+= 1
        }
    }

    /// ICC_CTLR_EL1.EOImode on PE `cpu`.
    public func setEOIMode(cpu: Int, _ dropOnly: Bool) {
        guard cpu >= 0, cpu < cpuInterfaces.count else { return }
        cpuInterfaces[cpu].eoiMode = dropOnly
    }

    /// ICC_PMR_EL1 on PE `cpu`.
    public func setPriorityMask(cpu: Int, _ mask: UInt8) {
        guard cpu >= 0, cpu < cpuInterfaces.count else { return }
        cpuInterfaces[cpu].priorityMask = mask
    }

    // MARK: - Register helpers

    /// `old` with the `size` bytes at byte `at` replaced by the low bytes of `value` (a 32-bit
    /// access to half of a 64-bit register).
    @inlinable
    static func merge(_ old: UInt64, at: UInt64, size: Int, value: UInt64) -> UInt64 {
        guard size < 8 else { return value }
        let shift = (at & 7) &* 8
        let mask = UInt64.lowMask(size * 8) &<< shift
        return (old & ~mask) | ((value &<< shift) & mask)
    }
}

extension GICv3 {
    /// Takes `other`'s attachment and ITS list (a forked world's copy; the caller copied the
    /// parts).
    func copyAttachment(of other: GICv3, bus: SystemBus?, itss: [ITS]) {
        self.bus = bus
        distributorBase = other.distributorBase
        redistributorBase = other.redistributorBase
        self.itss = itss
    }
}
