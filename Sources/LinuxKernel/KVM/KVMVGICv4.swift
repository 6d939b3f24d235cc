import Bus
import GIC

/// What one irqbypass connection (a VFIO MSI vector's producer meeting a KVM irqfd) did, in
/// `kvm_arch_irq_bypass_add_producer` / `_del_producer` order.
public enum KVMForwardingEvent: Hashable, Sendable, CustomStringConvertible {
    /// `its_map_vlpi` succeeded: host irq → vINTID of the vCPU's vPE, and the commands the
    /// host ITS driver queued for it (DISCARD, VMAPTI and their SYNC/VSYNC).
    case forwarded(gsi: UInt32, hostIRQ: Int, vintid: UInt32, vcpu: Int, vpe: UInt16, commands: [String])
    /// `kvm_vgic_v4_set_forwarding` returned 0 without mapping: the MSI stays on the software
    /// path (`vfio_msihandler` → eventfd → irqfd → the vITS).
    case notForwarded(gsi: UInt32, hostIRQ: Int, KVMForwardingRefusal)
    /// The connection failed with `code` (the producer is not registered; VFIO carries on).
    case failed(gsi: UInt32, hostIRQ: Int, code: Int32, reason: String)
    /// The irqfd's GSI had no MSI route when the producer connected (`irq_entry->type !=
    /// KVM_IRQ_ROUTING_MSI`: nothing to forward).
    case noRoute(gsi: UInt32, hostIRQ: Int)
    /// `kvm_vgic_v4_unset_forwarding`: `its_unmap_vlpi` gave the host LPI back (DISCARD, MAPTI,
    /// the configuration write).
    case unforwarded(hostIRQ: Int, vintid: UInt32, commands: [String])

    public var description: String {
        switch self {
        case .forwarded(let gsi, let irq, let vintid, let vcpu, let vpe, let commands):
            "GSI \(gsi), host irq \(irq): forwarded as vINTID \(vintid) of vCPU \(vcpu) (vPE \(vpe)): \(commands.joined(separator: "; "))"
        case .notForwarded(let gsi, let irq, let reason):
            "GSI \(gsi), host irq \(irq): not forwarded, \(reason); the MSI goes through the host (vfio_msihandler → irqfd → vITS)"
        case .failed(let gsi, let irq, let code, let reason):
            "GSI \(gsi), host irq \(irq): forwarding failed (\(code), \(reason)); the MSI goes through the host"
        case .noRoute(let gsi, let irq):
            "GSI \(gsi), host irq \(irq): no MSI route when the producer connected; the MSI goes through the host"
        case .unforwarded(let irq, let vintid, let commands):
            "host irq \(irq): vINTID \(vintid) unforwarded: \(commands.joined(separator: "; "))"
        }
    }
}

extension KVMVirtualMachine {
    /// `kvm_vgic_global_state.has_gicv4`: the host GIC has GICv4 vLPIs (`gic_v3_kvm_info.has_v4`)
    /// and `kvm-arm.vgic_v4_enable` is set; the model's host ITS driver does GICv4.1 only.
    public var hostHasGICv4: Bool {
        kernel.irq.gicv4.hasVLPIs && kernel.irq.gicv4.hasRVPEID && kernel.configuration.vgicV4Enable
    }

    /// `vgic_supports_direct_msis(kvm)`: host GICv4 and a vITS (and, in the model, the vPEs
    /// `vgic_v4_init` allocated).
    public var hasDirectMSIs: Bool { hostHasGICv4 && vgic?.its != nil && itsVM != nil }

    /// `vgic_v4_init` (from `vgic_init` once the vGIC has a vITS): one vPE per vCPU through
    /// `its_alloc_vcpu_irqs` (VMAPP + VINVALL on every GICv4 ITS), each doorbell requested
    /// with `vgic_v4_doorbell_handler` (`pending_last = true`, kick the vCPU). Nothing without
    /// host GICv4 or a vITS.
    func vgicV4Init() throws(Errno) {
        guard hostHasGICv4, vgic?.its != nil, itsVM == nil else { return }
        itsVM = try kernel.irq.allocateVCPUIRQs(vcpuCount: vcpus.count, onDoorbell: vpeDoorbell)
        vgic?.itsLists?.onChange = { [weak self] in self?.followVITSChanges() }
    }

    /// KVM's part of `vgic_v4_doorbell_handler` (after `pending_last` is set): the vCPU is
    /// kicked, which the model records in the journal of the message being followed.
    var vpeDoorbell: (ITSVPE, Int) -> Void {
        { [weak self] vpe, cpu in
            self?.kernel.journal?.append(.vpeDoorbell(vpe: vpe.id, intid: vpe.doorbellLPI, cpu: cpu))
        }
    }

    /// What KVM's vITS command handlers do for forwarded LPIs (`irq->hw`), after every command
    /// that changed the vITS's lists: an LPI whose ITE was freed (DISCARD, MAPD V=0:
    /// `its_free_ite` → `its_unmap_vlpi`) goes back to the host; one whose target vCPU changed
    /// (MOVI, MAPC retargeting its collection: `update_affinity` → `its_get_vlpi`, the new vCPU's
    /// vPE, `its_map_vlpi`, a VMOVI on the host ITS) follows it. `irq->hw` stays as KVM leaves it
    /// on a free (the LPI is gone); the model drops the entry.
    func followVITSChanges() {
        guard let lists = vgic?.itsLists, let itsVM else { return }
        for vintid in forwardedVLPIs.keys.sorted() {
            guard let hostIRQ = forwardedVLPIs[vintid], let d = kernel.irq.descriptor(hostIRQ), let map = d.vlpiMap else { continue }
            let event = lists.devices.lazy.flatMap(\.events).first { $0.intid == vintid }
            guard let event else {
                forwardedVLPIs[vintid] = nil
                let marks = kernel.itsDrivers.map(\.commandLog.count)
                try? kernel.irq.unmapVLPI(irq: hostIRQ)
                forwardingLog.append(.unforwarded(hostIRQ: hostIRQ, vintid: vintid, commands: commands(since: marks)))
                continue
            }
            guard let collection = lists.collections.first(where: { $0.icid == event.icid }), collection.isMapped,
                  let vpe = vpe(ofVCPU: Int(collection.target)), vpe !== map.vpe else { continue }
            map.vpe.vlpiCount = max(map.vpe.vlpiCount - 1, 0)
            try? kernel.irq.mapVLPI(irq: hostIRQ, ITSVLPIMap(vm: itsVM, vpe: vpe, vintid: vintid, properties: map.properties,
                                                             doorbellEnabled: map.doorbellEnabled))
            vpe.vlpiCount += 1
        }
    }

    /// The vPE of vCPU `index`.
    public func vpe(ofVCPU index: Int) -> ITSVPE? {
        guard let itsVM, itsVM.vpes.indices.contains(index) else { return nil }
        return itsVM.vpes[index]
    }

    /// vCPU `index` enters the guest on physical CPU `pcpu` (KVM_RUN → `kvm_arch_vcpu_load` →
    /// `vgic_v4_load`): nothing without direct MSIs or when already resident; else
    /// `irq_set_affinity(vpe->irq, cpumask_of(pcpu))` (`its_vpe_set_affinity`: VMOVP when the
    /// vPE changes redistributor — "make sure the redistributor corresponding to our current
    /// CPU expects us here") and `its_make_vpe_resident(vpe, false, vgic.enabled)`. A vPE
    /// already resident on `pcpu` belongs to a vCPU that is preempted first (`vgic_v4_put`
    /// without a doorbell). Returns whether VMOVP was sent.
    @discardableResult
    public func loadVCPU(_ index: Int, onCPU pcpu: Int) throws(Errno) -> Bool {
        guard hasDirectMSIs, let vpe = vpe(ofVCPU: index) else { return false }
        guard !vpe.resident else { return false }
        for other in itsVM?.vpes ?? [] where other !== vpe && other.resident && other.residentCPU == pcpu {
            try kernel.irq.makeVPENonResident(other, doorbell: false)
        }
        let moved = try kernel.irq.setVPEAffinity(vpe, cpu: pcpu)
        let enabled = (vgic?.gic.distributor.ctlr ?? 0) & 0x2 != 0
        try kernel.irq.makeVPEResident(vpe, cpu: pcpu, group1: enabled)
        return moved
    }

    /// vCPU `index` leaves its physical CPU (`kvm_arch_vcpu_put` → `vgic_v4_put(vcpu,
    /// need_db)`): `its_make_vpe_non_resident(vpe, need_db)`; `blocking` is KVM's "the vCPU is
    /// in WFI" (it asks for the doorbell), false for a preempted vCPU.
    public func putVCPU(_ index: Int, blocking: Bool) throws(Errno) {
        guard hasDirectMSIs, let vpe = vpe(ofVCPU: index), vpe.resident else { return }
        try kernel.irq.makeVPENonResident(vpe, doorbell: blocking)
    }

    /// The GIC's virtual CPU interface for vCPU `vcpu` (ICV_IAR1_EL1 with a resident vPE): the
    /// highest-priority pending vLPI of the vPE's VPT whose VConf byte is enabled (lowest
    /// vINTID on a tie), cleared from the VPT as the acknowledge takes it. Nil when the vPE is
    /// not resident (GICR_VPENDBASER.Valid with its vPEID, read on the host's redistributor)
    /// or nothing is pending. The running priority and ICV_PMR are not modelled.
    func acknowledgeDirectVLPI(vcpu: Int) -> UInt32? {
        // One strong reference for the whole scan: every use of the `unowned(safe)` property
        // is a checked retain/release (through the side table here), two per VPT word read.
        let kernel = self.kernel
        guard let itsVM, let vpe = vpe(ofVCPU: vcpu), vpe.resident, let cpu = vpe.residentCPU,
              kernel.irq.redistributors.indices.contains(cpu),
              let vpend = kernel.irq.redistributors[cpu].base.adding(Redistributor.VirtualOffset.vpendbaser),
              let value = try? kernel.mmio.read64(vpend), value.bit(GICRVPendbaser.valid),
              UInt16(truncatingIfNeeded: value) == vpe.id else { return nil }
        let bytes = (1 << kernel.irq.lpiIDBits) / 8
        let bus = kernel.bus
        // The scanned part of the VPT (vINTIDs from 8192) is one allocation: when it lies in one
        // RAM window its backing address is found once, not per word (the same translation
        // `kernelRead` makes for each word; otherwise each word goes through `kernelRead`).
        let scanned = vpe.pendingTable.rawValue &+ 1024
        let scanBase = bytes > 1024 ? bus.ramBackingAddress(PhysicalAddress(scanned), size: UInt64(bytes - 1024)) : nil
        var best: (priority: UInt8, vintid: UInt32)?
        var offset = 1024
        while offset < bytes {
            let word = if let scanBase { bus.ram.read(scanBase &+ UInt64(offset - 1024), size: 8) }
                       else { bus.kernelRead(vpe.pendingTable.rawValue &+ UInt64(offset), size: 8) }
            if word != 0 {
                for bit in 0..<64 where (word >> UInt64(bit)) & 1 == 1 {
                    let vintid = UInt32(offset * 8 + bit)
                    let config = UInt8(truncatingIfNeeded: kernel.bus.kernelRead(itsVM.propertyTable.rawValue &+ UInt64(vintid - 8192), size: 1))
                    guard config & 1 != 0 else { continue }
                    let priority = config & 0xFC
                    if priority < best?.priority ?? UInt8.max { best = (priority, vintid) }
                }
            }
            offset += 8
        }
        guard let best else { return nil }
        let byte = vpe.pendingTable.rawValue &+ UInt64(best.vintid / 8)
        let old = kernel.bus.kernelRead(byte, size: 1)
        kernel.bus.kernelWrite(byte, size: 1, value: old & ~(UInt64(1) << UInt64(best.vintid % 8)))
        return best.vintid
    }

    /// `kvm_arch_irq_bypass_add_producer` for the irqfd on `gsi`: no MSI route → 0; else
    /// `kvm_vgic_v4_set_forwarding(kvm, host_irq, irq_entry)` (`vgicV4SetForwarding`) and, for
    /// a map request, `its_map_vlpi` with the target vCPU's vPE, then `irq->hw = true`.
    func irqBypassAddProducer(gsi: UInt32, hostIRQ: Int) -> Int32 {
        guard let route = routes[gsi] else {
            forwardingLog.append(.noRoute(gsi: gsi, hostIRQ: hostIRQ))
            return 0
        }
        switch vgicV4SetForwarding(route: route, hostHasGICv4: hasDirectMSIs) {
        case .notForwarded(let reason):
            forwardingLog.append(.notForwarded(gsi: gsi, hostIRQ: hostIRQ, reason))
            return 0
        case .failed(let code, let reason):
            forwardingLog.append(.failed(gsi: gsi, hostIRQ: hostIRQ, code: code, reason: "\(reason)"))
            return code
        case .map(let request):
            guard let itsVM, let vpe = vpe(ofVCPU: request.vcpu) else {
                forwardingLog.append(.failed(gsi: gsi, hostIRQ: hostIRQ, code: -Errno.EINVAL.rawValue, reason: "no vPE for vCPU \(request.vcpu)"))
                return -Errno.EINVAL.rawValue
            }
            let marks = kernel.itsDrivers.map(\.commandLog.count)
            do {
                try kernel.irq.mapVLPI(irq: hostIRQ, ITSVLPIMap(vm: itsVM, vpe: vpe, vintid: request.vintid,
                                                                properties: request.properties, doorbellEnabled: request.doorbellEnabled))
            } catch {
                forwardingLog.append(.failed(gsi: gsi, hostIRQ: hostIRQ, code: -error.rawValue, reason: "its_map_vlpi: \(error)"))
                return -error.rawValue
            }
            recordForwarded(vintid: request.vintid, hostIRQ: hostIRQ)
            forwardingLog.append(.forwarded(gsi: gsi, hostIRQ: hostIRQ, vintid: request.vintid, vcpu: request.vcpu, vpe: vpe.id,
                                            commands: commands(since: marks)))
            return 0
        }
    }

    /// `kvm_arch_irq_bypass_del_producer` → `kvm_vgic_v4_unset_forwarding(kvm, host_irq)`: the
    /// guest LPI forwarded from `hostIRQ`, if any, loses `irq->hw` and `its_unmap_vlpi` gives
    /// the host its LPI back.
    func irqBypassDelProducer(hostIRQ: Int) {
        guard let vintid = forwardedVLPIs.keys.sorted().first(where: { forwardedVLPIs[$0] == hostIRQ }) else { return }
        forwardedVLPIs[vintid] = nil
        let marks = kernel.itsDrivers.map(\.commandLog.count)
        try? kernel.irq.unmapVLPI(irq: hostIRQ)
        forwardingLog.append(.unforwarded(hostIRQ: hostIRQ, vintid: vintid, commands: commands(since: marks)))
    }

    func commands(since marks: [Int]) -> [String] {
        var result: [String] = []
        for (index, driver) in kernel.itsDrivers.enumerated() {
            let from = index < marks.count ? marks[index] : 0
            result += driver.commandLog.dropFirst(from)
        }
        return result
    }

    /// The irqbypass consumer of an irqfd on `gsi`.
    func bypassConsumer(gsi: UInt32) -> IRQBypassConsumer {
        IRQBypassConsumer(addProducer: { [weak self] irq in self?.irqBypassAddProducer(gsi: gsi, hostIRQ: irq) ?? 0 },
                          delProducer: { [weak self] irq in self?.irqBypassDelProducer(hostIRQ: irq) })
    }
}
