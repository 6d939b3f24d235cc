import Testing
import Bus
import Machine
import PCI
import SMMUv3
@testable import LinuxKernel

/// A host with a VMM-like user of iommufd nesting, without a VM: "guest RAM" is an anonymous
/// mapping of the VMM process that the IOAS maps at IPA `guestBase` (as a VMM maps guest memory
/// for a passthrough device), and the "guest" writes its stage-1 tables and CD there through the
/// process's pointers, with IPAs inside — exactly what a guest kernel's io-pgtable would leave
/// in its RAM. The physical SMMU then walks them through the nest parent's stage 2.
struct NestedFixture {
    let harness: HostHarness
    let process: UserProcess
    let iommufd: IOMMUFD
    let file: VFIODeviceFile
    let deviceID: UInt32
    let ioas: UInt32
    /// The nest-parent stage-2 HWPT.
    let parent: UInt32
    let viommu: UInt32
    let vdevice: UInt32
    /// The VMM's virtual address of guest RAM.
    let guestVA: UInt64

    var kernel: LinuxKernel { harness.kernel }
    var smmu: ArmSMMUv3Driver { harness.kernel.smmuDrivers[0] }
    var function: PCIFunction { harness.functions[0] }

    /// IPA of guest RAM and its size (2 MiB).
    static let guestBase: UInt64 = 0x4000_0000
    static let guestSize: UInt64 = 0x20_0000
    /// Guest layout (IPAs): the CD, the four stage-1 table levels, two data buffers.
    static let cdIPA: UInt64 = guestBase
    static let tableIPAs: [UInt64] = [guestBase + 0x1000, guestBase + 0x2000, guestBase + 0x3000, guestBase + 0x4000]
    static let bufferIPA: UInt64 = guestBase + 0x8_0000
    static let otherBufferIPA: UInt64 = guestBase + 0x9_0000
    /// The guest's IOVA for the buffer, and the guest's ASID.
    static let gIOVA: UInt64 = 0x10_0000
    static let guestASID = ASID(5)
    /// The virtual StreamID the VMM gives ep0 (physical StreamID 0x8): different on purpose, so
    /// every translation is visible.
    static let vSID: UInt64 = 0x18
    static let pSID = StreamID(0x8)

    /// Host boot, ep0 bound to vfio-pci and opened as a cdev on an iommufd, guest RAM mapped in
    /// an IOAS at `guestBase`, the device attached to a nest-parent HWPT on it, a vIOMMU on
    /// that parent and ep0's vDEVICE with `vSID`.
    static func make(configuration: KernelConfiguration = KernelConfiguration()) throws -> NestedFixture {
        let harness = try HostHarness.make(configuration: configuration)
        let kernel = harness.kernel
        let process = UserProcess(kernel: kernel)
        let iommufd = kernel.openIOMMUFD()
        iommufd.process = process
        let pdev = try #require(kernel.pci.device(RequesterID(bus: 0, device: 1, function: 0)))
        let vdev = try kernel.vfio.bindVFIOPCI(pdev.device)
        let file = try kernel.vfio.openDevice(vdev.cdevName, process: process)
        let deviceID = try file.bindIOMMUFD(iommufd)
        try file.writeCommand(0x0006)
        let guestVA = try process.mmap(length: guestSize)
        let ioas = try iommufd.ioasAlloc()
        _ = try iommufd.ioasMap(ioasID: ioas, flags: [.fixedIOVA, .readable, .writeable], userVA: guestVA, length: guestSize, iova: guestBase)
        let parent = try iommufd.hwptAlloc(deviceID: deviceID, ptID: ioas, flags: [.nestParent])
        _ = try file.attachIOMMUFDPT(parent)
        let viommu = try iommufd.viommuAlloc(deviceID: deviceID, hwptID: parent, type: .armSMMUv3)
        let vdevice = try iommufd.vdeviceAlloc(viommuID: viommu, deviceID: deviceID, virtualID: vSID)
        return NestedFixture(harness: harness, process: process, iommufd: iommufd, file: file, deviceID: deviceID, ioas: ioas,
                             parent: parent, viommu: viommu, vdevice: vdevice, guestVA: guestVA)
    }

    // MARK: guest memory

    func guestWrite64(_ ipa: UInt64, _ value: UInt64) throws {
        let bytes = (0..<8).map { UInt8(truncatingIfNeeded: value >> UInt64($0 * 8)) }
        try process.write(vaddr: guestVA + (ipa - Self.guestBase), bytes: bytes)
    }

    func guestRead64(_ ipa: UInt64) throws -> UInt64 {
        let bytes = try process.read(vaddr: guestVA + (ipa - Self.guestBase), count: 8)
        return bytes.enumerated().reduce(0) { $0 | UInt64($1.element) << UInt64($1.offset * 8) }
    }

    /// VMSAv8-64 stage-1 level-3 page descriptor (Arm ARM D8.3): valid page (0b11), AttrIndx 1
    /// (the MAIR below: normal WB), AP[2:1] = 0b01 (read/write at any EL, so the device's
    /// unprivileged accesses pass), SH inner shareable, AF set (no access-flag fault).
    static func pageDescriptor(_ ipa: UInt64) -> UInt64 {
        (ipa & 0x0000_FFFF_FFFF_F000) | 0b11 | (1 << 2) | (0b01 << 6) | (0b11 << 8) | (1 << 10)
    }

    /// The guest's stage 1 (4K granule, 48-bit, start level 0): tables at `tableIPAs`, `gIOVA`
    /// mapped to `target`, and a CD at `cdIPA` pointing at it with `guestASID`.
    func buildGuestStage1(mapping target: UInt64 = bufferIPA) throws {
        // Table descriptors: next-level IPA | 0b11.
        for level in 0..<3 {
            let index = (Self.gIOVA >> UInt64(39 - 9 * level)) & 0x1FF
            try guestWrite64(Self.tableIPAs[level] + index * 8, Self.tableIPAs[level + 1] | 0b11)
        }
        try mapGuestPage(Self.gIOVA, to: target)
        // The guest's `arm_smmu_make_s1_cd`: 4K, 48-bit VA, 40-bit IPA output, io-pgtable's MAIR.
        let cd = ArmSMMUv3Entries.stage1CD(asid: Self.guestASID, ttb0: PhysicalAddress(Self.tableIPAs[0]),
                                           geometry: WalkGeometry(granule: .size4K, inputSize: 48, startLevel: 0), ips: .bits40)
        for (i, word) in cd.words.enumerated() { try guestWrite64(Self.cdIPA + UInt64(i) * 8, word) }
    }

    /// Rewrites the level-3 entry of a gIOVA in the same 2 MiB as `gIOVA` (the guest's unmap +
    /// map; no invalidation).
    func mapGuestPage(_ iova: UInt64, to target: UInt64?) throws {
        let index = (iova >> 12) & 0x1FF
        try guestWrite64(Self.tableIPAs[3] + index * 8, target.map(Self.pageDescriptor) ?? 0)
    }

    /// The guest's STE for its device: V, Config = S1 translate, S1Fmt linear, S1ContextPtr =
    /// the CD's IPA, S1CDMax 0; word 1 with S1CIR/S1COR = WBRA and S1CSH = ISH.
    static var translatingVSTE: [UInt64] {
        [1 | (0b101 << 1) | cdIPA, 1 << 2 | 1 << 4 | 3 << 6]
    }

    /// Allocates a nested HWPT from vSTE words and attaches ep0 to it (the VMM's reaction to
    /// the guest's CFGI_STE). Returns the HWPT id.
    @discardableResult
    func attachNested(_ vste: [UInt64]) throws -> UInt32 {
        let hwpt = try iommufd.hwptAlloc(deviceID: deviceID, ptID: viommu, dataType: .armSMMUv3, data: vste)
        _ = try file.attachIOMMUFDPT(hwpt)
        return hwpt
    }

    /// The physical STE of ep0 as the SMMU sees it.
    func physicalSTE() throws -> StreamTableEntry {
        let strtab = try #require(smmu.streamTable)
        let address = try #require(strtab.steAddress(for: Self.pSID.rawValue))
        return StreamTableEntry(words: try (0..<8).map { try kernel.bus.read(PhysicalAddress(address.rawValue + UInt64($0) * 8), size: 8, requester: .cpu(0)) })
    }

    /// The device's DMA write result status.
    func dmaWrite(_ iova: UInt64, _ value: UInt64) -> TransactionStatus? {
        guard case .sent(_, let result) = function.dma(.write, address: IOVA(iova), size: 8, data: value) else { return nil }
        return result.status
    }
}
