import Bus

/// The guest's physical address map: QEMU's `virt` board (hw/arm/virt.c `base_memmap` /
/// `extended_memmap`, the same addresses as the host preset's DTB in Tests/Fixtures/qemu-virt),
/// so a guest kernel finds its devices where a QEMU guest finds them.
///
/// - GICD 0x0800_0000 (64 KiB), ITS 0x0808_0000 (128 KiB: control frame + translation frame,
///   GITS_TRANSLATER = 0x0809_0040, the `msi-gpa` of an accelerated vSMMU), GICR 0x080A_0000
///   (QEMU's region of 0xF6_0000 = 123 redistributors of 128 KiB);
/// - SMMUv3 0x0905_0000 (128 KiB, `VIRT_SMMU`);
/// - PCIe: 32-bit MMIO window 0x1000_0000 (+0x2EFF_0000), I/O 0x3EFF_0000 (64 KiB), RAM from
///   0x4000_0000, high ECAM 0x40_1000_0000 (256 MiB: 256 buses × 1 MiB, `VIRT_HIGH_PCIE_ECAM`),
///   64-bit MMIO 0x80_0000_0000 (512 GiB, `VIRT_HIGH_PCIE_MMIO`).
public enum GuestMemoryMap {
    public static let distributor = MemoryWindow(base: 0x0800_0000, size: 0x1_0000)
    public static let its = MemoryWindow(base: 0x0808_0000, size: 0x2_0000)
    public static let redistributors = MemoryWindow(base: 0x080A_0000, size: 0xF6_0000)
    public static let smmu = MemoryWindow(base: 0x0905_0000, size: 0x2_0000)
    public static let pcieMMIO32 = MemoryWindow(base: 0x1000_0000, size: 0x2EFF_0000)
    public static let pcieIO = MemoryWindow(base: 0x3EFF_0000, size: 0x1_0000)
    public static let ramBase: UInt64 = 0x4000_0000
    public static let ecam = MemoryWindow(base: 0x40_1000_0000, size: 0x1000_0000)
    public static let pcieMMIO64 = MemoryWindow(base: 0x80_0000_0000, size: 0x80_0000_0000)

    /// The guest's ITS doorbell, GITS_TRANSLATER: ITS base + 0x1_0040 (GICv3 §12.19 / HARDWARE.md
    /// §2.1). With an accelerated vSMMU the VMM routes every vMSI to this GPA (QEMU's
    /// `msi-gpa` property of `arm-smmuv3-accel`), since the host's MSI window cannot be nested.
    public static let msiGPA: UInt64 = its.base + 0x1_0040

    /// A window of the guest's address space.
    public struct MemoryWindow: Hashable, Sendable {
        public var base: UInt64
        public var size: UInt64
        public init(base: UInt64, size: UInt64) {
            self.base = base
            self.size = size
        }
        public func contains(_ address: UInt64) -> Bool { address >= base && address - base < size }
    }
}
