import Bus
import LinuxKernel
import SMMUv3

// MARK: accelerated vSMMU backend

extension VirtualMachineMonitor: VirtualSMMUBackend {
    /// QEMU `smmuv3_cmdq_consume` with accel: STE invalidations re-install the vSTE of every
    /// passthrough device they cover as a nested HWPT (StreamIDs of emulated devices — the root
    /// ports — have nothing behind them); stage-1 TLB and CD invalidations go to the host
    /// through IOMMU_HWPT_INVALIDATE on the vIOMMU (the kernel forces the VMID and turns vSIDs
    /// into pSIDs), the StreamID-based ones (CFGI_CD, CFGI_CD_ALL, ATC_INV) only for a
    /// StreamID with a vDEVICE, as `smmuv3_accel_issue_inv_cmd` (a root port's CFGI_CD would
    /// be EIO from the host and stop the guest's queue); prefetches are hints. Stage-2 and EL2 invalidations are CERROR_ILL: the
    /// vSMMU advertises neither S2P nor HYP (§4.4: a command for an unimplemented stage is
    /// ILLEGAL).
    public func execute(_ command: Command, from vsmmu: VirtualSMMU) -> CommandErrorCode {
        switch command {
        case .cfgiSTE(let sid, _):
            for device in devices where UInt32(requesterIDSeen(guestRequesterID: device.guestRequesterID).rawValue) == sid.rawValue { installGuestSTE(device) }
            return .none
        case .cfgiSTERange(let sid, let range):
            let span = UInt64(1) << UInt64(min(Int(range) + 1, 32))
            let start = UInt64(sid.rawValue) & ~(span &- 1)
            for device in devices {
                let vsid = UInt64(requesterIDSeen(guestRequesterID: device.guestRequesterID).rawValue)
                if vsid >= start, vsid - start < span { installGuestSTE(device) }
            }
            return .none
        case .cfgiCD(let sid, _, _), .cfgiCDAll(let sid), .atcInvalidate(let sid, _, _, _, _):
            // smmuv3_accel_issue_inv_cmd: "SID based invalidations (e.g. CFGI_CD) apply only
            // to vfio-pci endpoints with a valid vIOMMU vdev" — an emulated device's StreamID
            // (a root port) has nothing on the host to invalidate.
            guard devices.contains(where: { $0.isPlugged && $0.vdeviceID != nil && UInt32(requesterIDSeen(guestRequesterID: $0.guestRequesterID).rawValue) == sid.rawValue }) else {
                return .none
            }
            return forwardInvalidation(command)
        case .tlbiNHAll, .tlbiNHASID, .tlbiNHVA, .tlbiNHVAA, .tlbiNSNHAll:
            return forwardInvalidation(command)
        case .prefetchConfig, .prefetchAddress:
            return .none
        default:
            return .illegal
        }
    }

    /// IOMMU_HWPT_INVALIDATE on the vIOMMU with the guest's command (the kernel forces the
    /// VMID and turns vSIDs into pSIDs); an error stops the guest's queue with CERROR_ILL. No
    /// vIOMMU left (every device unplugged) is QEMU's "No accel or viommu means no
    /// VFIO/IOMMUFD devices, nothing to invalidate": consumed.
    func forwardInvalidation(_ command: Command) -> CommandErrorCode {
        do {
            guard let viommuID else { return .none }
            try iommufd.hwptInvalidate(viommuID: viommuID, commands: [command.encode()])
            return .none
        } catch {
            note("IOMMU_HWPT_INVALIDATE \(command.opcode): \(error)")
            return .illegal
        }
    }

    /// QEMU `smmuv3_accel_install_nested_ste`: the guest's effective STE for the device's vSID —
    /// GBPA's bypass/abort while the guest's SMMU is off, else the guest STE from its stream
    /// table (an unreadable one as V = 0) — becomes a nested HWPT on the vIOMMU (the kernel keeps
    /// only the allow-listed words), the device is attached to it (replace), the previous one
    /// freed.
    func installGuestSTE(_ device: PassthroughDevice) {
        guard device.isPlugged, let vsmmu, let viommuID else { return }
        let vsid = UInt64(requesterIDSeen(guestRequesterID: device.guestRequesterID).rawValue)
        var ste = StreamTableEntry()
        if vsmmu.translationEnabled {
            do { ste = try vsmmu.guestStreamTableEntry(StreamID(UInt32(truncatingIfNeeded: vsid))) } catch {
                note("vSTE \(Hex.format(vsid, minDigits: 1)) fetch: \(error)")
            }
        } else {
            ste = vsmmu.bypassAborts ? .abort : .bypass
        }
        // ste[2] as `struct iommu_hwpt_arm_smmuv3`.
        let words = [ste.dw0, ste.dw1]
        let mark = host.refusals.mark
        do throws(Errno) {
            let hwpt = try iommufd.hwptAlloc(deviceID: device.iommufdDeviceID, ptID: viommuID, dataType: .armSMMUv3, data: words)
            _ = try device.deviceFile.attachIOMMUFDPT(hwpt)
            if let old = device.nestedHWPTID { try? iommufd.destroy(old) }
            device.nestedHWPTID = hwpt
            device.nestedAttachRefusal = nil
            note("vSTE \(Hex.format(vsid, minDigits: 1)) config \(ste.config) → nested hwpt \(hwpt)")
        } catch {
            device.nestedAttachRefusal = host.refusals.latest(since: mark, matching: error)
            note("vSTE \(Hex.format(vsid, minDigits: 1)) install: \(error)")
        }
    }
}
