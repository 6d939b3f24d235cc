import LinuxKernel
import SMMUv3

extension VirtualMachineMonitor {
    /// QEMU 11.0 `smmuv3_accel_hw_compatible` for one vfio-pci device of an accelerated vSMMU:
    /// IOMMU_GET_HW_INFO on its iommufd device (`iommufd_backend_get_device_info`: the host
    /// SMMU's raw IDR0–5, IIDR and AIDR), then `smmuv3_accel_check_hw_compatible` against the
    /// vSMMU's properties. A failure is the device's realize failing with QEMU's message; the
    /// host's values never become the guest's.
    static func checkHostSMMU(_ iommufd: IOMMUFD, deviceID: UInt32, properties: AcceleratedSMMUv3Properties) throws(GuestError) {
        let info: IOMMUHWInfoARMSMMUv3
        do { info = try iommufd.getHWInfo(deviceID: deviceID) } catch { throw .hostCall("IOMMU_GET_HW_INFO", error) }
        do throws(AcceleratedSMMUv3Error) {
            try properties.checkHostCompatibility(info)
        } catch {
            throw .vsmmu(error)
        }
    }
}
