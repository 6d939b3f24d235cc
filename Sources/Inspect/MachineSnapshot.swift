import Firmware

/// Everything `inspect` reads from a machine, parsed: the firmware description, the IOMMU
/// groups, the PCI functions, `/proc/interrupts`, `/proc/iomem`, the command line and the
/// release. What is missing is listed in `missing`; what exists but cannot be used is in
/// `problems` (each naming its file, and line where there is one) and the rest is read on.
public struct MachineSnapshot {
    /// One `/sys/bus/pci/devices/BDF`.
    public struct PCIFunctionSysfs {
        public var name: String
        public var segment: UInt32
        public var bus: UInt8
        public var device: UInt8
        public var function: UInt8
        public var vendor: UInt16?
        public var deviceID: UInt16?
        public var classCode: UInt32?
        public var config: PCIConfigSnapshot?
        public var irq: Int?
        /// The bound driver's name (the `driver` link's last component), nil when unbound.
        public var driver: String?
        /// The group number (the `iommu_group` link's last component), nil without one.
        public var iommuGroup: Int?
        /// `msi_irqs/`: each Linux interrupt and its mode ("msi" or "msix"), by interrupt number.
        public var msiIRQs: [(irq: Int, mode: String)]
    }

    /// The firmware description: a flattened device tree, or ACPI tables by signature.
    public enum Firmware {
        case deviceTree([UInt8])
        case acpi(ACPITableSet)
    }

    public var source: String
    public var firmware: Firmware?
    public var groups: [IOMMUGroupSysfs] = []
    public var functions: [PCIFunctionSysfs] = []
    public var interrupts: ProcInterrupts?
    public var iomem: [String]?
    public var commandLine: KernelCommandLine?
    public var release: String?
    /// `CONFIG_IOMMU_DEFAULT_*` from `/boot/config-RELEASE`, when that file is there.
    public var buildConfig: [UInt8]?
    public var missing: [String] = []
    public var problems: [String] = []

    /// Reads `source`. Never throws: every problem is recorded and the rest is read.
    public init(_ source: any SnapshotSource) {
        self.source = source.name
        commandLine = file(source, "proc/cmdline", limit: SnapshotLimits.attribute).map { KernelCommandLine(SysfsText.value($0)) }
        readFirmware(source)
        readGroups(source)
        readFunctions(source)
        if let bytes = file(source, "proc/interrupts", limit: SnapshotLimits.procTable) {
            do { interrupts = try ProcInterrupts(bytes, path: "proc/interrupts") } catch { problems.append(error.description) }
        }
        iomem = file(source, "proc/iomem", limit: SnapshotLimits.procTable).map(SysfsText.lines)
        release = file(source, "proc/sys/kernel/osrelease", limit: SnapshotLimits.attribute).map(SysfsText.value)
        if let release, !release.isEmpty, !release.contains("/") {
            buildConfig = try? source.read("boot/config-\(release)", limit: SnapshotLimits.procTable)
        }
    }

    /// The file's bytes; a missing one is noted, an unusable one is a problem.
    mutating func file(_ source: any SnapshotSource, _ path: String, limit: Int, optional: Bool = false) -> [UInt8]? {
        do {
            if let bytes = try source.read(path, limit: limit) { return bytes }
            if !optional { missing.append(path) }
        } catch {
            problems.append(error.description)
        }
        return nil
    }

    /// The description the kernel booted from. arm64's `acpi_boot_table_init`
    /// (arch/arm64/kernel/acpi.c) uses ACPI unless `acpi=off`, or the device tree is not a stub
    /// (`dt_is_stub`: nothing at the top level but `/chosen`, and `/hypervisor` under Xen) and
    /// neither `acpi=on` nor `acpi=force` was given. A UEFI boot with ACPI still has a
    /// `/sys/firmware/fdt`: the EFI stub's, holding only `/chosen`.
    mutating func readFirmware(_ source: any SnapshotSource) {
        let fdt = file(source, "sys/firmware/fdt", limit: SnapshotLimits.firmware, optional: true)
        let acpiOff = commandLine?.acpi == "off"
        let acpiOn = commandLine?.acpi == "on" || commandLine?.acpi == "force"
        if let fdt, acpiOff || (!acpiOn && !Self.isStub(fdt)) {
            firmware = .deviceTree(fdt)
            return
        }
        var tables = ACPITableSet()
        for name in ["IORT", "APIC", "MCFG"] {
            guard let bytes = file(source, "sys/firmware/acpi/tables/\(name)", limit: SnapshotLimits.firmware, optional: true) else { continue }
            do { try tables.add(bytes, name: "sys/firmware/acpi/tables/\(name)") } catch { problems.append("\(error)") }
        }
        if tables.iort != nil || tables.madt != nil || tables.mcfg != nil {
            firmware = .acpi(tables)
        } else if let fdt {
            firmware = .deviceTree(fdt)
        } else {
            missing.append("sys/firmware/fdt")
            missing.append("sys/firmware/acpi/tables/{IORT,APIC,MCFG}")
        }
    }

    mutating func readGroups(_ source: any SnapshotSource) {
        guard let names = source.list("sys/kernel/iommu_groups") else {
            missing.append("sys/kernel/iommu_groups")
            return
        }
        for name in names {
            guard let number = Int(name), number >= 0 else { continue }
            let dir = "sys/kernel/iommu_groups/\(name)"
            let type = file(source, "\(dir)/type", limit: SnapshotLimits.attribute).map(SysfsText.value)
            var regions: [IOMMUGroupSysfs.ReservedRegion] = []
            if let bytes = file(source, "\(dir)/reserved_regions", limit: SnapshotLimits.attribute) {
                do { regions = try IOMMUGroupSysfs.parseReservedRegions(bytes, path: "\(dir)/reserved_regions") } catch { problems.append(error.description) }
            }
            var devices: [String] = []
            for device in source.list("\(dir)/devices") ?? [] {
                _ = source.readLink("\(dir)/devices/\(device)")
                devices.append(device)
            }
            groups.append(IOMMUGroupSysfs(number: number, type: type, reservedRegions: regions, devices: devices))
        }
        groups.sort { $0.number < $1.number }
    }

    mutating func readFunctions(_ source: any SnapshotSource) {
        guard let names = source.list("sys/bus/pci/devices") else {
            missing.append("sys/bus/pci/devices")
            return
        }
        for name in names {
            guard let address = Self.parseBDF(name) else {
                problems.append("sys/bus/pci/devices/\(name): not a PCI address (DDDD:BB:DD.F)")
                continue
            }
            let dir = "sys/bus/pci/devices/\(name)"
            var function = PCIFunctionSysfs(name: name, segment: address.segment, bus: address.bus, device: address.device,
                                            function: address.function, msiIRQs: [])
            function.vendor = file(source, "\(dir)/vendor", limit: SnapshotLimits.attribute).flatMap { SysfsText.hex(SysfsText.value($0)) }.map { UInt16(truncatingIfNeeded: $0) }
            function.deviceID = file(source, "\(dir)/device", limit: SnapshotLimits.attribute).flatMap { SysfsText.hex(SysfsText.value($0)) }.map { UInt16(truncatingIfNeeded: $0) }
            function.classCode = file(source, "\(dir)/class", limit: SnapshotLimits.attribute).flatMap { SysfsText.hex(SysfsText.value($0)) }.map { UInt32(truncatingIfNeeded: $0) }
            if let bytes = file(source, "\(dir)/config", limit: SnapshotLimits.configSpace) {
                do { function.config = try PCIConfigSnapshot(bytes, path: "\(dir)/config") } catch { problems.append(error.description) }
            }
            function.irq = file(source, "\(dir)/irq", limit: SnapshotLimits.attribute).flatMap { Int(SysfsText.value($0)) }
            function.driver = source.readLink("\(dir)/driver").map(Self.lastComponent)
            function.iommuGroup = source.readLink("\(dir)/iommu_group").flatMap { Int(Self.lastComponent($0)) }
            for entry in source.list("\(dir)/msi_irqs") ?? [] {
                guard let irq = Int(entry) else { continue }
                let mode = file(source, "\(dir)/msi_irqs/\(entry)", limit: SnapshotLimits.attribute).map(SysfsText.value) ?? "?"
                function.msiIRQs.append((irq, mode))
            }
            function.msiIRQs.sort { $0.irq < $1.irq }
            functions.append(function)
        }
    }

    /// `dt_is_stub`: the root has no child but `chosen` (and `hypervisor`). An unreadable blob
    /// is not a stub (the DT reader then names its problem).
    static func isStub(_ fdt: [UInt8]) -> Bool {
        guard let tree = try? DeviceTree(dtb: fdt) else { return false }
        return tree.root.children.allSatisfy { $0.nodeName == "chosen" || $0.nodeName == "hypervisor" }
    }

    static func lastComponent(_ link: String) -> String {
        String(link.split(separator: "/").last ?? Substring(link))
    }

    /// `DDDD:BB:DD.F` (`pci_name`: "%04x:%02x:%02x.%d"; domains above 0xffff print wider).
    public static func parseBDF(_ name: String) -> (segment: UInt32, bus: UInt8, device: UInt8, function: UInt8)? {
        let parts = name.split(separator: ":")
        guard parts.count == 3 else { return nil }
        let devfn = parts[2].split(separator: ".")
        guard devfn.count == 2, let segment = UInt32(parts[0], radix: 16), let bus = UInt8(parts[1], radix: 16),
              let device = UInt8(devfn[0], radix: 16), device < 32, let function = UInt8(devfn[1]), function < 8 else { return nil }
        return (segment, bus, device, function)
    }
}
