import Bus

/// The build-time parameters of a GIC: what its ID registers advertise and what the model then
/// enforces. Every field maps to an architected ID field, so software discovers the same limits
/// the model checks.
public struct GICConfiguration: Hashable, Sendable {
    /// What the ITS does when a command fails (GICv3 leaves it IMPLEMENTATION DEFINED: stall with
    /// GITS_CREADR.Stalled=1, ignore the command, or raise SError if GITS_TYPER.SEIS=1;
    /// docs/hardware.md §ITS command errors).
    public enum CommandErrorPolicy: Hashable, Sendable {
        /// Record the error code, skip the command and carry on with the next one. QEMU does this
        /// for parameter errors (it logs a guest error and continues). Memory-access failures on
        /// the queue or a table still stall, as in QEMU.
        case skipAndContinue
        /// Record the error and stall: CREADR stays on the failing command with Stalled=1 until
        /// software writes GITS_CWRITER with Retry=1 (which retries the same command).
        case stall
    }

    /// Sets × ways of one ITS cache. GIC-600 has three 2-way set-associative ITS caches whose
    /// sizes are configuration options (GIC-600 TRM, docs/hardware.md §ITS caches); the defaults here are illustrative.
    public struct CacheGeometry: Hashable, Sendable {
        public var sets: Int
        public var ways: Int
        public init(sets: Int, ways: Int) {
            self.sets = sets
            self.ways = ways
        }
    }

    /// GIC architecture version, 2, 3 or 4 (GICD/GICR/GITS_PIDR2.ArchRev). Version 4 widens each
    /// redistributor to four 64 KiB frames (the VLPI frames are register storage only here) and
    /// sets GITS_TYPER.Virtual/VMOVP and GICR_TYPER.VLPIS; virtual LPIs need `virtualLPIs` (GICv4.1).
    /// Version 2 is the GICv2 register layout over the same SPI state (`GICv2Distributor.swift`):
    /// no LPIs, no redistributors, SPIs routed by GICD_ITARGETSR and taken through the
    /// memory-mapped GICC (`GICv2CPUInterface`).
    public var version: Int
    /// Number of PEs, one redistributor and CPU interface each.
    public var cpuCount: Int
    /// DeviceID bits (GITS_TYPER.Devbits + 1), 1…32.
    public var deviceIDBits: Int
    /// EventID bits (GITS_TYPER.IDbits + 1), 1…32; also the largest MAPD Size + 1.
    public var eventIDBits: Int
    /// INTID bits (GICD_TYPER.IDbits + 1). LPIs are 8192 ..< 2^lpiIDBits. The model supports 14…20
    /// (QEMU uses 16); the upper limit bounds each redistributor's configuration cache.
    public var lpiIDBits: Int
    /// ICID bits. With `collectionIDLimit` (GITS_TYPER.CIL) = true the ITS reports them in
    /// GITS_TYPER.CIDbits (= bits − 1); with CIL = false ICIDs are 16 bits by definition.
    public var collectionIDBits: Int
    /// GITS_TYPER.CIL.
    public var collectionIDLimit: Bool
    /// ITT entry size in bytes (GITS_TYPER.ITT_entry_size + 1), 8…16. The model's ITE needs 8
    /// bytes; QEMU uses 12 (a 4-byte doorbell word after the 8-byte entry).
    public var ittEntrySize: Int
    /// GITS_TYPER.PTA: targets are redistributor physical addresses (true) or processor numbers
    /// (false). QEMU leaves PTA=0 (its realize function never sets the field) and GIC-600 reports
    /// PTA=0, so false is the default.
    public var physicalTargetAddresses: Bool
    /// GITS_TYPER.HCC: collections held in the ITS itself (ICID < hcc need no collection table).
    public var hardwareCollections: Int
    /// Number of SPIs the distributor advertises (GICD_TYPER.ITLinesNumber).
    public var spiCount: Int
    /// GICD_TYPER.MBIS: the distributor implements GICD_SETSPI_NSR / GICD_CLRSPI_NSR
    /// (message-based SPIs, `DistributorMBI.swift`). GICv3 only; a device tree says so with
    /// `msi-controller` + `mbi-ranges` on the GIC node.
    public var messageBasedSPIs: Bool = false
    public var commandErrorPolicy: CommandErrorPolicy
    /// GICD_IIDR / GICR_IIDR / GITS_IIDR (Implementer[11:0], Revision[15:12], Variant[19:16],
    /// ProductID[31:24]): `GICv3.iidr` (QEMU's) unless a platform says which implementation it
    /// integrates (`GICv3.gic500r1p1IIDR` for the SynQuacer and TI K3 GIC-500).
    public var iidr: UInt32 = GICv3.iidr
    /// GICv4.1 direct injection of virtual LPIs (Arm IHI 0069H): the ITS executes the virtual
    /// commands (GITS_TYPER.Virtual and VMAPP = 1), redistributors have the 4.1
    /// GICR_VPROPBASER/GICR_VPENDBASER layout, GICR_TYPER.RVPEID and DirectLPI, and GICD_TYPER2
    /// reports the vPEID width. Needs `version` 4; false keeps the GICv4 frames as plain storage.
    public var virtualLPIs = false
    /// vPEID bits (GICD_TYPER2.VIL = 1, VID = bits − 1), 1…16.
    public var vpeIDBits = 16
    /// GICR_TYPER.CommonLPIAff (0…3): redistributors whose affinity agrees above this level
    /// share LPI and (GICv4.1) vPE configuration tables; 0 = all of them (QEMU's value). Linux
    /// reads it in `compute_common_aff` to share one vPE table between CPUs
    /// (`inherit_vpe_l1_table_from_rd`) and to skip VMOVP between them (`its_vpe_set_affinity`).
    public var commonLPIAffinity = 0
    /// DeviceID → DTE cache (GIC-600 "device cache").
    public var deviceCache: CacheGeometry
    /// DeviceID+EventID → ITE (collection, INTID) cache.
    public var eventCache: CacheGeometry
    /// ICID → target redistributor cache.
    public var collectionCache: CacheGeometry

    public init(version: Int = 3, cpuCount: Int = 1, deviceIDBits: Int = 16, eventIDBits: Int = 16,
                lpiIDBits: Int = 16, collectionIDBits: Int = 16, collectionIDLimit: Bool = true,
                ittEntrySize: Int = 12, physicalTargetAddresses: Bool = false,
                hardwareCollections: Int = 0, spiCount: Int = 256,
                commandErrorPolicy: CommandErrorPolicy = .skipAndContinue,
                deviceCache: CacheGeometry = CacheGeometry(sets: 16, ways: 2),
                eventCache: CacheGeometry = CacheGeometry(sets: 64, ways: 2),
                collectionCache: CacheGeometry = CacheGeometry(sets: 8, ways: 2)) {
        self.version = version
        self.cpuCount = cpuCount
        self.deviceIDBits = deviceIDBits
        self.eventIDBits = eventIDBits
        self.lpiIDBits = lpiIDBits
        self.collectionIDBits = collectionIDBits
        self.collectionIDLimit = collectionIDLimit
        self.ittEntrySize = ittEntrySize
        self.physicalTargetAddresses = physicalTargetAddresses
        self.hardwareCollections = hardwareCollections
        self.spiCount = spiCount
        self.commandErrorPolicy = commandErrorPolicy
        self.deviceCache = deviceCache
        self.eventCache = eventCache
        self.collectionCache = collectionCache
    }

    /// QEMU `virt`'s ITS (hw/intc/arm_gicv3_its.c `gicv3_arm_its_realize`, gicv3_internal.h):
    /// Physical=1, ITT_entry_size = 12 − 1, IDbits = GICD_TYPER_IDBITS (15, i.e. 16 EventID
    /// bits), Devbits = 15, CIL = 1, CIDbits = 15, PTA = 0, HCC = 0; 16-bit INTIDs.
    public static let qemuVirt = GICConfiguration()

    /// A GICv4.1 on QEMU virt's memory map: `qemuVirt` with version 4 (four 64 KiB frames per
    /// redistributor, GITS_TYPER.Virtual and VMOVP) and `virtualLPIs` (GITS_TYPER.VMAPP, the
    /// vPE table at GITS_BASER2, GICR_TYPER.RVPEID and DirectLPI, GICD_TYPER2.VIL with 16-bit
    /// vPEIDs).
    public static var gicv41: GICConfiguration {
        var c = GICConfiguration(version: 4)
        c.virtualLPIs = true
        return c
    }

    /// The same values clamped to what the model supports, so any configuration (including one
    /// decoded from a file) builds a working GIC.
    public var normalized: GICConfiguration {
        var c = self
        c.version = version >= 4 ? 4 : version == 2 ? 2 : 3
        if c.version == 2 {
            // GICv2: at most 8 CPU interfaces (GICD_ITARGETSR has one bit per interface) and no
            // message-based SPIs (GICD_SETSPI_NSR is GICv3's).
            c.cpuCount = min(max(cpuCount, 1), 8)
            c.messageBasedSPIs = false
        }
        c.virtualLPIs = virtualLPIs && c.version == 4
        c.vpeIDBits = min(max(vpeIDBits, 1), 16)
        c.commonLPIAffinity = min(max(commonLPIAffinity, 0), 3)
        c.cpuCount = c.version == 2 ? c.cpuCount : min(max(cpuCount, 1), 512)
        c.deviceIDBits = min(max(deviceIDBits, 1), 32)
        c.eventIDBits = min(max(eventIDBits, 1), 32)
        c.lpiIDBits = min(max(lpiIDBits, 14), 20)
        c.collectionIDBits = collectionIDLimit ? min(max(collectionIDBits, 1), 16) : 16
        c.ittEntrySize = min(max(ittEntrySize, 8), 16)
        c.hardwareCollections = min(max(hardwareCollections, 0), 255)
        c.spiCount = min(max(spiCount, 0), 988) / 32 * 32
        for keyPath in [\GICConfiguration.deviceCache, \.eventCache, \.collectionCache] {
            var g = c[keyPath: keyPath]
            g.ways = min(max(g.ways, 1), 16)
            var sets = 1
            while sets < g.sets && sets < 4096 { sets <<= 1 }
            g.sets = sets
            c[keyPath: keyPath] = g
        }
        return c
    }

    /// Bytes between consecutive redistributors: RD_base + SGI_base (2 × 64 KiB) for GICv3, plus
    /// VLPI_base and a reserved frame for GICv4 (Linux `gic_iterate_rdists`: 4 frames if VLPIS).
    public var redistributorStride: UInt64 { version >= 4 ? 0x4_0000 : 0x2_0000 }

    /// One past the largest LPI INTID the distributor advertises.
    public var lpiLimit: UInt32 { UInt32(truncatingIfNeeded: UInt64(1) &<< UInt64(lpiIDBits)) }
}
