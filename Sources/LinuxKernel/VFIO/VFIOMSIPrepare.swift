import Bus

/// The VFIO halves of the MSI strategies that carry a guest's MSI IOVA: ACTION_PREPARE
/// (`KernelPatches.vfioMSIIOVAPrepare`), its hand-off to iommufd (`.iommufdMSIIOVA`) and the
/// address override in `vfio_msi_set_vector_signal` (`.vfioMSIOverride`).
extension VFIOPCIDevice {
    /// `vfio_pci_set_msi_prepare(vdev, index, start, count, flags, data)` (RFCv1 7/7, and its
    /// RFCv2 form when `.iommufdMSIIOVA` is applied), in the patch's order:
    /// - RFCv2 only: a device not bound to an iommufd (`vfio_iommufd_device_ictx` NULL) →
    ///   EOPNOTSUPP;
    /// - another interrupt type enabled (`!(irq_is(vdev, index) || is_irq_none(vdev))`) → EINVAL;
    /// - DATA_NONE: count 0 → EINVAL; else RFCv1 frees the whole array ("FIXME support partial
    ///   unset"), RFCv2 unsets vectors start..<start+count in the iommufd device;
    /// - a data type other than MSI_IOVA (BOOL, EVENTFD) → EOPNOTSUPP;
    /// - MSI_IOVA: vector start+k gets iovas[k]; RFCv2 also hands each to the bound iommufd
    ///   device (`vfio_iommufd_device_set_num_msi_iovas` + `…_set_msi_iova`).
    ///
    /// Indexing is Doorbell's reading of the intent: RFCv1 stored iovas[k] at entry k (ignoring
    /// `start`) and RFCv2 read iovas[start+k]; both equal "start+k ← iovas[k]" for start 0, the
    /// way a VMM sends a whole table. RFCv1's array is sized by the first call's count and
    /// never grown; a dictionary has no such limit (no out-of-bounds read to model).
    func setMSIPrepare(_ hdr: VFIOIRQSet) throws(Errno) -> Int {
        let patches = kernel.configuration.patches
        let idev = openFile?.iommufdDevice
        if patches.contains(.iommufdMSIIOVA), idev == nil { throw .EOPNOTSUPP }
        guard irqType == hdr.index || irqType == VFIOIRQSet.numIRQs else { throw .EINVAL }
        let start = Int(hdr.start)
        let count = Int(hdr.count)
        switch hdr.flags & VFIOIRQSet.dataTypeMask(patches) {
        case VFIOIRQSet.dataNone:
            guard count != 0 else { throw .EINVAL }
            if patches.contains(.iommufdMSIIOVA), let idev {
                for vector in start..<(start + count) {
                    msiIOVAs[vector] = nil
                    idev.unsetMSIIOVA(index: vector)
                }
            } else {
                msiIOVAs = [:]
            }
            return 0
        case VFIOIRQSet.dataMSIIOVA:
            let iovas = hdr.msiIOVAs(count: count)
            if patches.contains(.iommufdMSIIOVA), let idev { idev.setNumberOfMSIIOVAs(start + count) }
            for (k, iova) in iovas.enumerated() {
                msiIOVAs[start + k] = iova
                if patches.contains(.iommufdMSIIOVA), let idev { try idev.setMSIIOVA(index: start + k, iova: iova) }
            }
            return 0
        default:
            throw .EOPNOTSUPP
        }
    }

    /// `vfio_pci_set_msi_trigger`'s disable branch with RFCv1 7/7: "FIXME we need a better
    /// cleanup routine" — the array is freed with the vectors, so a VMM that disables and
    /// re-enables MSI-X must PREPARE again in between. RFCv2 unsets `start..<start+count` of a
    /// count-0 request there, i.e. nothing: the iommufd device keeps its IOVAs.
    func releaseMSIIOVAsOnDisable() {
        let patches = kernel.configuration.patches
        guard patches.contains(.vfioMSIIOVAPrepare), !patches.contains(.iommufdMSIIOVA) else { return }
        msiIOVAs = [:]
    }

    /// `.vfioMSIOverride`: Nicolin Chen's override for the resync in `vfio_msi_set_vector_signal`
    /// (seed thread, `ZzPTHD2D5ATBsoGV@Asurada-Nvidia`):
    ///
    ///     if (vdev->msi_iovas && domain->type == IOMMU_DOMAIN_NESTED) {
    ///         msg.address_lo = lower_32_bits(vdev->msi_iovas[vector]);
    ///         msg.address_hi = upper_32_bits(vdev->msi_iovas[vector]);
    ///     }
    ///
    /// with `domain = iommu_get_domain_for_dev(&pdev->dev)`. The IOVA is the whole address (the
    /// VMM passes the guest's vMSI-X address, doorbell offset included); data is untouched.
    /// `pci_write_msi_msg` then caches the overridden message in `desc->msg` (as
    /// `__pci_write_msi_msg` does), but the irqchip knows nothing of it: the next
    /// `irq_chip_compose_msi_msg` (deactivate + activate) writes the irqchip's own address.
    func overrideMessage(_ message: inout MSIMessage, vector: Int, descriptor: MSIDescriptor) {
        guard kernel.configuration.patches.contains(.vfioMSIOverride), let iova = msiIOVAs[vector],
              kernel.iommu.domain(for: device)?.type == .nested else { return }
        message.addressLo = UInt32(truncatingIfNeeded: iova)
        message.addressHi = UInt32(truncatingIfNeeded: iova >> 32)
        descriptor.addressSource = MSIAddressSource(function: "vfio_msi_set_vector_signal",
            detail: "wrote the VMM's IOVA \(Hex.format(iova)) over the composed message (the vfio-override patch)")
        kernel.log.log("vfio", "\(device.name): vector \(vector) MSI address overridden with \(Hex.format(iova))")
    }
}
