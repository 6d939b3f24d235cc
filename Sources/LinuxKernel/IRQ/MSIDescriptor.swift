import Bus

/// `struct msi_msg`: the address/data pair a device writes to signal.
public struct MSIMessage: Hashable, Sendable, CustomStringConvertible {
    public var addressLo: UInt32
    public var addressHi: UInt32
    public var data: UInt32

    public init(addressLo: UInt32 = 0, addressHi: UInt32 = 0, data: UInt32 = 0) {
        self.addressLo = addressLo
        self.addressHi = addressHi
        self.data = data
    }

    public init(address: UInt64, data: UInt32) {
        self.init(addressLo: UInt32(truncatingIfNeeded: address), addressHi: UInt32(truncatingIfNeeded: address >> 32), data: data)
    }

    public var address: UInt64 { UInt64(addressHi) << 32 | UInt64(addressLo) }

    public var description: String { "address \(Hex.format(address)) data \(Hex.format(UInt64(data), minDigits: 1))" }
}

/// `struct msi_desc`: one MSI or MSI-X vector of a device.
public final class MSIDescriptor {
    /// `msi_index`: the MSI-X table entry (or MSI vector number).
    public let index: Int
    /// The Linux interrupt number (`desc->irq`), 0 until allocated.
    public var irq: Int = 0
    /// `desc->msg`: the message last written to the device (the cached copy that
    /// `get_cached_msi_msg` returns and `pci_restore_msi_state` writes back).
    public var message = MSIMessage()
    /// `desc->iommu_msi_iova : 58` (v6.15+): the doorbell's IOVA, shifted right by
    /// `iommuMSIShift`.
    public private(set) var iommuMSIIOVA: UInt64 = 0
    /// `desc->iommu_msi_shift : 6`: 0 means no IOMMU override of the address.
    public private(set) var iommuMSIShift: UInt8 = 0
    /// `desc->iommu_cookie` (before v6.15): the `iommu_dma_msi_page` found at prepare time.
    public var iommuCookie: AnyObject?
    /// Whether the vector is masked (MSI-X Vector Control.Mask / MSI mask bit).
    public var masked = true
    /// The CPU the interrupt is routed to (its affinity).
    public var cpu = 0
    /// `desc->msi_iova` (RFCv1 1/7 "genirq/msi: Allow preset IOVA in struct msi_desc for MSI
    /// doorbell address", `KernelPatches.irqchipMSIIOVA`): the address user space asked the host
    /// to program for this vector, set when the descriptor is created
    /// (`pci_alloc_irq_vectors_iovas`); nil is the patch's PHYS_ADDR_MAX ("not preset"). It
    /// stays for the descriptor's life, so every later compose uses it again.
    public internal(set) var presetIOVA: UInt64?

    /// `desc->affinity`: the masks `irq_create_affinity_masks` gave its vectors (one for an
    /// MSI-X entry, one per vector for multi-message MSI); nil without `PCI_IRQ_AFFINITY`.
    public internal(set) var affinity: [IRQAffinityMask]?
    /// Which function chose the address of the message last composed for it (not Linux
    /// state: the model's provenance for reports).
    public internal(set) var addressSource: MSIAddressSource?

    public init(index: Int) { self.index = index }

    /// `msi_desc_set_iommu_msi_iova`: remember the doorbell IOVA page and its size.
    public func setIOMMUMSIIOVA(_ iova: UInt64, shift: Int) {
        let s = UInt8(clamping: max(0, min(shift, 63)))
        iommuMSIShift = s
        iommuMSIIOVA = s == 0 ? 0 : (iova >> UInt64(s)) & UInt64.lowMask(58)
    }

    /// `msi_msg_set_addr` (include/linux/msi.h, v6.15): with a shift, the address is the IOVA
    /// page with the doorbell's offset inside the page (`iova << shift | (addr & (2^shift − 1))`);
    /// without, the physical doorbell address itself.
    public func setAddress(of message: inout MSIMessage, to msiAddress: UInt64) {
        if iommuMSIShift != 0 {
            let shift = UInt64(iommuMSIShift)
            let address = (iommuMSIIOVA << shift) | (msiAddress & UInt64.lowMask(Int(shift)))
            message.addressHi = UInt32(truncatingIfNeeded: address >> 32)
            message.addressLo = UInt32(truncatingIfNeeded: address)
        } else {
            message.addressHi = UInt32(truncatingIfNeeded: msiAddress >> 32)
            message.addressLo = UInt32(truncatingIfNeeded: msiAddress)
        }
    }
}

/// A forked world's MSI descriptor: every field is a value except the v6.14 `iommu_cookie`,
/// the doorbell page the IOMMU layer found at prepare time, which is copied through the map so
/// the copy's descriptor names the copied domain's page (`IOMMUDMAMSIPage`).
extension MSIDescriptor: WorldCloneable {
    public func clone(into map: inout CloneMap) -> MSIDescriptor {
        let copy = MSIDescriptor(index: index)
        copy.irq = irq
        copy.message = message
        copy.iommuMSIIOVA = iommuMSIIOVA
        copy.iommuMSIShift = iommuMSIShift
        copy.iommuCookie = iommuCookie.map { cookie in
            guard let cloned = map.cloneDynamic(cookie) else {
                preconditionFailure("MSIDescriptor: its IOMMU cookie (\(type(of: cookie))) cannot be copied into a forked world")
            }
            return cloned
        }
        copy.masked = masked
        copy.cpu = cpu
        copy.presetIOVA = presetIOVA
        copy.affinity = affinity
        copy.addressSource = addressSource
        return copy
    }
}
