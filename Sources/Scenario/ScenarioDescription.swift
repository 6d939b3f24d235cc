import Bus
import LinuxKernel
import Machine
import PCI
import VMM

/// Everything that defines one run, independent of the strategy: the platform, the host
/// kernel, the VM and its guest, the passthrough devices, the event script, and optional
/// expectations. Built-in scenarios are values of this type; a scenario file (YAML) is parsed
/// into one (`ScenarioFile`).
public struct ScenarioDescription: Hashable, Sendable {
    public var name: String
    /// One line saying what the scenario shows.
    public var summary: String
    public var platform: Platform
    public var host: HostOptions
    public var vm: VMOptions
    public var devices: [DeviceDescription]
    /// The strategies to run; empty means every strategy.
    public var strategies: [Strategy]
    /// The event script; empty means "fire every vector of every device once".
    public var events: [ScenarioEvent]
    public var expectations: [Expectation]
    /// The host bridge the devices go under (`BridgeChoice`: an index as `doorbell topology`
    /// lists the bridges, or a node path); nil: the first enabled one with an ECAM window.
    public var bridge: String? = nil

    public init(name: String, summary: String = "", platform: Platform = .preset(.qemuVirt), host: HostOptions = HostOptions(),
                vm: VMOptions = VMOptions(), devices: [DeviceDescription] = [DeviceDescription()],
                strategies: [Strategy] = [], events: [ScenarioEvent] = [], expectations: [Expectation] = []) {
        self.name = name
        self.summary = summary
        self.platform = platform
        self.host = host
        self.vm = vm
        self.devices = devices
        self.strategies = strategies
        self.events = events
        self.expectations = expectations
    }

    /// Whether the host's GIC is a GICv4.1: `gic: v4.1`, or no `gic:` on a GICv4.1 preset.
    public var hostHasGICv41: Bool {
        if let gic = host.gic { return gic == .v41 }
        if case .preset(let preset) = platform { return preset.options.gic.virtualLPIs }
        return false
    }

    /// The strategies this scenario runs, in the canonical order.
    public var strategiesToRun: [Strategy] { strategies.isEmpty ? Strategy.allCases : strategies.sorted() }

    /// The events to run: the script, or one `fire` per vector of every device.
    public var script: [ScenarioEvent] {
        if !events.isEmpty { return events }
        var result: [ScenarioEvent] = []
        for (index, device) in devices.enumerated() {
            for vector in 0..<device.activeVectors { result.append(.fire(device: index, vector: vector)) }
        }
        return result
    }
}

/// The host platform: a built-in preset or a description on disk (a device tree blob, an ACPI
/// table, or a directory of ACPI tables, told apart by their contents when read).
public enum Platform: Hashable, Sendable, CustomStringConvertible {
    case preset(MachinePreset)
    case deviceTree(path: String)

    public var description: String {
        switch self {
        case .preset(let preset): preset.rawValue
        case .deviceTree(let path): path
        }
    }
}

/// Host kernel options that are not the strategy's to choose.
public struct HostOptions: Hashable, Sendable {
    /// The host's GIC when the scenario names one (a device tree cannot tell GICv3 from GICv4):
    /// nil keeps the platform's (`MachinePreset.options`, GICv3 for a file).
    public enum GIC: String, Hashable, Sendable, CaseIterable {
        /// A GICv3 with ITS (`GICConfiguration.qemuVirt`).
        case v3
        /// A GICv4.1 (`GICConfiguration.gicv41`): the host boots with
        /// `kvm-arm.vgic_v4_enable=1`, so KVM forwards passthrough MSIs as vLPIs.
        case v41 = "v4.1"
    }

    /// The host's PAGE_SIZE.
    public var pageSize: Granule
    /// The host kernel release for every strategy; nil: each strategy's `baseRelease`.
    public var kernel: KernelConfiguration.Version?
    /// The host's GIC (`gic:`); nil: the platform's.
    public var gic: GIC?
    public init(pageSize: Granule = .size4K, kernel: KernelConfiguration.Version? = nil, gic: GIC? = nil) {
        self.pageSize = pageSize
        self.kernel = kernel
        self.gic = gic
    }
}

/// The VM and its guest. Equality and hashing compare the resolved `firmware`, so a scenario
/// that leaves it to the default equals one that names the default.
public struct VMOptions: Hashable, Sendable {
    public enum VIOMMU: String, Hashable, Sendable, CaseIterable {
        case none
        /// QEMU's `arm-smmuv3-accel`: the guest's stage 1 nested over the host's stage 2.
        case acceleratedSMMUv3 = "smmuv3-accel"
    }

    /// The guest's IPA map.
    public enum Layout: String, Hashable, Sendable, CaseIterable {
        /// QEMU `virt`: RAM from 0x4000_0000, the GIC at 0x0800_0000.
        case virt
        /// RAM at 0x0800_0000, over the host's default MSI window.
        case ramAtMSIWindow = "ram-at-msi-window"
    }

    /// Who owns the passthrough functions inside the guest.
    public enum GuestOwner: String, Hashable, Sendable, CaseIterable {
        /// A guest kernel driver: `pci_alloc_irq_vectors` + `request_irq` (the default).
        case driver
        /// A guest user process through the guest's own VFIO (DPDK, a nested VMM): vfio-pci
        /// bound, a type1v2 container (`VFIO_SET_IOMMU`), `VFIO_DEVICE_SET_IRQS` with eventfds.
        case vfioType1 = "vfio-type1"
        /// The same through the guest's iommufd: the cdev bound with
        /// `VFIO_DEVICE_BIND_IOMMUFD` and attached to an IOAS (an auto paging domain).
        case vfioIOMMUFD = "vfio-iommufd"
    }

    public var viommu: VIOMMU
    /// Who owns the functions in the guest: a kernel driver, or a guest VFIO user.
    public var guestOwner: GuestOwner = .driver
    /// The guest's default domain for the device (only meaningful with a vIOMMU).
    public var guestDomain: KernelConfiguration.DefaultDomain
    public var guestPageSize: Granule
    public var layout: Layout
    public var vcpus: Int
    /// Where the VMM puts each function in the guest: on the root bus (00:0N.0, QEMU's default
    /// for `-device vfio-pci`), or behind its own `pcie-root-port` (0N:00.0), which is what
    /// hot-plug needs (QEMU docs/pcie.txt: integrated endpoints cannot be hot-plugged).
    public var behindRootPorts: Bool
    /// The firmware named by the scenario (`firmware:`), nil when left to the default.
    public var firmwareChoice: GuestFirmware?
    /// The guest's interrupt controller (`guest-gic:`): a vGICv3 + vITS (`v3`, the default) or a
    /// vGICv2 + GICv2m frame (`v2m`, QEMU `gic-version=2`; `GuestInterruptController`).
    public var guestGIC: GuestInterruptController = .gicv3

    /// What the guest boots from: the scenario's choice, else ACPI with an accelerated vSMMU
    /// and the device tree without a vIOMMU (`GuestFirmware.default`).
    public var firmware: GuestFirmware {
        get { firmwareChoice ?? .default(acceleratedVSMMU: viommu == .acceleratedSMMUv3) }
        set { firmwareChoice = newValue }
    }

    public init(viommu: VIOMMU = .acceleratedSMMUv3, guestDomain: KernelConfiguration.DefaultDomain = .dmaStrict,
                guestPageSize: Granule = .size4K, layout: Layout = .virt, vcpus: Int = 2, behindRootPorts: Bool = false,
                firmware: GuestFirmware? = nil) {
        self.behindRootPorts = behindRootPorts
        self.firmwareChoice = firmware
        self.viommu = viommu
        self.guestDomain = guestDomain
        self.guestPageSize = guestPageSize
        self.layout = layout
        self.vcpus = vcpus
    }

    public static func == (a: VMOptions, b: VMOptions) -> Bool {
        a.viommu == b.viommu && a.guestDomain == b.guestDomain && a.guestPageSize == b.guestPageSize && a.layout == b.layout
            && a.vcpus == b.vcpus && a.behindRootPorts == b.behindRootPorts && a.firmware == b.firmware
            && a.guestOwner == b.guestOwner && a.guestGIC == b.guestGIC
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(viommu)
        hasher.combine(guestDomain)
        hasher.combine(guestPageSize)
        hasher.combine(layout)
        hasher.combine(vcpus)
        hasher.combine(behindRootPorts)
        hasher.combine(firmware)
        hasher.combine(guestOwner)
        hasher.combine(guestGIC)
    }
}

/// One passthrough PCIe function: where it sits on the host and in the guest, its interrupt
/// capability, how many vectors its guest driver enables, and how it spreads them.
public struct DeviceDescription: Hashable, Sendable {
    public enum Interrupts: String, Hashable, Sendable, CaseIterable {
        case msix = "msi-x"
        case msi
    }

    /// The bridge a function sits behind when its bus is not 0 (on the host: `host-behind`; in
    /// the guest: `behind`). One bridge per bus, on bus 0 from device 0x1f down.
    public enum Bridge: String, Hashable, Sendable, CaseIterable {
        /// A PCIe root port: no DMA alias (`pci_for_each_dma_alias` passes over it).
        case rootPort = "root-port"
        /// A PCIe-to-PCI bridge (QEMU `pcie-pci-bridge`, 1b36:000e): the function's requests
        /// reach the root complex as (secondary bus, 00.0).
        case pcieToPCIBridge = "pcie-to-pci-bridge"

        public var kind: PCIToPCIBridge.Kind { self == .rootPort ? .rootPort : .pcieToPCI }
    }

    /// How the guest driver asks for its vectors.
    public enum Affinity: String, Hashable, Sendable, CaseIterable {
        /// `pci_alloc_irq_vectors(dev, n, n, flag)`: every vector unmanaged.
        case unmanaged
        /// `pci_alloc_irq_vectors_affinity(dev, pre + post + 1, n, flag | PCI_IRQ_AFFINITY,
        /// {pre, post})`: the vectors between pre and post spread over the vCPUs as managed
        /// interrupts (what NVMe and virtio-blk/-scsi multiqueue do).
        case managed
    }

    /// The function's host RID.
    public var requesterID: RequesterID
    public var interrupts: Interrupts
    /// MSI-X table size, or MSI vectors (1, 2, 4, 8, 16 or 32).
    public var vectors: Int
    /// The vectors the guest driver enables (`max_vecs`); nil: all of them. Fewer than the
    /// table (MSI-X) or than Multiple Message Capable (MSI) is allowed.
    public var enabledVectors: Int?
    /// The bridge above the host function when its bus is not 0; nil: a root port.
    public var hostBridge: Bridge?
    /// The function's guest RID; nil: the VMM's choice (`vm.slot`).
    public var guestRequesterID: RequesterID?
    /// The bridge above the guest function when its guest bus is not 0; nil: a root port.
    public var guestBridge: Bridge?
    public var affinity: Affinity
    /// `struct irq_affinity`'s `pre_vectors` and `post_vectors` (managed only).
    public var preVectors: Int
    public var postVectors: Int

    public init(requesterID: RequesterID = RequesterID(bus: 0, device: 1, function: 0), interrupts: Interrupts = .msix, vectors: Int = 4,
                enabledVectors: Int? = nil, hostBridge: Bridge? = nil, guestRequesterID: RequesterID? = nil, guestBridge: Bridge? = nil,
                affinity: Affinity = .unmanaged, preVectors: Int = 0, postVectors: Int = 0) {
        self.requesterID = requesterID
        self.interrupts = interrupts
        self.vectors = vectors
        self.enabledVectors = enabledVectors
        self.hostBridge = hostBridge
        self.guestRequesterID = guestRequesterID
        self.guestBridge = guestBridge
        self.affinity = affinity
        self.preVectors = preVectors
        self.postVectors = postVectors
    }

    /// The vectors the guest driver asks for: `enabledVectors`, else every one.
    public var activeVectors: Int { enabledVectors ?? vectors }
}

/// What a scenario expects of a strategy's run. `doorbell run` exits 1 when one does not hold.
public struct Expectation: Hashable, Sendable {
    /// `none` in a file. Not named `.none`: with an optional property that would read as
    /// `Optional.none` (no expectation at all).
    public enum Delivered: Hashable, Sendable {
        case all
        case nothing
        case count(Int)
    }

    /// The strategy it applies to; nil: every strategy the scenario runs.
    public var strategy: Strategy?
    public var delivered: Delivered?
    /// Where the first failing vector stopped.
    public var firstFailure: FailurePoint?
    /// Whether every invariant must hold (true) or some must be violated (false).
    public var invariantsHold: Bool?

    public init(strategy: Strategy? = nil, delivered: Delivered? = nil, firstFailure: FailurePoint? = nil, invariantsHold: Bool? = nil) {
        self.strategy = strategy
        self.delivered = delivered
        self.firstFailure = firstFailure
        self.invariantsHold = invariantsHold
    }
}

/// Where an MSI stopped.
public enum FailurePoint: String, Hashable, Sendable, CaseIterable {
    /// It never left the device (masked, disabled, no such vector).
    case device
    /// The setup itself failed (a uAPI call, the guest's driver).
    case setup
    case stage1 = "stage-1"
    case stage2 = "stage-2"
    /// The SMMU's configuration (STE/CD fetch or check).
    case smmuConfiguration = "smmu-configuration"
    /// The physical ITS dropped it.
    case its
    /// The host took it but it reached no guest vector (no eventfd, no route, vITS drop).
    case host
    /// A guest LPI was raised, but not the one the guest expects or not on its vCPU.
    case misrouted
}
