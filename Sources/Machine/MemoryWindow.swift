import Bus
import Firmware

/// A host bridge's memory window, where BARs live: `cpuAddress` on the system bus decodes to
/// PCI bus address `pciAddress` (DT `ranges`, IEEE 1275 PCI binding; ACPI `_CRS` of the host
/// bridge device).
public struct MemoryWindow: Hashable, Sendable {
    public var cpuAddress: UInt64
    public var pciAddress: UInt64
    public var size: UInt64
    /// The description gave no window and the machine picked this one (identity-mapped).
    public var chosen: Bool

    public init(cpuAddress: UInt64, pciAddress: UInt64, size: UInt64, chosen: Bool) {
        self.cpuAddress = cpuAddress
        self.pciAddress = pciAddress
        self.size = size
        self.chosen = chosen
    }

    /// The PCI bus address of CPU address `address`, or nil outside the window.
    public func busAddress(ofCPU address: UInt64) -> UInt64? {
        guard address >= cpuAddress, address - cpuAddress < size else { return nil }
        return pciAddress &+ (address - cpuAddress)
    }

    /// The CPU address of PCI bus address `address`, or nil outside the window.
    public func cpuAddress(ofBus address: UInt64) -> UInt64? {
        guard address >= pciAddress, address - pciAddress < size else { return nil }
        return cpuAddress &+ (address - pciAddress)
    }

    /// Size of a window the machine chooses: 256 MiB, enough for every BAR the scenarios
    /// create (16 KiB each) and aligned so 64-bit BARs of up to that size fit.
    public static let chosenSize: UInt64 = 0x1000_0000

    /// Candidate bases for a chosen window, tried in order: below 4 GiB first so 32-bit BARs
    /// work (QEMU `virt`'s VIRT_PCIE_MMIO at 0x1000_0000, then the 0x4000_0000–0xF000_0000
    /// span 256 MiB at a time), then above.
    static let candidates: [UInt64] = [0x1000_0000] + (4...14).map { UInt64($0) << 28 } + [0x40_0000_0000, 0x100_0000_0000]

    /// The first candidate window, identity-mapped (CPU address = PCI address), that overlaps
    /// none of `taken`.
    static func free(avoiding taken: [MemoryRange]) -> MemoryWindow? {
        for base in candidates {
            let range = MemoryRange(base: PhysicalAddress(base), size: chosenSize)
            if !taken.contains(where: { $0.overlaps(range) }) {
                return MemoryWindow(cpuAddress: base, pciAddress: base, size: chosenSize, chosen: true)
            }
        }
        return nil
    }
}
