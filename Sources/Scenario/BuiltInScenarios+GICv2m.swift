import VMM

extension BuiltInScenarios {
    /// The seed on a guest whose interrupt controller is a GICv2 with QEMU's GICv2m frame
    /// (`-machine virt,gic-version=2` under KVM: vGICv2, frame at 0x0802_0000, SPIs 80…143;
    /// `GuestInterruptController.gicv2m`). The host, the vSMMU and the passthrough function are
    /// the seed's: only the guest's side of the interrupt path changes. `msi-gpa` is the frame's
    /// MSI_SETSPI_NS, 0x0802_0040.
    public static let seedGICv2m: ScenarioDescription = {
        var vm = VMOptions()
        vm.guestGIC = .gicv2m
        return ScenarioDescription(name: "seed-gicv2m", summary: "the seed on a GICv2 + GICv2m guest (gic-version=2: vGICv2, SPI MSIs)", vm: vm)
    }()
}
