import Bus
import Firmware
import PCI

extension PCISubsystem {
    /// The ACPI half of `pci_msi_get_device_domain` and `pci_msi_domain_get_msi_rid` for the
    /// MSI requester ID `rid` (after the alias walk of `get_msi_id_cb`):
    /// - `iort_get_device_domain` → `iort_dev_find_its_id(dev, rid, 0)`: the root complex node
    ///   (`iort_find_dev_node`), `iort_node_map_id(…, IORT_MSI_TYPE)` to an ITS group, its
    ///   first ITS identifier ("requested ITS ID index [0] overruns ITS entries [0]" for an
    ///   empty group), then `iort_find_domain_token`: the ITS whose MADT GIC ITS ID that is;
    /// - `iort_msi_map_id`: the DeviceID is the same walk's output ID.
    ///
    /// No root complex, no ITS group, or no probed ITS with that ID: no MSI domain (ENODEV).
    func iortMSIDomain(of dev: PCIDevice, rid: RequesterID) throws(Errno) -> (its: Int, deviceID: UInt32) {
        guard let walker = kernel.iortWalker, let rc = kernel.iortRootComplex(of: dev) else { throw .ENODEV }
        let (found, deviceID) = walker.mapID(from: rc, id: UInt32(rid.rawValue), typeMask: IORTWalker.msiTypeMask)
        guard let node = found, case .itsGroup(let group) = walker.iort.nodes[node].kind else { throw .ENODEV }
        guard let first = group.itsIdentifiers.first else {
            kernel.log.log(dev.device.name, "requested ITS ID index [0] overruns ITS entries [0]")
            throw .ENODEV
        }
        guard let its = kernel.itsDrivers.firstIndex(where: { $0.node.translationID == first }) else { throw .ENODEV }
        return (its, deviceID)
    }
}
