#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Bus
import Firmware
import Machine
import PCI
@testable import LinuxKernel

/// Helpers for the host scenarios: machines other than the harness's presets, a minimal PCI
/// driver probe, and the device's own view of its MSI-X table.
enum HostScenario {
    /// A host on a machine built from a QEMU device-tree dump in Tests/Fixtures (for shapes the
    /// presets do not cover, such as qemu-virt without an SMMU).
    static func host(dtb relative: String, endpoints: [HostHarness.Endpoint] = HostHarness.defaultEndpoints,
                     configuration: KernelConfiguration = KernelConfiguration()) throws -> HostHarness {
        let machine = try Machine(topology: try Topology(dtb: try fixture(relative)), name: relative)
        return try HostHarness.make(machine: machine, endpoints: endpoints, configuration: configuration)
    }

    static func fixture(_ relative: String) throws -> [UInt8] {
        let tests = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false).dropLast(2).joined(separator: "/")
        return try DeviceTreeFile.read(path: tests + "/Fixtures/" + relative)
    }

    struct FixtureMissing: Error { let path: String }

    /// Counts handler runs per Linux IRQ number.
    final class Counter { var values: [Int: Int] = [:] }

    /// A driver's probe: `dma_set_mask_and_coherent(64)`, `pci_enable_device`, `pci_set_master`,
    /// `pci_alloc_irq_vectors(dev, 1, n, PCI_IRQ_MSIX)`, `request_irq` per vector. Returns the
    /// Linux IRQ numbers in vector order.
    static func probe(_ kernel: LinuxKernel, _ pci: PCIDevice, vectors: Int = 4, counter: Counter) throws -> [Int] {
        // dma_set_mask_and_coherent(DMA_BIT_MASK(64)): a 64-bit capable device.
        pci.device.dmaMask = dmaBitMask(64)
        var irqs: [Int] = []
        // really_probe: pci_dma_configure (the IOMMU probe on releases before
        // iommuProbeAtDeviceAdd), then the driver's probe body.
        try kernel.pci.probeDriver(pci, name: "test-driver") { () throws(Errno) in
            try kernel.pci.enableDevice(pci)
            try kernel.pci.setMaster(pci)
            let n = try kernel.pci.allocateIRQVectors(pci, min: 1, max: vectors, flags: .msix)
            for i in 0..<n {
                let irq = try kernel.pci.irqVector(pci, i)
                try kernel.irq.requestIRQ(irq, name: "\(pci.device.name)-\(i)") { irq, _ in
                    counter.values[irq, default: 0] += 1
                    return .handled
                }
                irqs.append(irq)
            }
        }
        return irqs
    }

    /// MSI-X table entry `index` as the function itself holds it (PCIe r6.0 §7.7.2: Message
    /// Address, Upper Address, Data at +0, +4, +8 of the 16-byte entry).
    static func entry(_ function: PCIFunction, _ index: Int) -> (address: UInt64, data: UInt32) {
        let base = UInt64(index) * 16
        let lo = function.barRead(bar: 0, offset: base, size: 4)
        let hi = function.barRead(bar: 0, offset: base + 4, size: 4)
        let data = function.barRead(bar: 0, offset: base + 8, size: 4)
        return (hi << 32 | lo, UInt32(truncatingIfNeeded: data))
    }

    /// The kernel's PCI device for a harness function.
    static func pciDevice(_ harness: HostHarness, _ index: Int) -> PCIDevice? {
        guard index < harness.functions.count else { return nil }
        return harness.kernel.pci.device(harness.functions[index].requesterID)
    }
}
