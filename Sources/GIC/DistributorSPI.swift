import Bus

/// The distributor's SPI state machine (GICv3/v4 architecture, IHI 0069, §4.1 "Interrupt
/// lifecycle", §4.5 "Affinity routing", §12.9 "The GIC Distributor register descriptions"):
/// which SPI a CPU interface may take, and the pending → active → inactive transitions its
/// acknowledge and deactivation cause.
///
/// An SPI is signalled to a PE when all hold:
/// - GICD_CTLR.EnableGrp1NS[1] and GICD_CTLR.ARE_NS[4] are set. Legacy (ARE = 0) routing through
///   GICD_ITARGETSR is not modelled: without ARE no SPI is forwarded (this model's choice; Linux
///   always sets ARE, `gic_dist_init`).
/// - GICD_IGROUPR<n> makes it Group 1: ICC_IAR1_EL1 only returns Group 1 interrupts, and this
///   GIC has a single Security state (GICD_CTLR.DS = 1 as on QEMU `virt` without EL3), so there
///   is no Secure Group 1; GICD_IGRPMODR is not consulted.
/// - GICD_ISENABLER<n> has it enabled.
/// - It is pending and not active (an active, or active-and-pending, interrupt is not signalled
///   again until it is deactivated, §4.1.2).
/// - GICD_IROUTER<n> names the PE (Interrupt_Routing_Mode = 0, Aff3.Aff2.Aff1.Aff0 equal to the
///   PE's affinity); an IROUTER naming no PE forwards the SPI nowhere. With
///   Interrupt_Routing_Mode = 1 (1-of-N) the architecture lets the implementation choose among
///   participating PEs; here the SPI is a candidate on every PE and the first PE to acknowledge
///   it takes it (this model's choice).
/// - Its priority (GICD_IPRIORITYR<n>, all 8 bits kept) is below the CPU interface's threshold.
///
/// Pending state: a level-sensitive SPI (GICD_ICFGR<n> Int_config[1] = 0) is pending while its
/// wire is asserted or while a GICD_ISPENDR write has latched it; an edge-triggered one
/// (Int_config[1] = 1) is pending from a rising edge of its wire, or an ISPENDR write, until it
/// is acknowledged or cleared through GICD_ICPENDR. Acknowledging clears the latch and sets the
/// active state; a level-sensitive SPI whose wire is still asserted is then active and pending.
extension Distributor {
    /// Drives SPI `intid`'s input wire. A level-sensitive SPI is pending while it is asserted;
    /// for an edge-triggered SPI a rising edge latches the pending state (§4.1.2). Returns false
    /// for an INTID that is not an implemented SPI.
    @discardableResult
    public func setLevel(intid: UInt32, asserted: Bool) -> Bool {
        guard isImplementedSPI(intid) else { return false }
        let word = Int(intid / 32)
        let bit = UInt32(1) << (intid % 32)
        let was = levelBits[word] & bit != 0
        if asserted { levelBits[word] |= bit } else { levelBits[word] &= ~bit }
        if asserted, !was, isEdgeTriggered(intid: intid) {
            storage[Int(Offset.ispendr / 4) + word] |= bit
        }
        return true
    }

    func isImplementedSPI(_ intid: UInt32) -> Bool {
        intid >= 32 && intid < 1020 && Int(intid) - 32 < configuration.spiCount && Int(intid / 32) < levelBits.count
    }

    /// Whether SPI `intid`'s wire is asserted.
    public func level(intid: UInt32) -> Bool {
        isImplementedSPI(intid) && levelBits[Int(intid / 32)] & (1 << (intid % 32)) != 0
    }

    /// Whether SPI `intid` is pending (what GICD_ISPENDR<n> reads).
    public func isPending(intid: UInt32) -> Bool {
        guard isImplementedSPI(intid) else { return false }
        return pendingWord(Int(intid / 32)) & (1 << (intid % 32)) != 0
    }

    /// Whether GICD_ISENABLER<n> has `intid` enabled.
    public func isEnabled(intid: UInt32) -> Bool { bit(Offset.isenabler, intid) }

    /// Whether `intid` is active (GICD_ISACTIVER<n>).
    public func isActive(intid: UInt32) -> Bool { bit(Offset.isactiver, intid) }

    /// Whether GICD_IGROUPR<n> puts `intid` in Group 1.
    public func isGroup1(intid: UInt32) -> Bool { bit(Offset.igroupr, intid) }

    /// GICD_ICFGR<n> Int_config[1]: edge-triggered (true) or level-sensitive.
    public func isEdgeTriggered(intid: UInt32) -> Bool {
        let word = Int(Offset.icfgr / 4) + Int(intid / 16)
        return word < storage.count && storage[word] & (1 << ((intid % 16) * 2 + 1)) != 0
    }

    /// GICD_IPRIORITYR<n>'s byte for `intid`.
    public func priority(intid: UInt32) -> UInt8 { intid < 1024 ? priorityByte(Int(intid)) : 0 }

    /// GICD_IROUTER<n> for SPI `intid` (0 when not an implemented SPI).
    public func router(intid: UInt32) -> UInt64 {
        guard isImplementedSPI(intid) else { return 0 }
        let word = Int((Offset.irouter + 8 * UInt64(intid)) / 4)
        return UInt64(storage[word]) | UInt64(storage[word + 1]) << 32
    }

    /// Whether GICD_IROUTER<n> routes SPI `intid` to the PE with `affinity` (Aff3.Aff2.Aff1.Aff0
    /// as GICR_TYPER.Affinity holds it), or to any PE (Interrupt_Routing_Mode = 1).
    public func routes(intid: UInt32, toAffinity affinity: UInt32) -> Bool {
        let value = router(intid: intid)
        if value & (1 << 31) != 0 { return true }
        let target = UInt32(truncatingIfNeeded: (value >> 32) & 0xFF) << 24 | UInt32(truncatingIfNeeded: value & 0xFF_FFFF)
        return target == affinity
    }

    /// GICD_CTLR.EnableGrp1NS and ARE_NS both set: SPIs are forwarded. On a GICv2, GICD_CTLR
    /// bit 0 (Enable, `GICv2Distributor.swift`).
    public var forwardsSPIs: Bool {
        if configuration.version == 2 { return ctlr & 1 != 0 }
        return ctlr & (1 << 1) != 0 && ctlr & (1 << 4) != 0
    }

    /// The highest-priority SPI that may be signalled to the PE with `affinity`, with priority
    /// strictly below `threshold`; ties go to the lowest INTID.
    /// `cpu` is the CPU interface number a GICv2's GICD_ITARGETSR names.
    func highestPriorityPendingSPI(affinity: UInt32, cpu: Int, below threshold: UInt16) -> (intid: UInt32, priority: UInt8)? {
        guard forwardsSPIs else { return nil }
        var best: (intid: UInt32, priority: UInt8)?
        var bestPriority = threshold
        for word in 1..<levelBits.count {
            var candidates = pendingWord(word)
            guard candidates != 0 else { continue }
            // A GICv2 here has one Security state and no GICD_IGROUPR (`GICv2Distributor.swift`).
            let group = configuration.version == 2 ? UInt32.max : storage[Int(Offset.igroupr / 4) + word]
            candidates &= storage[Int(Offset.isenabler / 4) + word] & group
                & ~storage[Int(Offset.isactiver / 4) + word]
            while candidates != 0 {
                let bit = UInt32(candidates.trailingZeroBitCount)
                candidates &= candidates &- 1
                let intid = UInt32(word) * 32 + bit
                let routed = configuration.version == 2 ? targets(intid: intid, cpu: cpu) : routes(intid: intid, toAffinity: affinity)
                guard isImplementedSPI(intid), routed else { continue }
                let p = priorityByte(Int(intid))
                if UInt16(p) < bestPriority {
                    bestPriority = UInt16(p)
                    best = (intid, p)
                }
            }
        }
        return best
    }

    /// The acknowledge of SPI `intid` (§4.1.2): the pending latch clears and the SPI becomes
    /// active; a level-sensitive SPI whose wire is still asserted stays pending (active and
    /// pending).
    func activate(intid: UInt32) {
        guard isImplementedSPI(intid) else { return }
        let bit = UInt32(1) << (intid % 32)
        storage[Int(Offset.ispendr / 4) + Int(intid / 32)] &= ~bit
        storage[Int(Offset.isactiver / 4) + Int(intid / 32)] |= bit
    }

    /// Deactivation of SPI `intid` (ICC_EOIR1_EL1 with EOImode = 0, or ICC_DIR_EL1): the active
    /// state clears. Returns whether it was active.
    @discardableResult
    func deactivate(intid: UInt32) -> Bool {
        guard isImplementedSPI(intid) else { return false }
        let bit = UInt32(1) << (intid % 32)
        let index = Int(Offset.isactiver / 4) + Int(intid / 32)
        let was = storage[index] & bit != 0
        storage[index] &= ~bit
        return was
    }

    // MARK: - Register words

    /// GICD_ISPENDR<word>: the latches, plus the wire of each level-sensitive SPI.
    func pendingWord(_ word: Int) -> UInt32 {
        let latchIndex = Int(Offset.ispendr / 4) + word
        let latched = latchIndex < storage.count ? storage[latchIndex] : 0
        let messages = word < messageLevelBits.count ? messageLevelBits[word] : 0
        guard word < levelBits.count, levelBits[word] | messages != 0 else { return latched }
        var levels = levelBits[word] | messages
        var edges: UInt32 = 0
        var scan = levels
        while scan != 0 {
            let bit = UInt32(scan.trailingZeroBitCount)
            scan &= scan &- 1
            if isEdgeTriggered(intid: UInt32(word) * 32 + bit) { edges |= 1 << bit }
        }
        levels &= ~edges
        return latched | levels
    }

    func priorityByte(_ index: Int) -> UInt8 {
        let word = Int(Offset.ipriorityr / 4) + index / 4
        guard index >= 0, word < storage.count else { return 0 }
        return UInt8(truncatingIfNeeded: storage[word] >> (UInt32(index % 4) * 8))
    }

    func setPriorityByte(_ index: Int, _ value: UInt8) {
        let word = Int(Offset.ipriorityr / 4) + index / 4
        guard index >= 0, word < storage.count else { return }
        let shift = UInt32(index % 4) * 8
        storage[word] = storage[word] & ~(0xFF << shift) | UInt32(value) << shift
    }

    private func bit(_ base: UInt64, _ intid: UInt32) -> Bool {
        let word = Int(base / 4) + Int(intid / 32)
        return intid < 1024 && word < storage.count && storage[word] & (1 << (intid % 32)) != 0
    }
}
