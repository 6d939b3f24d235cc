import Foundation
import LinuxKernel
import Testing
@testable import Inspect

/// The text formats `inspect` reads, each from the kernel function that prints it.
@Suite("inspect: sysfs and procfs formats")
struct SnapshotFormatTests {
    @Test("/proc/interrupts: counts per CPU, chip, hwirq, trigger and actions; IPI lines skipped")
    func procInterrupts() throws {
        let text = """
                       CPU0       CPU1
              11:       4021       3977     GICv3  27 Level     arch_timer
              14:          0          0   ITS-MSI 16384 Edge      virtio0-config
              15:         12          0   ITS-MSI 16385 Edge      virtio0-input.0, virtio0-output.0
              40:          3          0  ITS-PCI-MSIX-0000:00:02.0   1 Edge      eth0-rx
            IPI0:        10         20       Rescheduling interrupts
            Err:          0

            """
        let parsed = try ProcInterrupts(Array(text.utf8), path: "proc/interrupts")
        #expect(parsed.cpus == 2)
        #expect(parsed.lines.map(\.irq) == [11, 14, 15, 40])
        let line = try #require(parsed.line(irq: 15))
        #expect(line.counts == [12, 0])
        #expect(line.chip == "ITS-MSI")
        #expect(line.hwirq == 16385)
        #expect(line.trigger == "Edge")
        #expect(line.actions == "virtio0-input.0, virtio0-output.0")
        // 16385 = index 1 | RID 00:01.0 (8) << 11 on segment 0.
        let global = PCIMSIHardwareIRQ(hwirq: 16385, chip: "ITS-MSI", device: "0000:00:01.0")
        #expect(global.requesterID == 8 && global.index == 1 && global.segment == 0)
        // A per-device domain's hwirq is the index alone.
        let perDevice = PCIMSIHardwareIRQ(hwirq: 1, chip: "ITS-PCI-MSIX-0000:00:02.0", device: "0000:00:02.0")
        #expect(perDevice.requesterID == nil && perDevice.index == 1)
    }

    @Test("/proc/interrupts: a line with too few counts is an error naming its line")
    func procInterruptsError() {
        let text = "  CPU0 CPU1\n 11: 4021 GICv3 27 Level arch_timer\n"
        #expect(throws: SysfsParseError(path: "proc/interrupts", line: 2, problem: "1 counts for 2 CPUs")) {
            _ = try ProcInterrupts(Array(text.utf8), path: "proc/interrupts")
        }
    }

    @Test("reserved_regions: iommu_group_show_resv_regions lines, printed back the same; a bad line names its number")
    func reservedRegions() throws {
        let text = "0x0000000008000000 0x00000000080fffff msi\n0x0000000040000000 0x000000004000ffff direct-relaxable\n"
        let regions = try IOMMUGroupSysfs.parseReservedRegions(Array(text.utf8), path: "r")
        #expect(regions.map(\.description).joined(separator: "\n") + "\n" == text)
        #expect(regions[0].end == 0x80F_FFFF && regions[0].type == "msi")
        #expect(throws: SysfsParseError.self) {
            _ = try IOMMUGroupSysfs.parseReservedRegions(Array("0x1 0x2 msi\n0x5 0x4 msi\n".utf8), path: "r")
        }
    }

    @Test("command line: kstrtobool values, last one wins, passthrough over strict over the build default")
    func commandLine() {
        #expect(KernelCommandLine("iommu.passthrough=1").defaultDomain(buildDefault: .dmaStrict) == .identity)
        #expect(KernelCommandLine("iommu.passthrough=on iommu.passthrough=off").defaultDomain(buildDefault: .identity) == .dmaStrict)
        #expect(KernelCommandLine("iommu.strict=0").defaultDomain(buildDefault: .dmaStrict) == .dmaLazy)
        #expect(KernelCommandLine("iommu.strict=y").defaultDomain(buildDefault: .dmaLazy) == .dmaStrict)
        #expect(KernelCommandLine("iommu.strict=maybe quiet").defaultDomain(buildDefault: .dmaLazy) == .dmaLazy)
        #expect(KernelCommandLine.kstrtobool("of") == false && KernelCommandLine.kstrtobool("o") == nil)
        #expect(KernelCommandLine("console=ttyAMA0 acpi=force initrd=initrd").acpi == "force")
        #expect(KernelCommandLine("acpi=maybe").acpi == nil)
        #expect(KernelBuildConfig.defaultDomain(Array("# x\nCONFIG_IOMMU_DEFAULT_DMA_LAZY=y\n".utf8)) == .dmaLazy)
    }

    @Test("kernel release strings map to the newest named release not after them")
    func releases() {
        #expect(KernelReleaseMapping.modelled("6.1.0-28-arm64") == .v6_14)
        #expect(KernelReleaseMapping.modelled("6.12.48+deb12-arm64") == .v6_14)
        #expect(KernelReleaseMapping.modelled("6.15.0") == .v6_15)
        #expect(KernelReleaseMapping.modelled("6.18.44-fc") == .v6_15)
        #expect(KernelReleaseMapping.modelled("6.19-rc1") == .v6_19)
        #expect(KernelReleaseMapping.modelled("7.2.0") == .v7_0)
        #expect(KernelReleaseMapping.modelled("garbage") == nil)
    }

    @Test("BDF names: pci_name's %04x:%02x:%02x.%d, device < 32 and function < 8")
    func bdf() {
        #expect(MachineSnapshot.parseBDF("0000:00:1f.7")! == (0, 0, 0x1F, 7))
        #expect(MachineSnapshot.parseBDF("0001:80:02.0")! == (1, 0x80, 2, 0))
        #expect(MachineSnapshot.parseBDF("0000:00:20.0") == nil)
        #expect(MachineSnapshot.parseBDF("0000:00:01.8") == nil)
        #expect(MachineSnapshot.parseBDF("virtio0") == nil)
    }
}
