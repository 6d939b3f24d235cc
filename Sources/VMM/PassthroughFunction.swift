import Bus
import LinuxKernel
import PCI

/// One MSI-X table entry as the guest wrote it (PCIe r6.0 §7.7.2: Message Address, Upper
/// Address, Data, Vector Control with Mask at bit 0).
public struct VirtualMSIXEntry: Hashable, Sendable {
    public var addressLo: UInt32 = 0
    public var addressHi: UInt32 = 0
    public var data: UInt32 = 0
    /// Vector Control; bit 0 (Mask) is set at reset (§7.7.2.4 "default 1").
    public var vectorControl: UInt32 = 1
    public var address: UInt64 { UInt64(addressHi) << 32 | UInt64(addressLo) }
    public var masked: Bool { vectorControl & 1 != 0 }
}

/// The guest's view of a vfio-pci function (QEMU hw/vfio/pci.c): configuration space read from
/// the VFIO device's CONFIG region except what QEMU emulates — the BARs (`vfio_bars_register`:
/// the guest assigns its own addresses; sizing by all-ones writes answered from the region
/// size), the Command register (kept in the guest's copy, Memory/Bus Master forwarded), the
/// expansion ROM (absent) and the MSI-X capability's Message Control enable/function-mask bits
/// (`vfio_msix_setup`: QEMU's own msix emulation) — and the MSI-X table, trapped in the BAR
/// (`vfio_msix_early_setup` carves it out of the mmap) and kept here as `entries`. Other BAR
/// accesses go to the VFIO region.
///
/// Every change to the table or to Message Control calls `onMSIXChange` with the vectors'
/// new state, which is how the VMM learns to (re)program KVM routes and VFIO_DEVICE_SET_IRQS
/// (`vfio_msix_vector_use` / `vfio_msix_vector_release`).
///
/// A function with an MSI capability gets it emulated too (`VirtualMSICapability`, QEMU
/// `vfio_msi_setup` → `msi_init`): every guest write to it is forwarded to VFIO first and then
/// calls `onMSIChange` (QEMU `vfio_pci_write_config`: enable → `vfio_msi_enable`, disable →
/// `vfio_msi_disable`, any other write while enabled → `vfio_update_msi`).
public final class PassthroughFunction {
    public let file: VFIODeviceFile
    /// Where the guest sees the function (bus 0 of the guest's host bridge).
    public let guestRequesterID: RequesterID

    struct BAR {
        var size: UInt64 = 0
        var is64: Bool = false
        var prefetchable: Bool = false
        var register: UInt32 = 0
        /// The upper half of a 64-bit BAR lives in the next register.
        var upper: UInt32 = 0
    }
    var bars: [BAR] = Array(repeating: BAR(), count: 6)
    public internal(set) var command: UInt16 = 0

    /// MSI capability offset and the vectors it can ask for (2^Multiple Message Capable).
    public let msiCapability: Int?
    public let msiCapableVectors: Int

    /// MSI-X capability offset, Table BIR/offset, Table Size (N).
    public let msixCapability: Int?
    public let msixTableBAR: Int
    public let msixTableOffset: UInt64
    public let msixTableSize: Int
    public internal(set) var msixEnabled = false
    public internal(set) var msixFunctionMasked = false
    public internal(set) var entries: [VirtualMSIXEntry]
    /// PBA BIR/offset (cap + 8) and the guest-visible Pending Bits, emulated as QEMU's
    /// `msix_pba_mmio_ops` (a masked vector's interrupt sets its bit, §6.1.4.5).
    public let msixPBABAR: Int
    public let msixPBAOffset: UInt64
    public internal(set) var pendingBits: [Bool]

    public var onMSIXChange: ((PassthroughFunction) -> Void)?
    /// QEMU's `multifunction=on`: Header Type bit 7 reads set (`pci_init_multifunction`), so the
    /// guest scans functions 1–7 of this slot. Set by the VMM on function 0 of a shared slot;
    /// otherwise the host's bit passes through as before.
    public internal(set) var multifunction = false
    /// While `onMSIXChange` runs for a guest write to one MSI-X table entry, that entry (only
    /// it changed); nil for a Message Control write, which may change every vector.
    public private(set) var changedEntry: Int?
    /// Called after every guest write to the MSI capability (QEMU `vfio_pci_write_config`'s MSI
    /// branch decides from the Enable bit what to do).
    public var onMSIChange: ((PassthroughFunction) -> Void)?
    /// The emulated MSI capability, when the function has one.
    public internal(set) var msi: VirtualMSICapability?
    /// MSI Enable as the guest wrote it.
    public var msiEnabled: Bool { msi?.enabled ?? false }
    /// Whether MSI vector `index` is masked by the guest's Mask Bits.
    public func isMSIMasked(_ index: Int) -> Bool { msi?.isMasked(index) ?? false }
    /// Sets or clears MSI vector `index`'s emulated Pending bit (QEMU `msi_notify` on a masked
    /// vector).
    public func setMSIPending(_ index: Int, _ pending: Bool) {
        guard index >= 0, index < 32, var m = msi else { return }
        let bit = UInt32(1) << UInt32(index)
        m.pendingBits = pending ? m.pendingBits | bit : m.pendingBits & ~bit
        msi = m
    }

    /// The function as `original` left it, on the forked world's copy of its VFIO file
    /// (`PassthroughFunction+Clone.swift`): what `init(file:guestRequesterID:)` read from the
    /// device is taken from the original, not read again. The change callbacks are the VMM's to
    /// install.
    init(copying original: PassthroughFunction, file: VFIODeviceFile) {
        self.file = file
        guestRequesterID = original.guestRequesterID
        bars = original.bars
        command = original.command
        msiCapability = original.msiCapability
        msiCapableVectors = original.msiCapableVectors
        msixCapability = original.msixCapability
        msixTableBAR = original.msixTableBAR
        msixTableOffset = original.msixTableOffset
        msixTableSize = original.msixTableSize
        msixEnabled = original.msixEnabled
        msixFunctionMasked = original.msixFunctionMasked
        entries = original.entries
        msixPBABAR = original.msixPBABAR
        msixPBAOffset = original.msixPBAOffset
        pendingBits = original.pendingBits
        multifunction = original.multifunction
        changedEntry = original.changedEntry
        msi = original.msi
    }

    public init(file: VFIODeviceFile, guestRequesterID: RequesterID) throws(Errno) {
        self.file = file
        self.guestRequesterID = guestRequesterID
        // BAR layout from the function's own BAR registers and the VFIO region sizes.
        var index = 0
        var bars = Array(repeating: BAR(), count: 6)
        while index < 6 {
            let raw = try file.readConfig(0x10 + index * 4, size: 4)
            let size = try file.regionSize(index)
            if raw & 1 == 0, size > 0 {
                bars[index].size = size
                bars[index].is64 = raw & 0x6 == 0x4
                bars[index].prefetchable = raw & 0x8 != 0
                bars[index].register = raw & 0xF
            }
            index += bars[index].is64 ? 2 : 1
        }
        self.bars = bars
        // The capability list as `vfio_add_capabilities` walks it (next pointers with bits 1:0
        // ignored, at most 48 hops like PCI_FIND_CAP_TTL): MSI (0x05) and MSI-X (0x11).
        var msixCap: Int?
        var msiCap: Int?
        var pointer = Int(try file.readConfig(0x34, size: 1) & 0xFC)
        var hops = 0
        while pointer >= 0x40, hops < 48 {
            let header = try file.readConfig(pointer, size: 2)
            if header & 0xFF == 0x11, msixCap == nil { msixCap = pointer }
            if header & 0xFF == 0x05, msiCap == nil { msiCap = pointer }
            pointer = Int((header >> 8) & 0xFC)
            hops += 1
        }
        msixCapability = msixCap
        if let cap = msiCap {
            let control = try file.readConfig(cap + 2, size: 2)
            msi = VirtualMSICapability(offset: cap, control: UInt16(truncatingIfNeeded: control))
            msiCapability = cap
            // Multiple Message Capable, bits 3:1 (PCIe r6.0 §7.7.1.2); 6 and 7 are reserved, and
            // more than 32 vectors cannot be encoded, so the count stops at 32.
            msiCapableVectors = 1 << min(Int((control >> 1) & 0x7), 5)
        } else {
            msiCapability = nil
            msiCapableVectors = 0
        }
        if let cap = msixCap {
            let control = try file.readConfig(cap + 2, size: 2)
            let table = try file.readConfig(cap + 4, size: 4)
            msixTableSize = Int(control & 0x07FF) + 1
            msixTableBAR = Int(table & 0x7)
            msixTableOffset = UInt64(table & ~0x7)
            let pba = try file.readConfig(cap + 8, size: 4)
            msixPBABAR = Int(pba & 0x7)
            msixPBAOffset = UInt64(pba & ~0x7)
        } else {
            msixTableSize = 0
            msixTableBAR = -1
            msixTableOffset = 0
            msixPBABAR = -1
            msixPBAOffset = 0
        }
        entries = Array(repeating: VirtualMSIXEntry(), count: msixTableSize)
        pendingBits = Array(repeating: false, count: msixTableSize)
    }

    // MARK: Configuration space

    /// A configuration read of 1, 2 or 4 bytes at `offset`.
    public func readConfig(_ offset: Int, size: Int) -> UInt32 {
        guard offset >= 0, offset < 4096, [1, 2, 4].contains(size), offset % size == 0 else { return .max }
        let dword = readConfigDword(offset & ~3)
        let shift = UInt32((offset & 3) * 8)
        let mask: UInt32 = size == 4 ? .max : (UInt32(1) << UInt32(size * 8)) - 1
        return (dword >> shift) & mask
    }

    func readConfigDword(_ reg: Int) -> UInt32 {
        let host = (try? file.readConfig(reg, size: 4)) ?? .max
        switch reg {
        case 0x04:
            return (host & 0xFFFF_0000) | UInt32(command)
        case 0x0C:
            return multifunction ? host | 0x0080_0000 : host
        case 0x10...0x24:
            let i = (reg - 0x10) / 4
            if bars[i].size > 0 { return bars[i].register }
            if i > 0, bars[i - 1].is64, bars[i - 1].size > 0 { return bars[i - 1].upper }
            return 0
        case 0x30:
            return 0
        default:
            if let m = msi, m.covers(dword: reg) {
                return m.readDword(reg, header: UInt16(truncatingIfNeeded: host))
            }
            if let cap = msixCapability, reg == cap {
                var control = UInt32(host >> 16) & 0x07FF
                if msixEnabled { control |= 1 << 15 }
                if msixFunctionMasked { control |= 1 << 14 }
                return (host & 0xFFFF) | control << 16
            }
            return host
        }
    }

    /// A configuration write of 1, 2 or 4 bytes at `offset`.
    public func writeConfig(_ offset: Int, size: Int, value: UInt32) {
        guard offset >= 0, offset < 4096, [1, 2, 4].contains(size), offset % size == 0 else { return }
        let reg = offset & ~3
        let shift = UInt32((offset & 3) * 8)
        let lanes: UInt32 = (size == 4 ? .max : (UInt32(1) << UInt32(size * 8)) - 1) << shift
        let merged = (readConfigDword(reg) & ~lanes) | ((value << shift) & lanes)
        switch reg {
        case 0x04:
            // Memory Space, Bus Master, INTx Disable are kept for the guest and forwarded.
            command = UInt16(truncatingIfNeeded: merged) & ((1 << 1) | (1 << 2) | (1 << 10))
            try? file.writeConfig(0x04, size: 2, UInt32(command))
        case 0x10...0x24:
            let i = (reg - 0x10) / 4
            if bars[i].size > 0 {
                // Size-aligned address bits are writable, the type bits read-only (§7.5.1.2.1).
                let mask = UInt32(truncatingIfNeeded: ~(bars[i].size &- 1)) & ~0xF
                bars[i].register = (merged & mask) | (bars[i].register & 0xF)
            } else if i > 0, bars[i - 1].is64, bars[i - 1].size > 0 {
                let mask = UInt32(truncatingIfNeeded: ~(bars[i - 1].size &- 1) >> 32)
                bars[i - 1].upper = merged & mask
            }
        default:
            if var m = msi, m.covers(dword: reg) {
                // QEMU `vfio_pci_write_config`: "Write everything to VFIO, let it filter out
                // what we can't write" (vfio-pci virtualizes MSI Control/Address/Data and
                // passes Mask/Pending to the function: `init_pci_cap_msi_perm`), then its own
                // MSI emulation takes the write.
                try? file.writeConfig(offset, size: size, value)
                m.writeDword(reg, merged)
                msi = m
                onMSIChange?(self)
                return
            }
            if let cap = msixCapability, reg == cap {
                let control = merged >> 16
                msixEnabled = control & (1 << 15) != 0
                msixFunctionMasked = control & (1 << 14) != 0
                onMSIXChange?(self)
            }
            // Everything else goes to VFIO, which virtualizes or drops it.
            else { try? file.writeConfig(reg, size: 4, merged) }
        }
    }

    // MARK: BARs

    /// The guest address of BAR `i`, when the guest enabled memory decoding and assigned it.
    public func guestBARAddress(_ i: Int) -> UInt64? {
        guard i >= 0, i < 6, bars[i].size > 0, command & (1 << 1) != 0 else { return nil }
        let low = UInt64(bars[i].register & ~0xF)
        let address = bars[i].is64 ? UInt64(bars[i].upper) << 32 | low : low
        return address == 0 ? nil : address
    }

    /// The BAR and offset a guest physical address falls in.
    func decode(_ gpa: UInt64) -> (bar: Int, offset: UInt64)? {
        for i in 0..<6 {
            guard let base = guestBARAddress(i), gpa >= base, gpa - base < bars[i].size else { continue }
            return (i, gpa - base)
        }
        return nil
    }

    func msixSlot(bar: Int, offset: UInt64) -> (entry: Int, field: UInt64)? {
        guard bar == msixTableBAR, offset >= msixTableOffset else { return nil }
        let rel = offset - msixTableOffset
        guard rel < UInt64(msixTableSize) * 16 else { return nil }
        return (Int(rel / 16), rel % 16)
    }

    /// Whether vector `index` is masked for the guest (its Mask bit or the Function Mask).
    public func isMasked(_ index: Int) -> Bool {
        guard index >= 0, index < entries.count else { return true }
        return msixFunctionMasked || entries[index].masked
    }

    public func readBAR(_ bar: Int, offset: UInt64, size: Int) -> UInt64 {
        if bar == msixPBABAR, offset >= msixPBAOffset, offset - msixPBAOffset < UInt64((msixTableSize + 63) / 64) * 8 {
            // Pending bit i is bit i%64 of QWORD i/64 (§7.7.2.5).
            let firstBit = Int(offset - msixPBAOffset) * 8
            var value: UInt64 = 0
            for bit in 0..<min(size * 8, 64) where firstBit + bit < pendingBits.count && pendingBits[firstBit + bit] {
                value |= 1 << UInt64(bit)
            }
            return value
        }
        if let (entry, field) = msixSlot(bar: bar, offset: offset) {
            let e = entries[entry]
            let words: [UInt32] = [e.addressLo, e.addressHi, e.data, e.vectorControl]
            let lo = UInt64(words[Int(field / 4)])
            if size == 8, field % 8 == 0 { return lo | UInt64(words[Int(field / 4) + 1]) << 32 }
            let shifted = lo >> ((field % 4) * 8)
            return size >= 4 ? shifted : shifted & ((UInt64(1) << UInt64(size * 8)) - 1)
        }
        return (try? file.readBAR(bar, offset: offset, size: size)) ?? .max
    }

    public func writeBAR(_ bar: Int, offset: UInt64, size: Int, value: UInt64) {
        // The PBA is read-only (§7.7.2.5).
        if bar == msixPBABAR, offset >= msixPBAOffset, offset - msixPBAOffset < UInt64((msixTableSize + 63) / 64) * 8 { return }
        if let (entry, field) = msixSlot(bar: bar, offset: offset) {
            // DWORD and aligned QWORD accesses (§6.1.4.2: software must use them for the table).
            guard field % 4 == 0, size == 4 || (size == 8 && field % 8 == 0) else { return }
            var e = entries[entry]
            func set(_ f: UInt64, _ v: UInt32) {
                switch f {
                case 0: e.addressLo = v & ~0x3
                case 4: e.addressHi = v
                case 8: e.data = v
                default: e.vectorControl = v & 1
                }
            }
            set(field, UInt32(truncatingIfNeeded: value))
            if size == 8 { set(field + 4, UInt32(truncatingIfNeeded: value >> 32)) }
            entries[entry] = e
            changedEntry = entry
            onMSIXChange?(self)
            changedEntry = nil
            return
        }
        try? file.writeBAR(bar, offset: offset, size: size, value: value)
    }
}
