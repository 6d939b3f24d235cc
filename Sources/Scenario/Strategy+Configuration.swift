import LinuxKernel
import PCI
import VMM

extension Strategy {
    /// The host kernel a strategy runs on: the release the scenario names (`host: kernel:`,
    /// `--kernel`), else the strategy's `baseRelease`, with the strategy's out-of-tree patches.
    func hostKernel(_ options: HostOptions) -> KernelConfiguration {
        KernelConfiguration(version: hostRelease(options), pageSize: options.pageSize, patches: hostPatches)
    }

    /// The host kernel release this strategy runs on in a scenario with `options`.
    public func hostRelease(_ options: HostOptions) -> KernelConfiguration.Version {
        options.kernel ?? baseRelease
    }

    /// The out-of-tree patches each strategy needs in the host (KernelPatches' doc comments
    /// name their origin): the RFC's uAPI and irqchip plumbing, Nicolin's VFIO override, the
    /// Part-2 window option, and the Part-3 explicit doorbell mapping and per-vector IOVAs.
    public var hostPatches: KernelPatches {
        definition.hostPatches
    }

    /// The VMM's configuration: the VM shape from the scenario, the MSI plan from the strategy.
    /// The VMM's configuration for `devices`: a device with a `guest-rid` keeps it (behind the
    /// bridge its `behind` names when its bus is not 0); the others take the VMM's positional
    /// choice below.
    func vmmConfiguration(_ vm: VMOptions, devices descriptions: [DeviceDescription]) -> VirtualMachineMonitor.Configuration {
        let devices = descriptions.count
        let layout: GuestMemoryMap = vm.layout == .virt ? .virt : .ramAtMSIWindow
        // 8 MiB, or 64 MiB for a 64K-page guest: QEMU's vSMMU advertises CMDQS = EVENTQS = 19,
        // and a 64K kernel (Q_MAX_SZ_SHIFT = 16 + 8) sizes its SMMU queues from that alone —
        // 8 MiB of commands, 16 MiB of events before `arm_smmu_init_one_queue` shrinks what
        // does not fit — leaving an 8 MiB guest too little to boot.
        //
        // Past the 31 devices one bus slot each used to allow, every further device adds
        // 256 KiB (its share of the guest SMMU's level-2 stream tables, ITS tables, DMA and
        // MSI pages), rounded up to 2 MiB: QEMU's `-m` is the user's to choose, and a guest
        // with hundreds of functions needs more than the minimal one.
        var ramSize: UInt64 = vm.guestPageSize == .size64K ? 0x400_0000 : 0x80_0000
        if devices > GuestPCILimits.slots {
            ramSize += (UInt64(devices - GuestPCILimits.slots) * 0x4_0000 + 0x1F_FFFF) & ~0x1F_FFFF
        }
        var configuration = VirtualMachineMonitor.Configuration(
            ramSize: ramSize, vcpuCount: vm.vcpus, viommu: vm.viommu == .none ? .none : .acceleratedSMMUv3,
            guestKernel: KernelConfiguration(defaultDomain: vm.guestDomain, pageSize: vm.guestPageSize),
            layout: layout, msi: msiPlan(layout: layout, ramSize: ramSize), firmware: vm.firmware)
        configuration.guestGIC = vm.guestGIC
        // Guest RIDs 00:01.0, 00:02.0, … on the guest's root bus (then functions 1–7 of those
        // slots past 31 devices: `VirtualMachineMonitor.rootBusRequesterID`), or 01:00.0,
        // 02:00.0, … behind root ports.
        configuration.guestRequesterIDs = (0..<devices).map {
            if let given = descriptions[$0].guestRequesterID { return given }
            return vm.behindRootPorts ? RequesterID(bus: UInt8(truncatingIfNeeded: 1 + $0), device: 0, function: 0)
                : VirtualMachineMonitor.rootBusRequesterID(index: $0)
        }
        for description in descriptions {
            if let rid = description.guestRequesterID, rid.bus != 0, let bridge = description.guestBridge {
                configuration.guestBridges[rid.bus] = bridge.kind
            }
        }
        return configuration
    }

    /// What the VMM does for MSIs under this strategy (MSIPlan's doc comments): the guest RMR
    /// (rmr-identity, sw-msi-window), the window option (sw-msi-window), per-vector guest IOVAs
    /// and the explicit vITS page mapping (irqchip-relay, vfio-override, vits-direct).
    public func msiPlan(layout: GuestMemoryMap, ramSize: UInt64) -> MSIPlan {
        switch definition.msiPlan {
        case .none: MSIPlan()
        case .rmrIdentity: .rmrIdentity
        case .swMSIWindow: .swMSIWindow(for: layout, ramSize: ramSize)
        case .guestIOVAs: .guestIOVAs
        }
    }
}
