import Bus

/// A Socionext SynQuacer "pre-ITS" window, as the ITS node's `socionext,synquacer-pre-its`
/// property describes it: `<base size>`, two u32 cells (the physical base address and the size
/// in bytes of the window; the cells do not follow `#address-cells`/`#size-cells`, so the window
/// lies below 4 GiB).
///
/// The SoC block behind it (Linux `its_irq_get_msi_base_pre_its`, drivers/irqchip/
/// irq-gic-v3-its.c) "maps 32-bit writes targeted at a separate window of size
/// '4 << device_id_bits' onto writes to GITS_TRANSLATER with device ID taken from bits
/// [device_id_bits + 1:2] of the window offset": every 4-byte slot of the window is one
/// DeviceID, and the DeviceID comes from the address the device wrote, not from the requester.
/// TI's K3 SoCs (AM65x, J721E, J7200, AM64x, …) carry the same property on their GIC-500 ITS
/// (`<0x1000000 0x400000>`: 1 Mi slots, a 20-bit DeviceID).
public struct PreITSWindow: Hashable, Sendable, CustomStringConvertible {
    /// `pre_its_window[0]`: what Linux stores in `its->pre_its_base`.
    public var base: UInt32
    /// `pre_its_window[1]`: the window's size in bytes.
    public var size: UInt32

    /// The property's name.
    public static let property = "socionext,synquacer-pre-its"

    public init(base: UInt32, size: UInt32) {
        self.base = base
        self.size = size
    }

    /// The window as a range of physical addresses.
    public var range: MemoryRange { MemoryRange(base: PhysicalAddress(UInt64(base)), size: UInt64(size)) }

    /// The 4-byte slots the window holds: the DeviceIDs it can stand for.
    public var slots: UInt64 { UInt64(size) / 4 }

    /// The slot a device writes to raise DeviceID `deviceID`'s events: `base + (deviceID << 2)`
    /// (`its_irq_get_msi_base_pre_its`, 64-bit arithmetic, as `pre_its_base` is a `u64`). The
    /// address is returned even when it lies beyond the window, as Linux composes it.
    public func doorbell(deviceID: UInt32) -> UInt64 { UInt64(base) &+ (UInt64(deviceID) << 2) }

    public var description: String {
        "pre-ITS window \(Hex.format(UInt64(base), minDigits: 1)) size \(Hex.format(UInt64(size), minDigits: 1)) (\(PreITSWindow.property))"
    }
}
