import Bus

extension IOMMUSubsystem {
    /// `iommu_dma_prepare_msi(desc, msi_addr)`: called by an irqchip's `.alloc` (the ITS driver's
    /// `its_irq_domain_alloc`, with the ITS's GITS_TRANSLATER) before the message is composed, so
    /// that a translated doorbell has an IOVA mapping and the descriptor knows it.
    ///
    /// v6.15+ (drivers/iommu/iommu.c): no group → 0; under the group mutex, a group domain that
    /// is not IDENTITY ("An IDENTITY domain must pass through") is dispatched on its cookie type:
    /// DMA_IOVA / DMA_MSI → `iommu_dma_sw_msi`, IOMMUFD → `iommufd_sw_msi`, anything else
    /// (no cookie: a blocked domain, a plain paging domain) → -EOPNOTSUPP. The IDENTITY test
    /// is the fix for Nathan Chancellor's fsl-mc regression; it was checked in the respun
    /// cleanup series (Nicolin Chen's iommufd_msi_cleanup-v5 diff against Jason Gunthorpe's
    /// tree), not in a tagged release. Without a registered iommufd hook an IOMMUFD cookie
    /// gets -EOPNOTSUPP, as the CONFIG_IOMMUFD=n stub of `iommufd_sw_msi` returns.
    ///
    /// v6.14 (drivers/iommu/dma-iommu.c): `iommu_get_domain_for_dev`; without a domain or an
    /// IOVA/MSI cookie the descriptor's cookie is cleared and 0 returned; else the MSI page is
    /// found or made and stored in `desc->iommu_cookie` (-ENOMEM if that failed).
    public func prepareMSI(_ descriptor: MSIDescriptor, device: Device, msiAddress: UInt64) throws(Errno) {
        if kernel.configuration.has(.nativeSWMSI) {
            guard let group = group(of: device) else { return }
            guard let domain = group.domain, domain.type != .identity else { return }
            switch domain.cookie {
            case .dmaIOVA, .dmaMSI:
                try swMSI(domain: domain, descriptor: descriptor, device: device, msiAddress: msiAddress)
            case .iommufd:
                guard let hook = iommufdSWMSI else { throw .EOPNOTSUPP }
                try hook(domain, descriptor, msiAddress)
            case .none:
                throw .EOPNOTSUPP
            }
        } else {
            guard let domain = domain(for: device), domain.cookie.hasMSICookie else {
                descriptor.iommuCookie = nil
                return
            }
            let page = try? msiPage(domain: domain, device: device, msiAddress: msiAddress)
            descriptor.iommuCookie = page
            if page == nil { throw .ENOMEM }
        }
    }

    /// `iommu_dma_compose_msi_msg(desc, msg)` (v6.14 and before): the irqchip has written the
    /// physical doorbell into `msg`; with a cookie domain and an MSI page, the address becomes
    /// the page's IOVA plus the doorbell's offset within the cookie's granule
    /// (`address_hi = upper(iova)`, `address_lo &= granule − 1; address_lo += lower(iova)`).
    /// Without a domain or cookie the message is left alone (the `legacy` strategy's case:
    /// a nested or iommufd domain has no dma-iommu cookie, so the physical address stays).
    public func composeMSIMessageLegacy(_ descriptor: MSIDescriptor, _ message: inout MSIMessage) {
        guard let device = descriptorOwner(descriptor), let domain = domain(for: device),
              let granule = domain.cookie.msiGranule, let page = descriptor.iommuCookie as? IOMMUDMAMSIPage else { return }
        message.addressHi = UInt32(truncatingIfNeeded: page.iova >> 32)
        message.addressLo &= UInt32(truncatingIfNeeded: granule &- 1)
        message.addressLo &+= UInt32(truncatingIfNeeded: page.iova)
    }

    /// `msi_desc_to_dev`: the device whose descriptor list holds `descriptor`.
    func descriptorOwner(_ descriptor: MSIDescriptor) -> Device? {
        kernel.devices.first { $0.msiDescriptors.contains { $0 === descriptor } }
    }
}

extension IOMMUCookie {
    /// `has_msi_cookie` (dma-iommu.c, v6.15) / `domain->iova_cookie != NULL` (v6.14).
    var hasMSICookie: Bool {
        switch self {
        case .dmaIOVA, .dmaMSI: true
        case .none, .iommufd: false
        }
    }

    /// `cookie_msi_granule`: the IOVA granule for a DMA cookie, PAGE_SIZE for an MSI cookie;
    /// nil for any other cookie (Linux BUG()s there; callers check `has_msi_cookie` first).
    var msiGranule: UInt64? {
        switch self {
        case .dmaIOVA(let c): c.msiGranule
        case .dmaMSI(let c): c.msiGranule
        case .none, .iommufd: nil
        }
    }
}
