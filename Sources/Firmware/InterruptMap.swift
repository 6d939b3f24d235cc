/// A PCI host bridge's `interrupt-map` with its `interrupt-map-mask` (Devicetree Specification
/// v0.4 §2.4.3; IEEE 1275 PCI binding: a child unit address of 3 cells, phys.hi carrying
/// bus << 16 | devfn << 8, and a 1-cell interrupt specifier, the pin 1…4 = INTA…INTD).
///
/// Each entry is `<child unit address (3)> <child pin (1)> <parent phandle> <parent unit
/// address (#address-cells of the parent, 0 when absent)> <parent specifier (#interrupt-cells
/// of the parent)>`, as Linux's `of_irq_parse_raw` walks it. QEMU's `virt` writes one entry
/// per (slot 0…3, pin) with mask <0x1800 0 0 7> (`create_pcie_irq_map`) and a GIC parent with 2
/// address cells and 3 interrupt cells (SPI, first_irq + (pin + slot) % 4, level high).
public struct InterruptMap: Hashable, Sendable {
    public struct Entry: Hashable, Sendable {
        /// The 3 cells of the child unit address (phys.hi, phys.mid, phys.lo).
        public var childAddress: [UInt32]
        /// The child interrupt specifier (the pin).
        public var childPin: UInt32
        public var parentPhandle: UInt32
        public var parentAddress: [UInt32]
        /// The parent's interrupt specifier (for a GICv3: type, number, flags).
        public var parentSpecifier: [UInt32]
    }

    /// `interrupt-map-mask`: 3 address cells and the pin cell; all-ones when absent (Linux:
    /// "dummy_imask", every bit compared).
    public var mask: [UInt32]
    public var entries: [Entry]

    /// The first entry whose masked child address and pin equal the masked `address`/`pin`
    /// (`of_irq_parse_raw`'s match loop).
    public func lookup(address: [UInt32], pin: UInt32) -> Entry? {
        guard address.count == 3, mask.count == 4 else { return nil }
        for entry in entries {
            var match = true
            for i in 0..<3 where (address[i] ^ entry.childAddress[i]) & mask[i] != 0 { match = false }
            if match, (pin ^ entry.childPin) & mask[3] == 0 { return entry }
        }
        return nil
    }

    /// Parses `interrupt-map` cells, asking `parentCells` for a phandle's (#address-cells,
    /// #interrupt-cells). A phandle that does not resolve, a parent with no #interrupt-cells, a
    /// specifier longer than `MAX_PHANDLE_ARGS` or a truncated entry is a mistake naming the
    /// cell where it happened.
    public static func parse(_ list: [UInt32], mask: [UInt32]?,
                             parentCells: (UInt32) -> (address: UInt32, interrupt: UInt32?)?) -> Result<InterruptMap, InterruptMapMistake> {
        let imask = mask ?? [UInt32](repeating: 0xFFFF_FFFF, count: 4)
        guard imask.count == 4 else { return .failure(InterruptMapMistake("interrupt-map-mask has \(imask.count) cells, expected 4")) }
        var entries: [Entry] = []
        var position = 0
        while position < list.count {
            guard list.count - position >= 5 else { return .failure(InterruptMapMistake("entry at cell \(position) is truncated")) }
            let phandle = list[position + 4]
            guard let cells = parentCells(phandle) else {
                return .failure(InterruptMapMistake("entry at cell \(position): phandle \(phandle) does not resolve"))
            }
            guard let interruptCells = cells.interrupt else {
                return .failure(InterruptMapMistake("entry at cell \(position): the parent has no #interrupt-cells"))
            }
            guard cells.address <= 4, interruptCells >= 1, interruptCells <= 16 else {
                return .failure(InterruptMapMistake("entry at cell \(position): unusable parent cells (#address-cells \(cells.address), #interrupt-cells \(interruptCells))"))
            }
            let start = position + 5
            let end = start + Int(cells.address) + Int(interruptCells)
            guard end <= list.count else { return .failure(InterruptMapMistake("entry at cell \(position) needs \(end - position) cells, \(list.count - position) left")) }
            entries.append(Entry(childAddress: Array(list[position..<(position + 3)]), childPin: list[position + 3],
                                 parentPhandle: phandle,
                                 parentAddress: Array(list[start..<(start + Int(cells.address))]),
                                 parentSpecifier: Array(list[(start + Int(cells.address))..<end])))
            position = end
        }
        return .success(InterruptMap(mask: imask, entries: entries))
    }
}

/// Why an `interrupt-map` cannot be read.
public struct InterruptMapMistake: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
