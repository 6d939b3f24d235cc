import Bus
import GIC

/// One `struct kvm_irq_routing_entry` of type KVM_IRQ_ROUTING_MSI (`struct kvm_irq_routing_msi`):
/// GSI → (doorbell address, data, DeviceID). On arm64 the address must name the vITS and the
/// DeviceID is what a GITS_TRANSLATER write's sideband would carry.
public struct KVMMSIRoute: Hashable, Sendable, CustomStringConvertible {
    public var gsi: UInt32
    public var addressLo: UInt32
    public var addressHi: UInt32
    public var data: UInt32
    public var devid: UInt32
    /// KVM_MSI_VALID_DEVID or 0.
    public var flags: UInt32

    public init(gsi: UInt32, addressLo: UInt32, addressHi: UInt32 = 0, data: UInt32, devid: UInt32,
                flags: UInt32 = KVMConstants.msiValidDevID) {
        self.gsi = gsi
        self.addressLo = addressLo
        self.addressHi = addressHi
        self.data = data
        self.devid = devid
        self.flags = flags
    }

    public var address: UInt64 { UInt64(addressHi) << 32 | UInt64(addressLo) }
    public var msi: KVMMSI { KVMMSI(addressLo: addressLo, addressHi: addressHi, data: data, flags: flags, devid: devid) }

    public var description: String {
        "GSI \(gsi) → \(Hex.format(address, minDigits: 1)) data \(data) DeviceID \(Hex.format(UInt64(devid), minDigits: 1))"
            + (flags & KVMConstants.msiValidDevID != 0 ? "" : " (no VALID_DEVID)")
    }
}

/// `struct kvm_msi` (KVM_SIGNAL_MSI, and what `kvm_populate_msi` builds from a route).
public struct KVMMSI: Hashable, Sendable {
    public var addressLo: UInt32
    public var addressHi: UInt32
    public var data: UInt32
    public var flags: UInt32
    public var devid: UInt32

    public init(addressLo: UInt32, addressHi: UInt32 = 0, data: UInt32, flags: UInt32 = KVMConstants.msiValidDevID, devid: UInt32) {
        self.addressLo = addressLo
        self.addressHi = addressHi
        self.data = data
        self.flags = flags
        self.devid = devid
    }

    public var address: UInt64 { UInt64(addressHi) << 32 | UInt64(addressLo) }
}

/// One assigned irqfd (KVM_IRQFD).
public struct KVMIRQFD {
    public let eventfd: EventFD
    public let gsi: UInt32
}

/// What one injection did, for tests and reports.
public struct KVMInjectionRecord: Hashable, Sendable, CustomStringConvertible {
    public enum Source: Hashable, Sendable { case irqfd(gsi: UInt32), signalMSI }
    public enum Outcome: Hashable, Sendable {
        /// The LPI is pending on the vCPU's redistributor (or, through an IRQCHIP route, the SPI
        /// at the vGICv2's distributor, for the first vCPU its GICD_ITARGETSR names).
        case delivered(intid: UInt32, vcpu: Int)
        /// The guest's ITS has no translation (KVM_SIGNAL_MSI returns 0).
        case blocked(ITSDropReason)
        /// Rejected with an errno (KVM_SIGNAL_MSI fails with it; an irqfd ignores it).
        case failed(Errno)
        /// irqfd on a GSI without a route.
        case noRoute

        /// The injection's end as a `Journal` keeps it.
        public var journalInjection: JournalInjection {
            switch self {
            case .delivered: .delivered
            case .blocked(let reason): .blocked("\(reason)")
            case .failed(let errno): .failed("\(errno)")
            case .noRoute: .noRoute
            }
        }
    }
    public var source: Source
    public var msi: KVMMSI?
    public var outcome: Outcome

    public var description: String {
        let from: String
        switch source {
        case .irqfd(let gsi): from = "irqfd GSI \(gsi)"
        case .signalMSI: from = "KVM_SIGNAL_MSI"
        }
        let what: String
        switch outcome {
        case .delivered(let intid, let vcpu): what = "\(intid < 1020 ? "SPI" : "LPI") \(intid) pending on vCPU \(vcpu)"
        case .blocked(let reason): what = "blocked by the guest ITS (\(reason))"
        case .failed(let errno): what = "rejected (\(errno))"
        case .noRoute: what = "no route"
        }
        let msiText = msi.map { " \(Hex.format($0.address, minDigits: 1)) data \($0.data) DeviceID \(Hex.format(UInt64($0.devid), minDigits: 1))" } ?? ""
        return "\(from)\(msiText): \(what)"
    }
}

extension KVMVirtualMachine {
    /// KVM_SET_GSI_ROUTING (`kvm_set_irq_routing`, virt/kvm/irqchip.c, with arm64's
    /// `kvm_set_routing_entry` in vgic-irqfd.c): replaces the whole table. EINVAL for more than
    /// KVM_MAX_IRQ_ROUTES entries, a GSI ≥ KVM_MAX_IRQ_ROUTES, MSI flags other than
    /// KVM_MSI_VALID_DEVID, or a GSI given twice (`setup_routing_entry` allows one non-irqchip
    /// entry per GSI). Nothing is validated against the vITS here: as in KVM, a route to a bad
    /// doorbell is accepted and fails at injection.
    public func setGSIRouting(_ entries: [KVMMSIRoute]) throws(Errno) {
        guard entries.count <= Int(KVMConstants.maxIRQRoutes) else { throw .EINVAL }
        var table: [UInt32: KVMMSIRoute] = [:]
        for entry in entries {
            guard entry.gsi < KVMConstants.maxIRQRoutes, entry.flags & ~KVMConstants.msiValidDevID == 0 else { throw .EINVAL }
            guard table[entry.gsi] == nil, irqchipRoutes[entry.gsi] == nil else { throw .EINVAL }
            table[entry.gsi] = entry
        }
        routes = table
        routingGeneration &+= 1
    }

    /// KVM_SET_GSI_ROUTING with the whole of `table`: the same EINVAL and the same resulting
    /// table as `setGSIRouting(_ entries:)` given every entry, but only the GSIs changed since
    /// the table's last accepted commit are written (all of them when another caller replaced
    /// the VM's table in between). On EINVAL nothing changes and the changes stay pending.
    public func setGSIRouting(_ table: inout KVMRouteTable) throws(Errno) {
        guard !table.isRefused else { throw .EINVAL }
        if !irqchipRoutes.isEmpty {
            for gsi in table.entries.keys where irqchipRoutes[gsi] != nil { throw .EINVAL }
        }
        if let generation = table.committedGeneration, generation == routingGeneration {
            for gsi in table.changed { routes[gsi] = table.entries[gsi] }
        } else {
            routes = table.entries
        }
        routingGeneration &+= 1
        table.committedGeneration = routingGeneration
        table.changed = []
    }

    /// The current route of `gsi`.
    public func route(gsi: UInt32) -> KVMMSIRoute? { routes[gsi] }

    /// The current routes, by GSI.
    public var gsiRoutes: [KVMMSIRoute] { routes.values.sorted { $0.gsi < $1.gsi } }

    /// KVM_IRQFD on the process's descriptor `fd` (`kvm_irqfd_assign`): every signal of the
    /// eventfd injects `gsi`'s route. `eventfd_ctx_fdget` errors (EBADF, EINVAL) pass through;
    /// EBUSY when the eventfd already feeds an irqfd of this VM (`kvm_irqfd_assign` walks
    /// `kvm->irqfds.items`). `deassign` (KVM_IRQFD_FLAG_DEASSIGN, `kvm_irqfd_deassign`) removes a
    /// matching (eventfd, gsi) pair and succeeds even when there is none.
    ///
    /// The GSI need not have a route yet: the route is looked up when the eventfd fires
    /// (KVM snapshots it in `irqfd_update` and refreshes it on every routing change, which is
    /// equivalent). Model restriction: `EventFD.onSignal` has one consumer, so an eventfd already
    /// consumed elsewhere is EBUSY too.
    public func irqfd(eventfd fd: Int32, gsi: UInt32, deassign: Bool = false) throws(Errno) {
        // kvm_irqfd_assign: `if (!kvm_arch_intc_initialized(kvm)) return -EAGAIN;` — on arm64
        // that is `vgic_initialized`, so irqfds need the vGIC first. (Deassign has no such check.)
        if !deassign, vgic == nil { throw .EAGAIN }
        let object = try process.eventfdContext(fd)
        try irqfd(eventfd: object, gsi: gsi, deassign: deassign)
    }

    /// KVM_IRQFD with an already-resolved eventfd.
    public func irqfd(eventfd object: EventFD, gsi: UInt32, deassign: Bool = false) throws(Errno) {
        if !deassign, vgic == nil { throw .EAGAIN }
        let key = ObjectIdentifier(object)
        if deassign {
            if let existing = irqfds[key], existing.gsi == gsi {
                // irqfd_shutdown: irq_bypass_unregister_consumer (unforwarding a vLPI).
                kernel.irqBypass.unregisterConsumer(token: object)
                irqfds[key] = nil
                object.onSignal = nil
            }
            return
        }
        guard irqfds[key] == nil, object.onSignal == nil else { throw .EBUSY }
        irqfds[key] = KVMIRQFD(eventfd: object, gsi: gsi)
        object.onSignal = { [weak self] eventfd in self?.irqfdWakeup(eventfd, gsi: gsi) }
        // kvm_irqfd_assign (kvm_arch_has_irq_bypass() is true on arm64): the irqfd's consumer,
        // token = its eventfd; a VFIO producer already there connects now (GICv4 forwarding).
        kernel.irqBypass.registerConsumer(token: object, bypassConsumer(gsi: gsi))
    }

    /// The irqfds, by GSI.
    public var assignedIRQFDs: [KVMIRQFD] { irqfds.values.sorted { $0.gsi < $1.gsi } }

    /// `irqfd_wakeup` on EPOLLIN: consume the counter (`eventfd_ctx_do_read`), then inject the
    /// route (`kvm_arch_set_irq_inatomic` / `irqfd_inject` → `kvm_set_irq` → `kvm_set_msi` with
    /// level 1; an IRQCHIP route → `vgic_irqfd_set_irq`, `injectSPI`). Failures are not reported to anyone — the signal is simply lost — so the model
    /// counts them.
    func irqfdWakeup(_ eventfd: EventFD, gsi: UInt32) {
        counters.irqfdSignals &+= 1
        _ = eventfd.read()
        guard let route = routes[gsi] else {
            if let pin = irqchipRoutes[gsi] {
                injectSPI(pin: pin, source: .irqfd(gsi: gsi))
                return
            }
            counters.noRoute &+= 1
            record(.init(source: .irqfd(gsi: gsi), msi: nil, outcome: .noRoute))
            return
        }
        _ = try? inject(route.msi, source: .irqfd(gsi: gsi))
    }

    /// KVM_SIGNAL_MSI (`kvm_send_userspace_msi` → `kvm_set_msi` → `vgic_its_inject_msi`): 1 when
    /// the LPI was made pending, 0 when the guest's ITS blocks it (no mapping), or the errno.
    ///
    /// `kvm_send_userspace_msi` first: EINVAL without an in-kernel irqchip or with flags other
    /// than KVM_MSI_VALID_DEVID.
    public func signalMSI(_ msi: KVMMSI) throws(Errno) -> Int32 {
        guard vgic != nil, msi.flags & ~KVMConstants.msiValidDevID == 0 else { throw .EINVAL }
        return try inject(msi, source: .signalMSI) ? 1 : 0
    }

    /// `vgic_its_inject_msi`, checks in KVM's order:
    /// 1. `kvm_set_msi`: no vITS → ENODEV.
    /// 2. `vgic_msi_to_its`: no KVM_MSI_VALID_DEVID → EINVAL; the doorbell address must fall in
    ///    a vITS's MMIO frame on the KVM_MMIO_BUS (`kvm_io_bus_get_dev` over the 128 KiB
    ///    KVM_VGIC_V3_ITS_SIZE region, any offset in it: KVM does not require exactly
    ///    GITS_TRANSLATER here; its translation cache is keyed by base + GITS_TRANSLATER) → else
    ///    EINVAL.
    /// 3. `vgic_its_trigger_msi` → `vgic_its_resolve_lpi`: ITS disabled → EBUSY; no DTE/ITE/
    ///    mapped collection → a positive E_ITS_* code that `vgic_its_inject_msi` turns into 0
    ///    ("blocked"); target vCPU with LPIs disabled → EBUSY; else the LPI becomes pending.
    /// Step 3 runs the model ITS's translation for (devid, data) — the walk a GITS_TRANSLATER
    /// write with that DeviceID sideband performs — rather than an MMIO write, since KVM resolves
    /// the LPI directly and not through its MMIO handler.
    @discardableResult
    func inject(_ msi: KVMMSI, source: KVMInjectionRecord.Source) throws(Errno) -> Bool {
        func fail(_ errno: Errno, _ counter: WritableKeyPath<KVMCounters, Int>) -> Errno {
            counters[keyPath: counter] &+= 1
            record(.init(source: source, msi: msi, outcome: .failed(errno)))
            return errno
        }
        guard let its = vgic?.its else { throw fail(.ENODEV, \.noITS) }
        guard msi.flags & KVMConstants.msiValidDevID != 0 else { throw fail(.EINVAL, \.noDeviceID) }
        let address = msi.address
        guard address >= its.base.rawValue, address - its.base.rawValue < KVMConstants.vgicV3ITSSize else {
            throw fail(.EINVAL, \.notITSDoorbell)
        }
        let translation = its.translate(deviceID: DeviceID(msi.devid), eventID: EventID(msi.data))
        kernel.journal?.append(.vitsTranslate(deviceID: DeviceID(msi.devid), eventID: msi.data, result: translation.journalResult))
        switch translation {
        case .delivered(let intid, let cpu, let accepted):
            guard accepted else { throw fail(.EBUSY, \.busy) }
            counters.delivered &+= 1
            record(.init(source: source, msi: msi, outcome: .delivered(intid: intid.rawValue, vcpu: cpu)))
            return true
        case .dropped(.itsDisabled):
            throw fail(.EBUSY, \.busy)
        case .virtual:
            // KVM's vITS keeps its entries in lists and advertises no virtual support, so its
            // translations are never virtual; counted as blocked if one ever were.
            counters.blockedByGuest &+= 1
            record(.init(source: source, msi: msi, outcome: .blocked(.virtualNotModelled)))
            return false
        case .dropped(let reason):
            counters.blockedByGuest &+= 1
            record(.init(source: source, msi: msi, outcome: .blocked(reason)))
            return false
        }
    }

    /// Keeps the injection (when `recordsInjections`) and appends its end to the kernel's
    /// journal (when one is attached).
    func record(_ entry: KVMInjectionRecord) {
        kernel.journal?.append(.irqfdInjection(entry.outcome.journalInjection))
        guard recordsInjections else { return }
        injections.append(entry)
    }
}
