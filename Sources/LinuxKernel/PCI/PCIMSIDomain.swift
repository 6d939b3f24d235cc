import Bus
import Firmware
import PCI

extension PCISubsystem {
    /// `pci_msi_domain_get_msi_rid` + `of_msi_map_id`: the Requester ID the ITS will see for
    /// `dev`'s MSIs and the DeviceID `msi-map` turns it into, with the ITS it names.
    ///
    /// The RID starts as the function's own; `get_msi_id_cb` runs for each DMA alias and takes
    /// an alias when the aliasing device or the alias itself is on another bus than the current
    /// RID (so a PCIe-to-PCI bridge's (secondary bus, 00.0) replaces a function behind it, and
    /// an alias on the same bus does not). No `msi-map`: DeviceID = RID and the ITS is the
    /// bridge's `msi-parent` (or the first ITS). A map without an entry for the RID gives the
    /// function no MSI domain (ENODEV), as `of_msi_map_get_device_domain` finds none. On an
    /// ACPI topology the same RID goes through the IORT instead (`iortMSIDomain`:
    /// `iort_get_device_domain`, `iort_msi_map_id`).
    public func msiDomain(of dev: PCIDevice) throws(Errno) -> (its: Int, deviceID: UInt32, requesterID: RequesterID) {
        var rid = dev.requesterID
        var bridge = dev.upstreamBridge
        var hops = 0
        while let b = bridge, hops < 256 {
            hops += 1
            bridge = b.upstreamBridge
            let alias: RequesterID?
            switch b.expressPortType {
            case nil: alias = b.requesterID
            case 0x7: alias = RequesterID(bus: b.secondaryBus ?? 0, devfn: 0)
            case 0x8: alias = b.requesterID
            default: alias = nil
            }
            guard let alias else { continue }
            if b.requesterID.bus != rid.bus || alias.bus != rid.bus { rid = alias }
        }
        let topology = kernel.topology
        guard topology.pcieHostBridges.indices.contains(dev.hostBridge) else { throw .ENODEV }
        if topology.iort != nil {
            do {
                let (its, deviceID) = try iortMSIDomain(of: dev, rid: rid)
                return (its, deviceID, rid)
            } catch {
                // `iort_get_device_domain` finds no ITS domain for the IORT's ITS ID (QEMU keeps
                // an ITS group node in a GICv2 machine's IORT: "GICv2 configurations had
                // vms->its=1"), so `pci_set_msi_domain` takes the bus's: the fwnode provider
                // `gicv2m_acpi_init` registered (`pci_msi_register_fwnode_provider(&gicv2m_get_fwnode)`).
                if let spi = spiMSIDomainIndex(target: nil) { return (spi, UInt32(rid.rawValue), rid) }
                throw error
            }
        }
        let hostBridge = topology.pcieHostBridges[dev.hostBridge]
        let target: DeviceTreeTarget?
        let deviceID: UInt32
        if let map = hostBridge.msiMap {
            guard let (t, id) = map.translate(UInt32(rid.rawValue)) else { throw .ENODEV }
            target = t
            deviceID = id
        } else {
            target = hostBridge.msiParent.first?.target
            deviceID = UInt32(rid.rawValue)
        }
        let itsIndex: Int
        if let spi = spiMSIDomainIndex(target: target) {
            return (spi, deviceID, rid)
        }
        if case .its(let i)? = target, topology.its.indices.contains(i) {
            let path = topology.its[i].path
            guard let driver = kernel.itsDrivers.firstIndex(where: { $0.node.path == path }) else { throw .ENODEV }
            itsIndex = driver
        } else if target == nil, !kernel.itsDrivers.isEmpty {
            itsIndex = 0
        } else {
            throw .ENODEV
        }
        return (itsIndex, deviceID, rid)
    }

    /// The SPI MSI parent (`GICSPIMSIDomain`) a `msi-map`/`msi-parent` target names, encoded as
    /// the negative domain index −1 − i that `msiDomain(of:)` returns in place of an ITS index:
    /// a v2m frame → the one GICv2m domain (every frame is in it: `gicv2m_irq_domain_alloc`
    /// takes the first frame with room, whichever frame the map names), the GIC node → its MBI
    /// domain; no target and no ITS driver → the first SPI domain (ACPI's
    /// `gicv2m_get_fwnode`). Nil for anything else.
    func spiMSIDomainIndex(target: DeviceTreeTarget?) -> Int? {
        let domains = kernel.irq.spiMSIDomains
        let kind: GICSPIMSIDomain.Kind
        switch target {
        case .gicV2mFrame?: kind = .v2m
        case .gic?: kind = .mbi
        case nil where kernel.itsDrivers.isEmpty && !domains.isEmpty: return -1
        default: return nil
        }
        return domains.firstIndex { $0.kind == kind }.map { -1 - $0 }
    }

    /// The event count `its_pci_msi_prepare` asks `its_msi_prepare` for (v6.15,
    /// irq-gic-v3-its-msi-parent.c): max(nvec, the MSI domain's hwsize), at least the vectors
    /// of every function behind an aliasing bridge (`its_pci_msi_vec_count` over the alias
    /// device's subordinate bus), rounded up to a power of two, and at least 32 for DeviceID 0
    /// ("broken systems where the DevID is not wired").
    func itsEventCount(_ dev: PCIDevice, nvec: Int, hwsize: Int, deviceID: UInt32) -> Int {
        var n = max(nvec, hwsize)
        if dev.dmaAliases.count > 1, let aliasBridge = aliasingBridge(of: dev) {
            let behind = devices.filter { d in
                var b = d.upstreamBridge
                var hops = 0
                while let x = b, hops < 256 { if x === aliasBridge { return true }; b = x.upstreamBridge; hops += 1 }
                return false
            }
            let count = behind.reduce(0) { $0 + max(vectorCount(msi: $1), vectorCount(msix: $1)) }
            n = max(n, count)
        }
        var pow2 = 1
        while pow2 < n && pow2 < 1 << 20 { pow2 <<= 1 }
        return max(deviceID == 0 ? 32 : 1, pow2)
    }

    /// The bridge nearest the root that aliases `dev` (`its_get_pci_alias`: the last device the
    /// alias walk reports).
    func aliasingBridge(of dev: PCIDevice) -> PCIDevice? {
        var result: PCIDevice?
        var bridge = dev.upstreamBridge
        var hops = 0
        while let b = bridge, hops < 256 {
            hops += 1
            if b.expressPortType == nil || b.expressPortType == 0x7 || b.expressPortType == 0x8 { result = b }
            bridge = b.upstreamBridge
        }
        return result
    }

    /// `pci_msi_vec_count`: 2^(Multiple Message Capable).
    func vectorCount(msi dev: PCIDevice) -> Int {
        guard let cap = dev.msiCapability, let flags = try? dev.readConfig16(cap + 2) else { return 0 }
        return 1 << Int((flags >> 1) & 7)
    }

    /// `pci_msix_vec_count`: Table Size + 1.
    func vectorCount(msix dev: PCIDevice) -> Int {
        guard let cap = dev.msixCapability, let flags = try? dev.readConfig16(cap + 2) else { return 0 }
        return Int(flags & 0x7FF) + 1
    }
}
