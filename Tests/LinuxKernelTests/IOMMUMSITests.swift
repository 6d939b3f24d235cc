import Testing
import Bus
@testable import LinuxKernel

/// A page table that records what the core maps, standing in for the SMMU driver's io-pgtable
/// so the dma-iommu logic can be checked on its own.
final class RecordingPageTable: IOMMUDomainOperations {
    var maps: [(iova: UInt64, physical: UInt64, size: UInt64, protection: IOMMUProtection)] = []
    var unmaps: [(iova: UInt64, size: UInt64)] = []
    var syncs = 0
    var flushAlls = 0
    var mapped: [UInt64: UInt64] = [:]

    func map(iova: UInt64, physical: PhysicalAddress, size: UInt64, protection: IOMMUProtection) throws(Errno) {
        maps.append((iova, physical.rawValue, size, protection))
        var offset: UInt64 = 0
        while offset < size { mapped[iova + offset] = physical.rawValue + offset; offset += 4096 }
    }
    func unmap(iova: UInt64, size: UInt64, gather: inout IOTLBGather) -> UInt64 {
        unmaps.append((iova, size))
        var offset: UInt64 = 0
        while offset < size { mapped[iova + offset] = nil; offset += 4096 }
        gather.add(iova: iova, size: size)
        return size
    }
    func iotlbSync(_ gather: IOTLBGather) { syncs += 1 }
    func flushIOTLBAll() { flushAlls += 1 }
    func iovaToPhys(_ iova: UInt64) -> PhysicalAddress? { mapped[iova & ~0xFFF].map { PhysicalAddress($0 | (iova & 0xFFF)) } }
}

/// An IOMMU driver that only hands out domains (the core's MSI paths never call it).
final class StubIOMMUDriver: IOMMUDriver {
    var name: String { "stub" }
    var pageSizeBitmap: UInt64 { 0x4020_1000 }
    lazy var identityDomain = IOMMUDomain(type: .identity, driver: self, operations: nil, pageSizeBitmap: 0, id: 900)
    lazy var blockedDomain = IOMMUDomain(type: .blocked, driver: self, operations: nil, pageSizeBitmap: 0, id: 901)
    func probeDevice(_ device: Device) throws(Errno) {}
    func defaultDomainType(for device: Device) -> IOMMUDomainType? { nil }
    func allocatePagingDomain(for device: Device, flags: DomainAllocationFlags) throws(Errno) -> IOMMUDomain {
        IOMMUDomain(type: .unmanaged, driver: self, operations: RecordingPageTable(), pageSizeBitmap: pageSizeBitmap,
                    apertureEnd: dmaBitMask(48), id: 902)
    }
    func attach(_ domain: IOMMUDomain, to device: Device) throws(Errno) {}
    func reservedRegions(for device: Device) -> [ReservedRegion] { [] }
}

/// `iommu_dma_prepare_msi` / `iommu_dma_sw_msi` / `iommu_dma_get_msi_page` / v6.14 compose, on
/// a device placed by hand in a group whose domain the test picks.
@Suite("IOMMU MSI doorbells (dma-iommu)")
struct IOMMUMSITests {
    /// The ITS translation page of qemu-virt and its GITS_TRANSLATER.
    static let doorbell: UInt64 = 0x0809_0040

    struct Setup {
        let kernel: LinuxKernel
        let device: Device
        let group: IOMMUGroup
        let domain: IOMMUDomain
        let table: RecordingPageTable
    }

    /// A kernel (not booted) with one device in one group attached to a paging domain of `type`.
    func setup(_ type: IOMMUDomainType, version: KernelConfiguration.Version = .v6_15) throws -> Setup {
        let harness = try HostHarness.make(configuration: KernelConfiguration(version: version), boot: false)
        let kernel = harness.kernel
        let driver = StubIOMMUDriver()
        let table = RecordingPageTable()
        let domain = IOMMUDomain(type: type, driver: driver, operations: table, pageSizeBitmap: 0x4020_1000,
                                 apertureEnd: dmaBitMask(48), id: 1)
        let device = Device(name: "0000:00:01.0")
        // A platform device with a 32-bit DMA mask: the IOVA limit is 4 GiB without the PCI
        // 32-bit-first rule (which the host scenarios check on real PCI functions).
        device.dmaMask = dmaBitMask(32)
        device.iommu = DeviceIOMMU(iommuIndex: 99, streamIDs: [StreamID(8)])
        kernel.iommu.deviceStates[ObjectIdentifier(device)] = IOMMUDeviceState()
        let group = IOMMUGroup(id: 0)
        group.devices = [device]
        group.domain = domain
        group.defaultDomain = domain
        device.iommu?.group = group
        kernel.addDevice(device)
        if type == .dma || type == .dmaFQ {
            try kernel.iommu.getDMACookie(domain)
            try kernel.iommu.initDMADomain(domain, device: device)
        }
        return Setup(kernel: kernel, device: device, group: group, domain: domain, table: table)
    }

    func composed(_ descriptor: MSIDescriptor) -> UInt64 {
        var message = MSIMessage(address: Self.doorbell, data: 0)
        descriptor.setAddress(of: &message, to: Self.doorbell)
        return message.address
    }

    @Test("DMA domain: the doorbell page gets the domain's first IOVA, 0xFFFF_F000, mapped write|noexec|mmio; the message is 0xFFFF_F040")
    func dmaDomainFirstPage() throws {
        let s = try setup(.dma)
        let descriptor = MSIDescriptor(index: 0)
        try s.kernel.iommu.prepareMSI(descriptor, device: s.device, msiAddress: Self.doorbell)
        #expect(descriptor.iommuMSIShift == 12, "ilog2(iovad.granule) with the 4K smallest page size")
        #expect(composed(descriptor) == 0xFFFF_F040)
        #expect(s.table.maps.count == 1)
        #expect(s.table.maps.first?.iova == 0xFFFF_F000)
        #expect(s.table.maps.first?.physical == 0x0809_0000)
        #expect(s.table.maps.first?.protection == [.write, .noExec, .mmio])
    }

    @Test("a second vector, and a second device of the domain, reuse the page; another doorbell page gets the next IOVA")
    func pageReuse() throws {
        let s = try setup(.dma)
        let first = MSIDescriptor(index: 0), second = MSIDescriptor(index: 1)
        try s.kernel.iommu.prepareMSI(first, device: s.device, msiAddress: Self.doorbell)
        try s.kernel.iommu.prepareMSI(second, device: s.device, msiAddress: Self.doorbell)
        let other = Device(name: "0000:00:02.0")
        other.dmaMask = dmaBitMask(32)
        other.iommu = DeviceIOMMU(iommuIndex: 99, streamIDs: [StreamID(16)])
        other.iommu?.group = s.group
        s.kernel.iommu.deviceStates[ObjectIdentifier(other)] = IOMMUDeviceState()
        let third = MSIDescriptor(index: 0)
        try s.kernel.iommu.prepareMSI(third, device: other, msiAddress: Self.doorbell)
        #expect(composed(second) == 0xFFFF_F040 && composed(third) == 0xFFFF_F040)
        #expect(s.table.maps.count == 1, "iommu_dma_get_msi_page finds the page by its physical address")
        let fourth = MSIDescriptor(index: 2)
        try s.kernel.iommu.prepareMSI(fourth, device: s.device, msiAddress: 0x0A09_0040)
        var message = MSIMessage()
        fourth.setAddress(of: &message, to: 0x0A09_0040)
        #expect(message.address == 0xFFFF_E040, "the next page down")
        #expect(s.table.maps.count == 2)
    }

    @Test("an unmanaged domain with iommu_get_msi_cookie hands out the SW_MSI window bottom-up: 0x0800_0040, then 0x0800_1040")
    func msiCookie() throws {
        let s = try setup(.unmanaged)
        try s.kernel.iommu.getMSICookie(s.domain, base: 0x0800_0000)
        #expect(throws: Errno.EEXIST) { try s.kernel.iommu.getMSICookie(s.domain, base: 0x0800_0000) }
        let a = MSIDescriptor(index: 0), b = MSIDescriptor(index: 1)
        try s.kernel.iommu.prepareMSI(a, device: s.device, msiAddress: Self.doorbell)
        try s.kernel.iommu.prepareMSI(b, device: s.device, msiAddress: 0x0A09_0040)
        #expect(composed(a) == 0x0800_0040)
        var message = MSIMessage()
        b.setAddress(of: &message, to: 0x0A09_0040)
        #expect(message.address == 0x0800_1040, "cookie_msi_granule is PAGE_SIZE for an MSI cookie")
    }

    @Test("iommu_get_msi_cookie is only for UNMANAGED domains (-EINVAL)")
    func msiCookieNeedsUnmanaged() throws {
        let s = try setup(.dma)
        #expect(throws: Errno.EINVAL) { try s.kernel.iommu.getMSICookie(s.domain, base: 0x0800_0000) }
        let id = try setup(.unmanaged)
        #expect(throws: Errno.EINVAL) { try id.kernel.iommu.getMSICookie(StubIOMMUDriver().identityDomain, base: 0) }
    }

    @Test("v6.15 dispatch: identity passes through, a cookie-less paging domain is EOPNOTSUPP, iommufd goes to its hook")
    func dispatchByCookie() throws {
        let s = try setup(.unmanaged)
        let descriptor = MSIDescriptor(index: 0)
        #expect(throws: Errno.EOPNOTSUPP) { try s.kernel.iommu.prepareMSI(descriptor, device: s.device, msiAddress: Self.doorbell) }

        s.domain.cookie = .iommufd(s.table)
        #expect(throws: Errno.EOPNOTSUPP, "iommufd not loaded: the CONFIG_IOMMUFD=n stub") {
            try s.kernel.iommu.prepareMSI(descriptor, device: s.device, msiAddress: Self.doorbell)
        }
        var calls: [UInt64] = []
        s.kernel.iommu.iommufdSWMSI = { _, desc, address throws(Errno) in
            calls.append(address)
            desc.setIOMMUMSIIOVA(0x0800_0000, shift: 12)
        }
        try s.kernel.iommu.prepareMSI(descriptor, device: s.device, msiAddress: Self.doorbell)
        #expect(calls == [Self.doorbell])
        #expect(composed(descriptor) == 0x0800_0040)

        let identity = MSIDescriptor(index: 1)
        s.group.domain = StubIOMMUDriver().identityDomain
        try s.kernel.iommu.prepareMSI(identity, device: s.device, msiAddress: Self.doorbell)
        #expect(identity.iommuMSIShift == 0)
        #expect(composed(identity) == 0x0809_0040, "an IDENTITY domain must pass through")

        let blocked = MSIDescriptor(index: 2)
        s.group.domain = StubIOMMUDriver().blockedDomain
        #expect(throws: Errno.EOPNOTSUPP) { try s.kernel.iommu.prepareMSI(blocked, device: s.device, msiAddress: Self.doorbell) }

        let lone = Device(name: "no-iommu")
        try s.kernel.iommu.prepareMSI(blocked, device: lone, msiAddress: Self.doorbell)
        #expect(blocked.iommuMSIShift == 0, "no group: nothing to do")
    }

    @Test("a hardware MSI region pre-fills identity pages: the doorbell keeps its physical address and nothing is mapped")
    func hardwareMSIRegion() throws {
        let s = try setup(.dma)
        guard case .dmaIOVA(let cookie) = s.domain.cookie else { Issue.record("no DMA cookie"); return }
        s.kernel.iommu.initHardwareMSIRegion(cookie: cookie, start: 0x0809_0000, end: 0x080A_0000)
        #expect(cookie.msiPages.count == 16, "64 KiB region, 4 KiB granule")
        let descriptor = MSIDescriptor(index: 0)
        try s.kernel.iommu.prepareMSI(descriptor, device: s.device, msiAddress: Self.doorbell)
        #expect(composed(descriptor) == 0x0809_0040)
        #expect(s.table.maps.isEmpty)
    }

    @Test("v6.14: prepare stores the MSI page in iommu_cookie and iommu_dma_compose_msi_msg rewrites the address")
    func legacyCompose() throws {
        let s = try setup(.dma, version: .v6_14)
        let descriptor = MSIDescriptor(index: 0)
        s.device.msiDescriptors = [descriptor]
        try s.kernel.iommu.prepareMSI(descriptor, device: s.device, msiAddress: Self.doorbell)
        #expect(descriptor.iommuMSIShift == 0, "v6.14 has no iommu_msi_iova")
        let page = try #require(descriptor.iommuCookie as? IOMMUDMAMSIPage)
        #expect(page.iova == 0xFFFF_F000)
        var message = MSIMessage(address: Self.doorbell, data: 3)
        s.kernel.iommu.composeMSIMessageLegacy(descriptor, &message)
        #expect(message.address == 0xFFFF_F040)
        #expect(message.data == 3)
    }

    @Test("v6.14 with a domain that has no dma-iommu cookie (iommufd, nested) leaves the physical doorbell: the legacy strategy")
    func legacyWithoutCookie() throws {
        let s = try setup(.unmanaged, version: .v6_14)
        s.domain.cookie = .iommufd(s.table)
        let descriptor = MSIDescriptor(index: 0)
        s.device.msiDescriptors = [descriptor]
        descriptor.iommuCookie = s.table
        try s.kernel.iommu.prepareMSI(descriptor, device: s.device, msiAddress: Self.doorbell)
        #expect(descriptor.iommuCookie == nil)
        var message = MSIMessage(address: Self.doorbell, data: 0)
        s.kernel.iommu.composeMSIMessageLegacy(descriptor, &message)
        #expect(message.address == Self.doorbell)
        #expect(s.table.maps.isEmpty)
    }

    @Test("the IOVA allocator skips the SW_MSI window only by not reserving it: a DMA domain maps around reserved regions")
    func dmaMapUsesAllocator() throws {
        let s = try setup(.dma)
        guard case .dmaIOVA(let cookie) = s.domain.cookie else { Issue.record("no DMA cookie"); return }
        cookie.iovad.reserve(pfnLo: 0xF_FFF0, pfnHi: 0xF_FFFF)
        s.kernel.iommu.state(of: s.device)?.usesDMAIOMMU = true
        let iova = try s.kernel.dma.map(device: s.device, physical: PhysicalAddress(0x4000_0123), size: 0x100, direction: .toDevice)
        #expect(iova.rawValue == 0xFFFE_F123, "under the 32-bit mask, below the reservation, page offset kept")
        #expect(s.table.maps.last?.protection == [.read])
    }
}

extension IOMMUMSITests {
    @Test("without the PCI 32-bit-first rule a 64-bit device gets the top of the aperture: 0xFFFF_FFFF_F000 for 48 bits")
    func noSACForPlatformDevices() throws {
        let s = try setup(.dma)
        s.device.dmaMask = .max
        let descriptor = MSIDescriptor(index: 0)
        try s.kernel.iommu.prepareMSI(descriptor, device: s.device, msiAddress: Self.doorbell)
        #expect(composed(descriptor) == 0xFFFF_FFFF_F040, "dma_limit = min(mask, aperture_end = 2^48 − 1)")
    }
}

extension IOMMUMSITests {
    @Test("iommu_create_device_direct_mappings: DIRECT regions mapped 1:1 with their prot, start rounded up, already-mapped pages skipped, one flush")
    func directMappings() throws {
        let s = try setup(.dma)
        try s.kernel.iommu.map(s.domain, iova: 0x9000_2000, physical: 0x9000_2000, size: 0x1000, protection: [.read])
        s.table.maps.removeAll()
        let regions = [
            // 0x9000_0800…0x9000_47FF: ALIGN(start) = 0x9000_1000, ALIGN(end) = 0x9000_5000.
            ReservedRegion(start: 0x9000_0800, length: 0x4000, protection: [.read, .write], type: .direct),
            ReservedRegion(start: 0xA000_0000, length: 0x1000, protection: [.read], type: .directRelaxable),
            ReservedRegion(start: 0xB000_0000, length: 0x1000, protection: [.read], type: .reserved),
            ReservedRegion(start: 0x0800_0000, length: 0x10_0000, protection: [.write], type: .swMSI),
        ]
        try s.kernel.iommu.createDirectMappings(s.domain, regions: regions)
        #expect(s.table.maps.map(\.iova) == [0x9000_1000, 0x9000_3000, 0xA000_0000])
        #expect(s.table.maps.map(\.size) == [0x1000, 0x2000, 0x1000], "the run is split around the page mapped already")
        #expect(s.table.maps.allSatisfy { $0.iova == $0.physical })
        #expect(s.table.maps.first?.protection == [.read, .write])
        #expect(s.table.flushAlls == 1)
    }
}
