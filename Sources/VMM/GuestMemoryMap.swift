import Bus

/// A guest physical address map: where the VMM puts guest RAM, the vGIC (distributor, ITS,
/// redistributors), the vSMMU and the PCIe host bridge's windows. The VMM places its devices
/// and KVM frames from it, maps guest RAM into the IOAS at `ram.base`, and the guest's device
/// tree describes it, so one value decides the whole guest IPA space.
///
/// Two layouts exist:
/// - `virt`: QEMU's `virt` board (hw/arm/virt.c `base_memmap` / `extended_memmap`, the same
///   addresses as the host preset's DTB in Tests/Fixtures/qemu-virt), so a guest kernel finds
///   its devices where a QEMU guest finds them.
/// - `ramAtMSIWindow`: a made-up map whose RAM starts at 0x0800_0000, the host SMMUv3 driver's
///   SW_MSI window (`MSI_IOVA_BASE`, 1 MiB). It is the "guest IPA map where 0x0800_0000 is
///   taken" of docs/strategies.md, the case `rmr-identity` clashes with and `sw-msi-window` exists
///   for. No VMM we know of ships this map; it is there to make the clash reproducible.
public struct GuestMemoryMap: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    /// GICD (64 KiB, `KVM_VGIC_V3_DIST_SIZE`).
    public var distributor: MemoryWindow
    /// The vITS: control frame + translation frame (128 KiB, `KVM_VGIC_V3_ITS_SIZE`).
    public var its: MemoryWindow
    /// The redistributor region the device tree advertises (one 128 KiB frame pair per vCPU is
    /// used; KVM sizes its region from the vCPU count).
    public var redistributors: MemoryWindow
    /// The vSMMU's two register pages (128 KiB).
    public var smmu: MemoryWindow
    public var pcieMMIO32: MemoryWindow
    public var pcieIO: MemoryWindow
    /// Where guest RAM may live: RAM of `ramSize` bytes occupies [ram.base, ram.base + ramSize),
    /// which must fit in this window.
    public var ram: MemoryWindow
    public var ecam: MemoryWindow
    public var pcieMMIO64: MemoryWindow
    /// A GICv2 guest's CPU interface (GICC; `VIRT_GIC_CPU`, 64 KiB in QEMU's map, of which KVM's
    /// vGICv2 uses `KVM_VGIC_V2_CPU_SIZE`, 8 KiB). Unused by a GICv3 guest.
    public var cpuInterface: MemoryWindow
    /// A GICv2 guest's GICv2m MSI frame (`VIRT_GIC_V2M`, 4 KiB). Unused by a GICv3 guest.
    public var v2mFrame: MemoryWindow

    public init(name: String, distributor: MemoryWindow, its: MemoryWindow, redistributors: MemoryWindow,
                smmu: MemoryWindow, pcieMMIO32: MemoryWindow, pcieIO: MemoryWindow, ram: MemoryWindow,
                ecam: MemoryWindow, pcieMMIO64: MemoryWindow,
                cpuInterface: MemoryWindow = MemoryWindow(base: 0x0801_0000, size: 0x1_0000),
                v2mFrame: MemoryWindow = MemoryWindow(base: 0x0802_0000, size: 0x1000)) {
        self.cpuInterface = cpuInterface
        self.v2mFrame = v2mFrame
        self.name = name
        self.distributor = distributor
        self.its = its
        self.redistributors = redistributors
        self.smmu = smmu
        self.pcieMMIO32 = pcieMMIO32
        self.pcieIO = pcieIO
        self.ram = ram
        self.ecam = ecam
        self.pcieMMIO64 = pcieMMIO64
    }

    /// Guest RAM's first address.
    public var ramBase: UInt64 { ram.base }

    /// The guest's ITS doorbell, GITS_TRANSLATER: ITS base + 0x1_0040 (GICv3 §12.19 / docs/hardware.md
    /// §ITS registers). With an accelerated vSMMU the VMM routes every vMSI to this GPA (QEMU's
    /// `msi-gpa` property of `arm-smmuv3-accel`), since the host's MSI window cannot be nested.
    public var msiGPA: UInt64 { its.base &+ 0x1_0040 }

    /// QEMU virt: GICD 0x0800_0000 (64 KiB), ITS 0x0808_0000 (128 KiB; GITS_TRANSLATER =
    /// 0x0809_0040, the `msi-gpa` of an accelerated vSMMU), GICR 0x080A_0000 (QEMU's region of
    /// 0xF6_0000 = 123 redistributors of 128 KiB); SMMUv3 0x0905_0000 (128 KiB, `VIRT_SMMU`);
    /// PCIe 32-bit MMIO 0x1000_0000 (+0x2EFF_0000), I/O 0x3EFF_0000 (64 KiB); RAM from
    /// 0x4000_0000 (up to 255 GiB, `VIRT_MEM`); high ECAM 0x40_1000_0000 (256 MiB: 256 buses ×
    /// 1 MiB, `VIRT_HIGH_PCIE_ECAM`); 64-bit MMIO 0x80_0000_0000 (512 GiB, `VIRT_HIGH_PCIE_MMIO`).
    /// A GICv2 guest (`GuestInterruptController.gicv2m`) has GICC at 0x0801_0000 (`VIRT_GIC_CPU`)
    /// and the v2m frame at 0x0802_0000 (`VIRT_GIC_V2M`; MSI_SETSPI_NS 0x0802_0040, its
    /// `msi-gpa`) instead of the ITS and redistributors.
    public static let virt = GuestMemoryMap(
        name: "virt",
        distributor: MemoryWindow(base: 0x0800_0000, size: 0x1_0000),
        its: MemoryWindow(base: 0x0808_0000, size: 0x2_0000),
        redistributors: MemoryWindow(base: 0x080A_0000, size: 0xF6_0000),
        smmu: MemoryWindow(base: 0x0905_0000, size: 0x2_0000),
        pcieMMIO32: MemoryWindow(base: 0x1000_0000, size: 0x2EFF_0000),
        pcieIO: MemoryWindow(base: 0x3EFF_0000, size: 0x1_0000),
        ram: MemoryWindow(base: 0x4000_0000, size: 0x3F_C000_0000),
        ecam: MemoryWindow(base: 0x40_1000_0000, size: 0x1000_0000),
        pcieMMIO64: MemoryWindow(base: 0x80_0000_0000, size: 0x80_0000_0000))

    /// Made up (documented choice): guest RAM from 0x0800_0000 — the host's `MSI_IOVA_BASE` —
    /// up to 768 MiB, and the interrupt controller and vSMMU moved above it into a block just
    /// under 1 GiB, the way kvmtool packs its low MMIO (kvmtool arm-common/kvm-arch.h puts
    /// `ARM_GIC_DIST_BASE` at `ARM_AXI_AREA` (1 GiB) − the distributor size, the other GIC
    /// frames below it, and its PCI MMIO window from 1 GiB):
    ///
    /// | window | base | size |
    /// |---|---|---|
    /// | RAM | 0x0800_0000 | ≤ 0x3000_0000 |
    /// | PCIe I/O | 0x3EFF_0000 | 64 KiB (as virt) |
    /// | vSMMU | 0x3F00_0000 | 128 KiB |
    /// | vITS | 0x3F02_0000 | 128 KiB → GITS_TRANSLATER 0x3F03_0040 |
    /// | GICR | 0x3F04_0000 | 0xF6_0000 (as virt: 123 frames) |
    /// | GICD | 0x3FFF_0000 | 64 KiB (kvmtool's address) |
    /// | GICv2 guest: GICC, v2m frame | 0x3F02_0000, 0x3F03_0000 | 64 KiB, 4 KiB (in the vITS's place: a GICv2 guest has none) |
    /// | PCIe MMIO32 | 0x4000_0000 | 1 GiB (kvmtool's AXI/PCI area) |
    /// | ECAM, MMIO64 | as virt | |
    ///
    /// Why this shape: everything but RAM stays clear of [0x0800_0000, +1 MiB), so the only
    /// thing that changes against `virt` is who owns the host's SW_MSI IOVAs; every frame is
    /// 64 KiB aligned (`vgic_check_iorange`); the 32-bit windows stay below 4 GiB, and the vITS
    /// doorbell moves, so `msi-gpa` changes with the layout.
    public static let ramAtMSIWindow = GuestMemoryMap(
        name: "ram-at-msi-window",
        distributor: MemoryWindow(base: 0x3FFF_0000, size: 0x1_0000),
        its: MemoryWindow(base: 0x3F02_0000, size: 0x2_0000),
        redistributors: MemoryWindow(base: 0x3F04_0000, size: 0xF6_0000),
        smmu: MemoryWindow(base: 0x3F00_0000, size: 0x2_0000),
        pcieMMIO32: MemoryWindow(base: 0x4000_0000, size: 0x4000_0000),
        pcieIO: MemoryWindow(base: 0x3EFF_0000, size: 0x1_0000),
        ram: MemoryWindow(base: 0x0800_0000, size: 0x3000_0000),
        ecam: MemoryWindow(base: 0x40_1000_0000, size: 0x1000_0000),
        pcieMMIO64: MemoryWindow(base: 0x80_0000_0000, size: 0x80_0000_0000),
        cpuInterface: MemoryWindow(base: 0x3F02_0000, size: 0x1_0000),
        v2mFrame: MemoryWindow(base: 0x3F03_0000, size: 0x1000))

    /// The guest-RAM window of `size` bytes, or nil when it does not fit the layout's RAM window.
    public func ramWindow(size: UInt64) -> MemoryWindow? {
        guard size > 0, size <= ram.size else { return nil }
        return MemoryWindow(base: ram.base, size: size)
    }

    public var description: String { name }

    /// A window of the guest's address space.
    public struct MemoryWindow: Hashable, Sendable, CustomStringConvertible {
        public var base: UInt64
        public var size: UInt64
        public init(base: UInt64, size: UInt64) {
            self.base = base
            self.size = size
        }
        public func contains(_ address: UInt64) -> Bool { address >= base && address - base < size }
        /// Whether the two windows share an address (a zero-sized window shares none).
        public func overlaps(_ other: MemoryWindow) -> Bool {
            guard size > 0, other.size > 0 else { return false }
            return base <= other.base &+ (other.size &- 1) && other.base <= base &+ (size &- 1)
        }
        public var description: String { "\(Hex.format(base, minDigits: 1))/\(Hex.format(size, minDigits: 1))" }
    }
}
