import Bus
import GIC

/// `struct its_vlpi_map` as `kvm_vgic_v4_set_forwarding` (arch/arm64/kvm/vgic/vgic-v4.c) fills
/// it for `its_map_vlpi`: the target vCPU's vPE, the guest LPI as vINTID, and the LPI's
/// properties byte (`(irq->priority & 0xfc) | (irq->enabled ? LPI_PROP_ENABLED : 0) |
/// LPI_PROP_GROUP1`), with `db_enabled = true`.
public struct KVMVLPIMapRequest: Hashable, Sendable {
    public var vcpu: Int
    public var vintid: UInt32
    public var properties: UInt8
    public var doorbellEnabled: Bool
}

/// Why `kvm_vgic_v4_set_forwarding` did not ask the host to map a vLPI. In every case the irqfd
/// keeps working on the software path (`irqfd_wakeup` → `kvm_set_msi` → the vITS), so the MSI
/// still reaches the guest, through the host.
public enum KVMForwardingRefusal: String, Hashable, Sendable, CustomStringConvertible {
    /// `vgic_supports_direct_msis`: the host GIC has no GICv4 (`kvm_vgic_global_state.has_gicv4`)
    /// or the VM has no vITS.
    case noDirectMSIs
    /// `vgic_get_its` → `vgic_msi_to_its` failed: the route lacks KVM_MSI_VALID_DEVID, or its
    /// address is in no vITS frame on the KVM_MMIO_BUS. The route-address bug: a VMM that puts
    /// another address in the route (the host's doorbell, a vSMMU-translated IOVA) gets no
    /// direct injection, silently.
    case noVITSAtAddress
    /// `vgic_its_resolve_lpi` failed: the guest has not mapped (DeviceID, EventID) to an LPI on a
    /// mapped collection, its ITS is disabled, or the target vCPU has LPIs disabled.
    case lpiNotResolved
    /// `irq->hw`: the guest LPI is already forwarded.
    case alreadyForwarded

    public var description: String {
        switch self {
        case .noDirectMSIs: "no GICv4 direct MSI injection (vgic_supports_direct_msis)"
        case .noVITSAtAddress: "the route's MSI address is not a vITS doorbell (vgic_get_its)"
        case .lpiNotResolved: "the guest ITS does not translate the route's DeviceID/EventID (vgic_its_resolve_lpi)"
        case .alreadyForwarded: "the guest LPI is already forwarded (irq->hw)"
        }
    }
}

/// What `kvm_vgic_v4_set_forwarding` did with one route.
public enum KVMForwardingResult: Hashable, Sendable {
    /// `its_map_vlpi(virq, &map)` is to be called with this request.
    case map(KVMVLPIMapRequest)
    /// Returned 0 without mapping.
    case notForwarded(KVMForwardingRefusal)
    /// Returned this non-zero value without mapping (before `vlpiResolveFallsBackSilently`, the
    /// `vgic_its_resolve_lpi` result: a positive E_ITS_* code or −EBUSY), which
    /// `kvm_arch_irq_bypass_add_producer` passes up as a failed bypass registration.
    case failed(code: Int32, KVMForwardingRefusal)
}

extension KVMVirtualMachine {
    /// `kvm_vgic_v4_set_forwarding(kvm, virq, irq_entry)` for an MSI route, in KVM's order:
    /// 1. `vgic_supports_direct_msis` (host GICv4 and a vITS) else 0;
    /// 2. `vgic_get_its`: the route as a `struct kvm_msi` through `vgic_msi_to_its` (needs
    ///    KVM_MSI_VALID_DEVID; the address must decode to a vITS frame, any offset in its
    ///    128 KiB, as `inject` checks it) else 0;
    /// 3. `vgic_its_resolve_lpi(kvm, its, devid, data)`: ITS disabled → −EBUSY; no ITE or
    ///    unmapped collection or no such vCPU → E_ITS_INT_UNMAPPED_INTERRUPT; target vCPU with
    ///    LPIs disabled → −EBUSY. With `vlpiResolveFallsBackSilently` (v6.15) the function
    ///    returns 0 there; before, it returned that value;
    /// 4. `irq->hw` → 0; else the `its_vlpi_map` request for the target vCPU's vPE.
    /// `hostHasGICv4` is `kvm_vgic_global_state.has_gicv4` (the host GIC's GICD_TYPER.DVIS and
    /// an ITS with GITS_TYPER.Virtual, and `kvm-arm.vgic_v4_enable`).
    public func vgicV4SetForwarding(route: KVMMSIRoute, hostHasGICv4: Bool) -> KVMForwardingResult {
        guard hostHasGICv4, let vgic, let its = vgic.its, let base = vgic.itsBase else { return .notForwarded(.noDirectMSIs) }
        let msi = route.msi
        guard msi.flags & KVMConstants.msiValidDevID != 0, msi.address >= base.rawValue,
              msi.address - base.rawValue < KVMConstants.vgicV3ITSSize else {
            return .notForwarded(.noVITSAtAddress)
        }
        let silent = kernel.configuration.has(.vlpiResolveFallsBackSilently)
        func unresolved(_ code: Int32) -> KVMForwardingResult {
            silent ? .notForwarded(.lpiNotResolved) : .failed(code: code, .lpiNotResolved)
        }
        let unmappedInterrupt = Int32(bitPattern: ITSCommandError.intUnmappedInterrupt.rawValue)
        switch its.resolve(deviceID: DeviceID(msi.devid), eventID: EventID(msi.data)) {
        case .dropped(.itsDisabled):
            return unresolved(-Errno.EBUSY.rawValue)
        case .dropped:
            return unresolved(unmappedInterrupt)
        case .lpi(let intid, let cpu):
            guard cpu < vgic.vcpuCount, cpu < vgic.gic.redistributors.count else { return unresolved(unmappedInterrupt) }
            let rd = vgic.gic.redistributors[cpu]
            guard rd.enableLPIs, let config = rd.cachedConfiguration(intid) else { return unresolved(-Errno.EBUSY.rawValue) }
            guard forwardedVLPIs[intid.rawValue] == nil else { return .notForwarded(.alreadyForwarded) }
            return .map(KVMVLPIMapRequest(vcpu: cpu, vintid: intid.rawValue,
                                          properties: LPIConfigurationTable.priority(config)
                                              | (LPIConfigurationTable.isEnabled(config) ? 1 : 0) | 0x2,
                                          doorbellEnabled: true))
        }
    }

    /// After a successful `its_map_vlpi`: `irq->hw = true; irq->host_irq = virq`.
    public func recordForwarded(vintid: UInt32, hostIRQ: Int) {
        forwardedVLPIs[vintid] = hostIRQ
    }
}
