import Bus
import Firmware
// STUB — owned by the SMMUv3-driver helper; replace entirely.
/// drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c: one instance per `arm,smmu-v3` node.
public final class ArmSMMUv3Driver: IOMMUDriver {
    unowned(safe) let kernel: LinuxKernel
    public let index: Int
    public let node: SMMUv3Description
    public var name: String { "arm-smmu-v3.\(index)" }
    public var pageSizeBitmap: UInt64 { 0x4020_1000 }
    public lazy var identityDomain = IOMMUDomain(type: .identity, driver: self, operations: nil, pageSizeBitmap: 0, id: kernel.makeObjectID())
    public lazy var blockedDomain = IOMMUDomain(type: .blocked, driver: self, operations: nil, pageSizeBitmap: 0, id: kernel.makeObjectID())

    init(kernel: LinuxKernel, index: Int, node: SMMUv3Description) {
        self.kernel = kernel
        self.index = index
        self.node = node
    }

    func probe() throws(Errno) {}
    public func probeDevice(_ device: Device) throws(Errno) {}
    public func defaultDomainType(for device: Device) -> IOMMUDomainType? { nil }
    public func allocatePagingDomain(for device: Device, flags: DomainAllocationFlags) throws(Errno) -> IOMMUDomain { throw .ENOSYS }
    public func attach(_ domain: IOMMUDomain, to device: Device) throws(Errno) {}
    public func reservedRegions(for device: Device) -> [ReservedRegion] { [] }
}
