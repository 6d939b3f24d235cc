import Bus

extension World {
    /// A deterministic hash of the MSI path's architected state, for the explorer's duplicate
    /// pruning: whether each function is plugged, driven and intact, its physical MSI-X entries and mask bits, the guest's vMSI-X
    /// entries, the host's and the guest's view of every vector (affinity, masked, activated),
    /// and the routing outcome of every vector's last observation. Two worlds with the same hash
    /// deliver (or fail to deliver) every vector the same way. FNV-1a over 64-bit words, so the
    /// value never depends on Swift's per-process hash seed.
    public func stateHash(lastOutcomes: [VectorOutcome]) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ v: UInt64) {
            var x = v
            for _ in 0..<8 {
                h ^= x & 0xFF
                h = h &* 0x0000_0100_0000_01B3
                x >>= 8
            }
        }
        // GICv4.1: where each vPE is mapped and whether it is resident (and asked for a
        // doorbell), and which vectors wait in a VPT: the residency events change only these.
        for vpe in vmm.vm.itsVM?.vpes ?? [] {
            mix(UInt64(vpe.id) << 32 | UInt64(truncatingIfNeeded: vpe.cpu) << 8 | (vpe.resident ? 1 : 0) | (vpe.pendingLast ? 2 : 0))
        }
        for vcpu in vptPending.keys.sorted() {
            for key in (vptPending[vcpu] ?? []).sorted(by: { ($0.device, $0.vector) < ($1.device, $1.vector) }) {
                mix(UInt64(truncatingIfNeeded: vcpu) << 48 | UInt64(truncatingIfNeeded: key.device) << 24 | UInt64(truncatingIfNeeded: key.vector))
            }
        }
        for (d, function) in functions.enumerated() {
            let vectors = scenario.devices[d].vectors
            // What the function is to the guest: plugged, with a driver, with its own STE intact.
            // Two states that deliver alike but differ here do not continue alike (a hot-plug
            // needs an unplugged function), so they must not hash alike.
            mix((unplugged.contains(d) ? 1 : 0) | (driverless.contains(d) ? 2 : 0) | (corrupted.contains(d) ? 4 : 0))
            if let table = function.msixTable {
                for v in 0..<table.size {
                    mix(table.messageAddress(v))
                    mix(UInt64(table.messageData(v)))
                    mix(UInt64(table.vectorControl(v)))
                }
            }
            if vmm.devices.indices.contains(d) {
                for entry in vmm.devices[d].function.entries {
                    mix(entry.address)
                    mix(UInt64(entry.data))
                }
            }
            for v in 0..<vectors {
                if let irq = hostIRQ(d, v), let desc = host.irq.descriptor(irq) {
                    mix(UInt64(truncatingIfNeeded: desc.effectiveCPU) << 2 | (desc.isMasked ? 2 : 0) | (desc.isActivated ? 1 : 0))
                } else {
                    mix(.max)
                }
                if let irq = guestIRQ(d, v), let desc = guest.irq.descriptor(irq) {
                    mix(UInt64(truncatingIfNeeded: desc.effectiveCPU) << 2 | (desc.isMasked ? 2 : 0) | (desc.isActivated ? 1 : 0))
                } else {
                    mix(.max &- 1)
                }
            }
        }
        for o in lastOutcomes {
            mix(UInt64(truncatingIfNeeded: o.device) << 32 | UInt64(truncatingIfNeeded: o.vector))
            mix(o.programmedAddress ?? .max)
            mix(o.physicalAddress ?? .max)
            switch o.verdict {
            case .delivered: mix(1)
            case .pending: mix(2)
            case .pendingInVPT(let vpe, _): mix(0x5650_0000 | UInt64(vpe))
            case .failed(let point, _): mix(3 &+ UInt64(FailurePoint.allCases.firstIndex(of: point) ?? 0))
            }
            for handled in o.handled { mix(UInt64(handled.lpi) << 8 | UInt64(truncatingIfNeeded: handled.cpu)) }
        }
        return h
    }
}
