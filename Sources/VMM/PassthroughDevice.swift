import LinuxKernel
import PCI

/// One host function passed through to the VM (QEMU: one `-device vfio-pci`): its VFIO cdev and
/// iommufd objects, the function the guest sees, and its interrupt wiring to KVM.
public final class PassthroughDevice {
    /// The host kernel's device (what `vfio-pci` was bound to).
    public let hostDevice: Device
    public let deviceFile: VFIODeviceFile
    /// The device's object id in the iommufd (VFIO_DEVICE_BIND_IOMMUFD's `out_devid`).
    public let iommufdDeviceID: UInt32
    /// The HWPT the device was first attached to: the IOAS's auto domain (no vIOMMU) or the
    /// shared nest parent (accelerated vSMMU).
    public let stage2HWPTID: UInt32
    /// The vDEVICE binding the guest StreamID to this device on the vIOMMU.
    public internal(set) var vdeviceID: UInt32?
    /// The nested HWPT the device is attached to now (accelerated vSMMU, after a guest STE).
    public internal(set) var nestedHWPTID: UInt32?
    /// Why the host refused the last guest STE the VMM tried to install as a nested HWPT (the
    /// host function, errno and StreamID); nil once one attached. QEMU only warns, so the
    /// device keeps whatever STE it had: a report names this as the cause of the abort.
    public internal(set) var nestedAttachRefusal: KernelRefusal?
    public let function: PassthroughFunction
    /// The device's first KVM GSI: vector v uses `gsiBase + v`. Devices get consecutive,
    /// non-overlapping ranges as large as their vector capacity.
    public let gsiBase: UInt32
    /// The vectors wired to KVM now, by vector number.
    public internal(set) var vectors: [Int: VirtualMachineMonitor.Vector] = [:]
    /// Whether the VMM's vectors may disagree with vMSI-X table entries other than the one a
    /// guest table write changed (a new device, vectors released, a mask switch that failed):
    /// then the next change rescans every entry, otherwise only the written one
    /// (`VirtualMachineMonitor.msixChanged`).
    var msixNeedsFullScan = true
    /// Plain MSI: the vector count VFIO's MSI index is enabled with now (0: off).
    public internal(set) var msiEnabledVectors = 0
    /// False once the VMM has unrealized it (hot-unplug, or the source side of a save/restore):
    /// its cdev is closed and its iommufd objects are gone; a re-plug makes a new object.
    public internal(set) var isPlugged = true

    init(hostDevice: Device, deviceFile: VFIODeviceFile, iommufdDeviceID: UInt32, stage2HWPTID: UInt32,
         function: PassthroughFunction, gsiBase: UInt32) {
        self.hostDevice = hostDevice
        self.deviceFile = deviceFile
        self.iommufdDeviceID = iommufdDeviceID
        self.stage2HWPTID = stage2HWPTID
        self.function = function
        self.gsiBase = gsiBase
    }

    /// Where the guest sees the function; with the identity `iommu-map` / `msi-map` also its
    /// guest StreamID and ITS DeviceID.
    public var guestRequesterID: RequesterID { function.guestRequesterID }

    /// The GSIs the device may use: one per MSI-X table entry or MSI vector it can have.
    public var vectorCapacity: Int { max(function.msixTableSize, function.msiCapableVectors, 1) }
}
