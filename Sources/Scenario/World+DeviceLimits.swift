import Bus
import GIC
import LinuxKernel
import Machine
import PCI
import VMM

extension World {
    /// How many devices a scenario may hold is what the platform allows, not a fixed count:
    ///
    /// - the guest's PCI topology: QEMU `virt`'s `pcie.0` has 31 usable slots of 8 functions
    ///   (00:00.0 is the host bridge), so 248 functions placed by position on the root bus, or
    ///   248 root ports each with its own bus (`GuestPCILimits`; the VMM checks bus numbers
    ///   against the guest ECAM window and explicit `guest-rid`s itself);
    /// - KVM's route table: every device gets a GSI per vector it can have from
    ///   `VirtualMachineMonitor.firstMSIGSI`, and `kvm_set_irq_routing` refuses a GSI at or above
    ///   KVM_MAX_IRQ_ROUTES (4096, include/linux/kvm_host.h in every release modelled);
    /// - the host ITS: a device's DeviceID (its RID through the host bridge's `msi-map`) must fit
    ///   GITS_TYPER.Devbits (`its_msi_prepare` → `its_create_device` refuses a larger one). The
    ///   guest's vITS has Devbits 16 (KVM's VITS_TYPER_DEVBITS), which every RID fits.
    ///
    /// The host side's own bus and bridge limits are checked where each device is attached.
    /// Nil when the scenario fits; otherwise one sentence naming the limit.
    static func checkDeviceLimits(_ scenario: ScenarioDescription, machine: Machine, rootComplex rc: RootComplex) -> String? {
        checkGuestPlacement(scenario) ?? checkInterruptLimits(scenario, machine: machine, rootComplex: rc)
    }

    /// The guest PCI topology's part of `checkDeviceLimits`, which needs no vector count.
    static func checkGuestPlacement(_ scenario: ScenarioDescription) -> String? {
        let devices = scenario.devices
        if let index = devices.indices.last(where: { devices[$0].guestRequesterID == nil }),
           index >= GuestPCILimits.rootBusFunctions {
            let placement = scenario.vm.behindRootPorts
                ? "each device behind its own root port needs one of the \(GuestPCILimits.rootBusFunctions) functions of the guest's root bus pcie.0"
                : "the guest's root bus pcie.0 holds \(GuestPCILimits.rootBusFunctions) functions"
            return "device \(index) (placed by position, without a guest-rid) does not fit: \(placement) (QEMU virt: slots 1–31 × functions 0–7; 00:00.0 is the host bridge)"
        }
        return nil
    }

    /// The KVM route and host ITS parts of `checkDeviceLimits`, once each device's vector count
    /// is known to be in range.
    static func checkInterruptLimits(_ scenario: ScenarioDescription, machine: Machine, rootComplex rc: RootComplex) -> String? {
        let devices = scenario.devices
        var gsis = Int(VirtualMachineMonitor.firstMSIGSI)
        for device in devices { gsis += max(device.vectors, 1) }
        if gsis > Int(KVMConstants.maxIRQRoutes) {
            return "the devices' \(gsis - Int(VirtualMachineMonitor.firstMSIGSI)) vectors need KVM GSIs \(VirtualMachineMonitor.firstMSIGSI)–\(gsis - 1), but KVM_MAX_IRQ_ROUTES is \(KVMConstants.maxIRQRoutes) (include/linux/kvm_host.h): at most \(Int(KVMConstants.maxIRQRoutes) - Int(VirtualMachineMonitor.firstMSIGSI)) vectors in all"
        }
        if let bits = machine.its.map(\.configuration.deviceIDBits).max() {
            for (index, device) in devices.enumerated() {
                let rid = device.requesterID
                let deviceID = rc.msiMap.map { $0.lookup(rid).id } ?? UInt32(rid.rawValue)
                guard let deviceID else { continue }
                if bits < 32, deviceID >= UInt32(1) << UInt32(bits) {
                    return "device \(index) \(rid) has DeviceID \(Hex.format(UInt64(deviceID), minDigits: 1)), beyond the host ITS's \(bits) DeviceID bits (GITS_TYPER.Devbits)"
                }
            }
        }
        return nil
    }
}
