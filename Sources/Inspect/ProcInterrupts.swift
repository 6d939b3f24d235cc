/// `/proc/interrupts` as `show_interrupts` (kernel/irq/proc.c) prints it: a header of CPU
/// columns, then per interrupt `"%*d: "`, one count per online CPU, the chip's name, the hwirq,
/// with CONFIG_GENERIC_IRQ_SHOW_LEVEL " Level"/" Edge", and the action names separated by ", ".
/// Architecture lines (`IPI0:`, `Err:`) have no number and are skipped.
public struct ProcInterrupts: Hashable, Sendable {
    public struct Line: Hashable, Sendable {
        public var irq: Int
        public var counts: [UInt64]
        public var chip: String
        public var hwirq: UInt64?
        public var trigger: String?
        public var actions: String
    }

    public var cpus: Int
    public var lines: [Line]

    public func line(irq: Int) -> Line? { lines.first { $0.irq == irq } }

    public init(_ bytes: [UInt8], path: String) throws(SysfsParseError) {
        let text = SysfsText.lines(bytes)
        guard let header = text.first else { throw SysfsParseError(path: path, line: 1, problem: "empty: expected the CPU header") }
        let columns = header.split(separator: " ", omittingEmptySubsequences: true)
        guard !columns.isEmpty, columns.allSatisfy({ $0.hasPrefix("CPU") }) else {
            throw SysfsParseError(path: path, line: 1, problem: "expected a header of CPU columns, found \"\(header)\"")
        }
        cpus = columns.count
        var lines: [Line] = []
        for (i, raw) in text.enumerated().dropFirst() {
            guard let colon = raw.firstIndex(of: ":") else {
                throw SysfsParseError(path: path, line: i + 1, problem: "no \"N:\" at the start")
            }
            guard let irq = Int(raw[..<colon].trimmingCharacters) else { continue }
            var fields = raw[raw.index(after: colon)...].split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            var counts: [UInt64] = []
            while counts.count < cpus, let first = fields.first, let count = UInt64(first) {
                counts.append(count)
                fields.removeFirst()
            }
            guard counts.count == cpus else {
                throw SysfsParseError(path: path, line: i + 1, problem: "\(counts.count) counts for \(cpus) CPUs")
            }
            // The chip's name runs up to the hwirq (the first number after it); chips without a
            // domain print no hwirq.
            var chipWords: [String] = []
            var hwirq: UInt64?
            while let first = fields.first {
                if !chipWords.isEmpty, let number = UInt64(first) { hwirq = number; fields.removeFirst(); break }
                chipWords.append(first)
                fields.removeFirst()
                if chipWords.count > 4 { break }
            }
            var trigger: String?
            if let first = fields.first, first == "Edge" || first == "Level" { trigger = first; fields.removeFirst() }
            lines.append(Line(irq: irq, counts: counts, chip: chipWords.joined(separator: " "), hwirq: hwirq,
                              trigger: trigger, actions: fields.joined(separator: " ")))
        }
        self.lines = lines
    }
}

/// What a PCI MSI interrupt's hwirq says about its source.
/// - The global PCI/MSI domain (`pci_msi_create_irq_domain`, used under the ITS until it became
///   an MSI parent): `pci_msi_domain_calc_hwirq` = `msi_index | pci_dev_id(dev) << 11 |
///   pci_domain_nr << 27` (drivers/pci/msi/irqdomain.c), so it names the RID and the index.
/// - Per-device MSI domains (`pci_create_device_domain`, whose chip names end with the
///   device's name, e.g. "ITS-PCI-MSIX-0000:00:01.0"): `pci_device_domain_set_desc` sets
///   hwirq = `msi_index` alone.
public struct PCIMSIHardwareIRQ: Hashable, Sendable {
    public var segment: UInt32?
    public var requesterID: UInt16?
    public var index: Int

    public init(hwirq: UInt64, chip: String, device: String) {
        if chip.hasSuffix(device) {
            segment = nil
            requesterID = nil
            index = Int(truncatingIfNeeded: hwirq)
        } else {
            segment = UInt32(truncatingIfNeeded: hwirq >> 27)
            requesterID = UInt16(truncatingIfNeeded: (hwirq >> 11) & 0xFFFF)
            index = Int(hwirq & 0x7FF)
        }
    }
}

extension Substring {
    var trimmingCharacters: String { String(self).trimmingSpaces }
}
