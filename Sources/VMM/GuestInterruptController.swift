/// The guest's interrupt controller: what `-machine virt,gic-version=…` gives a KVM guest.
///
/// `gicv3` (the default): KVM's vGICv3 with a vITS (`kvm_arm_gicv3_realize`, `kvm_arm_its_realize`);
/// a vfio-pci vector's MSI becomes a KVM MSI route (`kvm_irqchip_add_msi_route` →
/// `kvm_arch_fixup_msi_route`, whose doorbell is `msi-gpa` behind an accelerated SMMUv3), and
/// KVM injects it into the vITS (`kvm_set_msi` → `vgic_its_inject_msi`).
///
/// `gicv2m`: `gic-version=2` with KVM. Everything below was read in the sources named (the
/// stored qemu/qemu arm_gicv2m.c, arm_gic_kvm.c and kvm-all.c; hw/arm/virt.c's `create_v2m`,
/// `a15irqmap`, `base_memmap`, `fdt_add_v2m_gic_node` and virt-acpi-build.c's `build_madt`
/// from QEMU's tree and its smmuv3-accel series; torvalds/linux vgic-irqfd.c and
/// irq-gic-v2m.c):
///
/// - QEMU hw/arm/virt.c `create_gic`: a GICv2 gets `create_v2m` (never an ITS, which needs a
///   GICv3). `create_v2m` maps the `arm-gicv2m` device at `VIRT_GIC_V2M` (0x0802_0000, 4 KiB)
///   with `base-spi` = `a15irqmap[VIRT_GIC_V2M]` = 48 and `num-spi` = `NUM_GICV2M_SPIS` = 64.
///   The distributor sits at `VIRT_GIC_DIST` 0x0800_0000 and the CPU interface at
///   `VIRT_GIC_CPU` 0x0801_0000 (`base_memmap`).
/// - QEMU hw/intc/arm_gicv2m.c: MSI_TYPER reads `(base_spi + 32) << 16 | num_spi`, so the
///   guest sees INTIDs 80…143; a write to MSI_SETSPI_NS (0x40) pulses SPI `(value & 0x3ff) −
///   (base_spi + 32)` of the frame (`gicv2m_write`), a userspace MMIO device. Its
///   `gicv2m_realize` sets `kvm_gsi_direct_mapping = true` and `kvm_msi_via_irqfd_allowed`.
/// - QEMU hw/intc/arm_gic_kvm.c `kvm_arm_gic_realize`: KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_V2),
///   KVM_DEV_ARM_VGIC_GRP_NR_IRQS = `num-irq` (virt: `NUM_IRQS` 256 + 32), the distributor and
///   CPU interface addresses (KVM_VGIC_V2_ADDR_TYPE_DIST / _CPU), and one
///   KVM_IRQ_ROUTING_IRQCHIP route per SPI, GSI i → irqchip 0 pin i, committed
///   (`kvm_irqchip_add_irq_route`, `kvm_irqchip_commit_routes`).
/// - QEMU accel/kvm/kvm-all.c `kvm_irqchip_add_msi_route`: with `kvm_gsi_direct_mapping()` it
///   returns `kvm_arch_msi_data_to_gsi(msg.data)` before anything else — no MSI route is added
///   and `kvm_arch_fixup_msi_route` (where `msi-gpa` is used) is never called;
///   `kvm_irqchip_update_msi_route` returns 0 at once. target/arm/kvm.c
///   `kvm_arch_msi_data_to_gsi`: `(data − 32) & 0xffff`. VFIO's `vfio_add_kvm_msi_virq` then
///   binds the vector's eventfd to that GSI (KVM_IRQFD).
/// - Linux arch/arm64/kvm/vgic/vgic-irqfd.c: `kvm_set_routing_entry` takes an IRQCHIP entry with
///   pin < KVM_IRQCHIP_NUM_PINS and irqchip < KVM_NR_IRQCHIPS (else -EINVAL) and sets
///   `vgic_irqfd_set_irq`, which injects INTID pin + VGIC_NR_PRIVATE_IRQS (32) after
///   `vgic_valid_spi` (else -EINVAL) with `kvm_vgic_inject_irq`; `kvm_vgic_setup_default_irq_routing`
///   installs the same GSI i → pin i table at vGIC init. `kvm_set_msi` is -ENODEV without a vITS
///   (`vgic_has_its`), so a GICv2 VM has no MSI injection at all.
/// - Linux drivers/irqchip/irq-gic-v2m.c (the guest): `gicv2m_irq_domain_alloc` takes SPIs from
///   the frame's MSI_TYPER range and calls `iommu_dma_prepare_msi(desc, frame + 0x40)`, so a
///   guest whose device sits behind its vSMMU maps the frame's page in its stage 1;
///   `gicv2m_compose_msi_msg` writes address = frame + V2M_MSI_SETSPI_NS (0x40) through the
///   IOMMU cookie's IOVA (`iommu_dma_compose_msi_msg`; `msi_msg_set_addr` from v6.15), data =
///   the SPI INTID. Under ACPI, `gicv2m_acpi_init` registers `gicv2m_get_fwnode` as the PCI MSI
///   fwnode provider, which is where a PCI device's MSI domain comes from when the IORT names
///   no ITS the guest has.
///
/// So a passthrough vector on a GICv2m guest goes: device → host SMMU (guest stage 1 nested
/// over the host's stage 2) → the HOST's doorbell (the host's own ITS: VFIO programs the
/// physical MSI-X with the host's message, whatever the guest's interrupt controller) → host
/// LPI → `vfio_msihandler` → eventfd → KVM irqfd on GSI (guest data − 32) → IRQCHIP route →
/// the guest's SPI pending in the vGICv2 → the guest acknowledges it through GICC_IAR. The host
/// GIC being a GICv3 with an ITS (isolated MSIs, which VFIO needs) is unchanged; only the
/// guest's side differs.
///
/// QEMU 11.0's accelerated SMMUv3 sets `msi-gpa` for a v2m machine too (hw/arm/virt.c, "Set
/// msi-gpa property": the v2m frame + 0x40, `MSI_SETSPI_NS`, where an ITS machine gets
/// `VIRT_GIC_ITS` + 0x1_0000 + 0x40), but under direct GSI mapping no KVM route reads it.
/// Where it still matters is the strategies that map the guest's doorbell page in stage 2
/// (`MSIPlan.mapVITSDoorbell`): that page must be the v2m frame's, the IPA the guest's stage 1
/// sends its MSI IOVA to.
public enum GuestInterruptController: String, Hashable, Sendable, CaseIterable {
    /// KVM vGICv3 + vITS (`gic-version=3`).
    case gicv3 = "v3"
    /// KVM vGICv2 + QEMU's emulated GICv2m frame (`gic-version=2`).
    case gicv2m = "v2m"

    /// `a15irqmap[VIRT_GIC_V2M]` + 32: the frame's first INTID (MSI_TYPER[25:16]).
    public static let v2mFirstSPI: UInt32 = 48 + 32
    /// `NUM_GICV2M_SPIS`.
    public static let v2mSPICount: UInt32 = 64
    /// `num-irq` − 32 for virt (`NUM_IRQS`): the SPIs the vGIC has, and the IRQCHIP routes QEMU
    /// installs (GSIs 0…255).
    public static let spiCount: UInt32 = 256
    /// V2M_MSI_SETSPI_NS.
    public static let setSPIOffset: UInt64 = 0x40

    /// `kvm_arch_msi_data_to_gsi` (target/arm/kvm.c): the GSI a vector with MSI data `data`
    /// is bound to under `kvm_gsi_direct_mapping`, `(data − 32) & 0xffff`.
    public static func directMappedGSI(data: UInt32) -> UInt32 {
        (data &- 32) & 0xFFFF
    }

    /// The guest's MSI doorbell GPA, QEMU's `msi-gpa` for this controller on `layout`: the vITS's
    /// GITS_TRANSLATER, or the v2m frame's MSI_SETSPI_NS.
    public func msiGPA(_ layout: GuestMemoryMap) -> UInt64 {
        switch self {
        case .gicv3: layout.msiGPA
        case .gicv2m: layout.v2mFrame.base &+ Self.setSPIOffset
        }
    }
}
