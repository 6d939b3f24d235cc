/// How the VMM describes the guest's platform to the guest kernel.
///
/// QEMU `virt` hands the guest a device tree unless it boots UEFI firmware with ACPI enabled,
/// and an accelerated SMMUv3 (`-device arm-smmuv3,accel=on`) is refused without ACPI: QEMU 11.0
/// `create_smmuv3_dev_dtb` fails with "SMMUv3 with accel=on not supported for DT" unless
/// `vms->bootinfo.firmware_loaded && virt_is_acpi_enabled(vms)`. The model still lets a
/// scenario pick `dt` with an accelerated vSMMU, to show what the guest does without the IORT
/// RMR that only the ACPI tables carry.
public enum GuestFirmware: String, Hashable, Sendable, CaseIterable {
    /// IORT, MADT and MCFG as QEMU's `virt-acpi-build.c` writes them (`GuestACPITables`).
    case acpi
    /// QEMU virt's device tree (`GuestDeviceTree`).
    case dt

    /// ACPI for a guest with an accelerated vSMMU (QEMU requires it), the device tree otherwise.
    public static func `default`(acceleratedVSMMU: Bool) -> GuestFirmware {
        acceleratedVSMMU ? .acpi : .dt
    }
}
