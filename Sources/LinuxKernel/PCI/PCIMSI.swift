import Bus
import PCI

/// PCI MSI and MSI-X (drivers/pci/msi/api.c, msi.c, irqdomain.c).
extension PCISubsystem {
    /// `pci_alloc_irq_vectors(dev, min_vecs, max_vecs, flags)`: MSI-X first if allowed
    /// (`__pci_enable_msix_range`), then MSI (`__pci_enable_msi_range`); returns the number of
    /// vectors, or the last error; with `PCI_IRQ_INTX`, a function whose INTx `pci_assign_irq`
    /// mapped falls back to its one wire interrupt when neither could be enabled (no MSI
    /// domain, no capability).
    ///
    /// `pci_alloc_irq_vectors_affinity`: with `.affinity` in `flags`, `affinity` (nil:
    /// `msi_default_affd`, no pre or post vectors) caps the count (`irq_calc_affinity_vectors`,
    /// ENOSPC below `min`) and `irq_create_affinity_masks` gives each vector its mask; the
    /// spread ones are managed interrupts. Without the flag an `affinity` is dropped (Linux
    /// WARNs and sets it to NULL).
    ///
    /// `iovas` non-empty is RFCv1's `pci_alloc_irq_vectors_iovas(dev, min, max, flags,
    /// msi_iovas)` (`KernelPatches.irqchipMSIIOVA`, patches 3–6/7): MSI-X descriptor i gets
    /// `iovas[i]` as its preset (`msix_setup_msi_descs`: "if (entries && entries[i].iova)" — 0
    /// means none); MSI's one descriptor gets `iovas[0]` (`msi_setup_msi_desc(dev, nvec, iova,
    /// …)`; which element `__pci_alloc_irq_vectors` passes for MSI was not verified).
    @discardableResult
    public func allocateIRQVectors(_ dev: PCIDevice, min: Int, max: Int, flags: PCIIRQFlags,
                                   affinity: IRQAffinity? = nil, iovas: [Int: UInt64] = [:]) throws(Errno) -> Int {
        var last: Errno = .ENOSPC
        let affd = flags.contains(.affinity) ? (affinity ?? IRQAffinity()) : nil
        if flags.contains(.msix) {
            do { return try enableMSIXRange(dev, min: min, max: max, affinity: affd, iovas: iovas) } catch { last = error }
        }
        if flags.contains(.msi) {
            do { return try enableMSIRange(dev, min: min, max: max, affinity: affd, iova: iovas[0]) } catch { last = error }
        }
        // "if (flags & PCI_IRQ_INTX) { if (min_vecs == 1 && dev->irq) { … pci_intx(dev, 1);
        // return 1; } }": the INTx fallback, only once MSI-X and MSI both failed.
        if flags.contains(.intx), min == 1, dev.irq > 0 {
            try dev.clearAndSet16(ConfigRegister.command, clear: ConfigRegister.commandInterruptDisable, set: 0)
            dev.intxEnabled = true
            return 1
        }
        throw last
    }

    /// The `irq_calc_affinity_vectors` step of `__pci_enable_msi{x}_range`: nvec capped, and
    /// ENOSPC when that leaves fewer than `min`.
    func cappedByAffinity(_ nvec: Int, min: Int, _ affd: IRQAffinity?) throws(Errno) -> Int {
        guard let affd else { return nvec }
        let capped = affd.vectors(min: min, max: nvec, possibleCPUs: kernel.irq.cpuCount)
        guard capped >= min, capped > 0 else { throw .ENOSPC }
        return capped
    }

    /// RFCv1 1/7: `desc->msi_iova`, PHYS_ADDR_MAX (nil) unless a non-zero IOVA was preset.
    static func presetIOVA(_ iova: UInt64?) -> UInt64? {
        guard let iova, iova != 0, iova != .max else { return nil }
        return iova
    }

    /// `pci_irq_vector(dev, nr)`: the Linux interrupt of vector `nr` (MSI-X: table entry `nr`;
    /// MSI: the first interrupt + nr).
    public func irqVector(_ dev: PCIDevice, _ nr: Int) throws(Errno) -> Int {
        if dev.msixEnabled {
            guard let desc = dev.device.msiDescriptors.first(where: { $0.index == nr }), desc.irq != 0 else { throw .EINVAL }
            return desc.irq
        }
        if dev.msiEnabled, let desc = dev.device.msiDescriptors.first, let attributes = dev.msiAttributes {
            guard nr >= 0, nr < attributes.vectors else { throw .EINVAL }
            return desc.irq + nr
        }
        // Neither: "if (WARN_ON_ONCE(nr > 0)) return -EINVAL; return dev->irq;".
        guard nr == 0, dev.irq > 0 else { throw .EINVAL }
        return dev.irq
    }

    /// `__pci_enable_msix_range`, checks in Linux's order: max < min is ERANGE; MSI or MSI-X
    /// already on is EINVAL; so is a function not in D0 (`pci_msi_supported` /
    /// `current_state != PCI_D0`: `pci_enable_device` not called) or without MSI-X; the table
    /// size caps the count and fewer than `min` is ENOSPC.
    func enableMSIXRange(_ dev: PCIDevice, min: Int, max: Int, affinity: IRQAffinity? = nil,
                         iovas: [Int: UInt64] = [:]) throws(Errno) -> Int {
        guard max >= min else { throw .ERANGE }
        guard min >= 1, dev.isEnabled, !dev.msixEnabled, !dev.msiEnabled else { throw .EINVAL }
        guard let cap = dev.msixCapability else { throw .EINVAL }
        let hwsize = vectorCount(msix: dev)
        let domain = try msiDomain(of: dev)
        var nvec = Swift.min(max, hwsize)
        guard nvec >= min else { throw .ENOSPC }
        nvec = try cappedByAffinity(nvec, min: min, affinity)
        try msixCapabilityInit(dev, cap: cap, nvec: nvec, hwsize: hwsize, domain: domain,
                               masks: affinity?.masks(count: nvec, cpus: kernel.irq.cpuCount), iovas: iovas)
        return nvec
    }

    /// `msix_capability_init`: Message Control Enable | Function Mask, map the table
    /// (`msix_map_region`: BIR's BAR + offset), one descriptor per vector with the Vector
    /// Control value read from the table (`msix_prepare_msi_desc`), the ITS device and the
    /// interrupts (`msix_setup_interrupts` → `pci_msi_setup_msi_irqs`), then mask every table
    /// entry (`msix_mask_all`, "done late" as Linux does) and clear Function Mask.
    func msixCapabilityInit(_ dev: PCIDevice, cap: Int, nvec: Int, hwsize: Int,
                            domain: (its: Int, deviceID: UInt32, requesterID: RequesterID),
                            masks: [IRQAffinityMask]? = nil, iovas: [Int: UInt64] = [:]) throws(Errno) {
        let control = cap + 2
        try dev.clearAndSet16(control, clear: 0, set: MSIXCapability.controlEnable | MSIXCapability.controlFunctionMask)
        dev.msixEnabled = true
        do throws(Errno) {
            let tableRegister = try dev.readConfig32(cap + 4)
            let bir = Int(tableRegister & 7)
            guard let bar = dev.resource(bar: bir), let barAddress = bar.address,
                  let table = barAddress.adding(UInt64(tableRegister & ~7)) else { throw Errno.ENOMEM }
            dev.msixTableAddress = table
            dev.msixTableSize = hwsize
            var descriptors: [MSIDescriptor] = []
            for index in 0..<nvec {
                let desc = MSIDescriptor(index: index)
                desc.masked = try readVectorControl(dev, index) & 1 != 0
                desc.presetIOVA = Self.presetIOVA(iovas[index])
                if let masks, masks.indices.contains(index) { desc.affinity = [masks[index]] }
                descriptors.append(desc)
            }
            dev.device.msiDescriptors = descriptors
            try setupInterrupts(dev, descriptors: descriptors, hwsize: hwsize, domain: domain, chip: "ITS-PCI-MSIX")
            for index in 0..<hwsize { try writeVectorControl(dev, index, 1) }
            try dev.clearAndSet16(control, clear: MSIXCapability.controlFunctionMask, set: 0)
        } catch {
            try? dev.clearAndSet16(control, clear: MSIXCapability.controlEnable, set: 0)
            dev.msixEnabled = false
            dev.device.msiDescriptors = []
            throw error
        }
    }

    /// `pci_msi_setup_msi_irqs` → ITS prepare (`its_pci_msi_prepare` → `its_msi_prepare`) and
    /// `msi_domain_alloc_irqs_all_locked`.
    func setupInterrupts(_ dev: PCIDevice, descriptors: [MSIDescriptor], vectorsPerDescriptor: Int = 1, hwsize: Int,
                         domain: (its: Int, deviceID: UInt32, requesterID: RequesterID), chip: String) throws(Errno) {
        if domain.its < 0 {
            // A GICv2m or MBI parent (`PCISubsystem.spiMSIDomainIndex`): no ITS device to prepare.
            let index = -1 - domain.its
            guard kernel.irq.spiMSIDomains.indices.contains(index) else { throw .ENODEV }
            let spiDomain = kernel.irq.spiMSIDomains[index]
            dev.msiDomain = (domain.its, domain.deviceID)
            let name = spiDomain.kind.rawValue + chip.dropFirst(3)
            _ = try kernel.irq.allocateSPIMSIIRQs(device: dev.device, descriptors: descriptors, vectorsPerDescriptor: vectorsPerDescriptor,
                                                  domain: spiDomain, chipName: "\(name)-\(dev.name)")
            return
        }
        guard kernel.itsDrivers.indices.contains(domain.its) else { throw .ENODEV }
        let driver = kernel.itsDrivers[domain.its]
        let count = itsEventCount(dev, nvec: descriptors.count * vectorsPerDescriptor, hwsize: hwsize, deviceID: domain.deviceID)
        let itsDevice = try driver.prepareDevice(deviceID: domain.deviceID, vectors: count)
        dev.msiDomain = (domain.its, domain.deviceID)
        _ = try kernel.irq.allocateMSIIRQs(device: dev.device, descriptors: descriptors, vectorsPerDescriptor: vectorsPerDescriptor,
                                           driver: driver, itsDevice: itsDevice, chipName: "\(chip)-\(dev.name)")
    }

    /// `__pci_enable_msi_range`: as for MSI-X, with the count capped by 2^(Multiple Message
    /// Capable) (`pci_msi_vec_count`).
    func enableMSIRange(_ dev: PCIDevice, min: Int, max: Int, affinity: IRQAffinity? = nil, iova: UInt64? = nil) throws(Errno) -> Int {
        guard max >= min else { throw .ERANGE }
        guard min >= 1, dev.isEnabled, !dev.msixEnabled, !dev.msiEnabled else { throw .EINVAL }
        guard let cap = dev.msiCapability else { throw .EINVAL }
        let capable = vectorCount(msi: dev)
        let domain = try msiDomain(of: dev)
        var nvec = Swift.min(max, capable)
        guard nvec >= min else { throw .ENOSPC }
        nvec = try cappedByAffinity(nvec, min: min, affinity)
        try msiCapabilityInit(dev, cap: cap, nvec: nvec, domain: domain,
                              masks: affinity?.masks(count: nvec, cpus: kernel.irq.cpuCount), iova: iova)
        return nvec
    }

    /// `msi_capability_init`: one descriptor for all vectors (`msi_setup_msi_desc`: multiple =
    /// log2(roundup_pow_of_two(nvec)), 64-bit and per-vector-masking from Message Control), mask
    /// them all (`pci_msi_mask`), allocate (only the first interrupt writes the message:
    /// `pci_msi_domain_write_msg` checks `desc->irq == irq_data->irq`), then MSI Enable.
    func msiCapabilityInit(_ dev: PCIDevice, cap: Int, nvec: Int, domain: (its: Int, deviceID: UInt32, requesterID: RequesterID),
                           masks: [IRQAffinityMask]? = nil, iova: UInt64? = nil) throws(Errno) {
        let flags = try dev.readConfig16(cap + 2)
        var multiple = 0
        while (1 << multiple) < nvec { multiple += 1 }
        let attributes = PCIDevice.MSIAttributes(is64: flags & 0x80 != 0, multiple: multiple, canMask: flags & 0x100 != 0,
                                                 mask: 0, vectors: nvec)
        dev.msiAttributes = attributes
        let desc = MSIDescriptor(index: 0)
        desc.presetIOVA = Self.presetIOVA(iova)
        desc.affinity = masks
        dev.device.msiDescriptors = [desc]
        if attributes.canMask {
            let all = nvec >= 32 ? UInt32.max : (UInt32(1) << UInt32(1 << multiple)) &- 1
            try writeMSIMask(dev, cap: cap, all)
        }
        do {
            try setupInterrupts(dev, descriptors: [desc], vectorsPerDescriptor: nvec, hwsize: nvec, domain: domain, chip: "ITS-PCI-MSI")
        } catch {
            dev.device.msiDescriptors = []
            dev.msiAttributes = nil
            throw error
        }
        try dev.clearAndSet16(cap + 2, clear: 0, set: MSICapability.controlEnable)
        dev.msiEnabled = true
    }

    func msiMaskOffset(_ dev: PCIDevice, cap: Int) -> Int? {
        guard let a = dev.msiAttributes, a.canMask else { return nil }
        return cap + (a.is64 ? 0x10 : 0x0C)
    }

    func writeMSIMask(_ dev: PCIDevice, cap: Int, _ mask: UInt32) throws(Errno) {
        guard let offset = msiMaskOffset(dev, cap: cap) else { return }
        dev.msiAttributes?.mask = mask
        try dev.writeConfig32(offset, mask)
    }

    // MARK: Table entries

    func entryAddress(_ dev: PCIDevice, _ index: Int, _ field: UInt64) throws(Errno) -> PhysicalAddress {
        guard let table = dev.msixTableAddress, index >= 0, index < max(dev.msixTableSize, 1),
              let a = table.adding(UInt64(index) * 16 + field) else { throw .EINVAL }
        return a
    }

    func readVectorControl(_ dev: PCIDevice, _ index: Int) throws(Errno) -> UInt32 {
        try kernel.mmio.read32(try entryAddress(dev, index, 0xC))
    }

    /// `pci_msix_write_vector_ctrl`.
    func writeVectorControl(_ dev: PCIDevice, _ index: Int, _ value: UInt32) throws(Errno) {
        try kernel.mmio.write32(try entryAddress(dev, index, 0xC), value)
    }

    /// `pci_write_msi_msg(irq, msg)` / `__pci_write_msi_msg(desc, msg)` (public: VFIO's
    /// `vfio_msi_set_vector_signal` rewrites a vector with `get_cached_msi_msg` + this).
    ///
    /// MSI-X: if the cached Vector Control has the entry unmasked, mask it first ("If software
    /// changes the Address or Data value of an entry while the entry is unmasked, the result is
    /// undefined", PCIe §6.1.4.2), write Address low, Address high, Data, restore Vector Control,
    /// then read Data back to flush. MSI: Multiple Message Enable, Address (low, high if 64-bit),
    /// Data. A function not in D0 is left alone. Either way the message is cached in `desc->msg`.
    public func writeMSIMessage(_ dev: PCIDevice, _ desc: MSIDescriptor, _ message: MSIMessage) throws(Errno) {
        defer { desc.message = message }
        guard dev.isEnabled else { return }
        if dev.msixEnabled {
            let unmasked = !desc.masked
            if unmasked { try writeVectorControl(dev, desc.index, 1) }
            try kernel.mmio.write32(try entryAddress(dev, desc.index, 0x0), message.addressLo)
            try kernel.mmio.write32(try entryAddress(dev, desc.index, 0x4), message.addressHi)
            try kernel.mmio.write32(try entryAddress(dev, desc.index, 0x8), message.data)
            if unmasked { try writeVectorControl(dev, desc.index, 0) }
            _ = try kernel.mmio.read32(try entryAddress(dev, desc.index, 0x8))
        } else if let cap = dev.msiCapability, let attributes = dev.msiAttributes {
            let flags = try dev.readConfig16(cap + 2)
            try dev.writeConfig16(cap + 2, (flags & ~0x70) | UInt16(attributes.multiple << 4))
            try dev.writeConfig32(cap + 4, message.addressLo)
            if attributes.is64 {
                try dev.writeConfig32(cap + 8, message.addressHi)
                try dev.writeConfig16(cap + 0xC, UInt16(truncatingIfNeeded: message.data))
            } else {
                try dev.writeConfig16(cap + 8, UInt16(truncatingIfNeeded: message.data))
            }
            _ = try dev.readConfig16(cap + 2)
        }
    }

    /// `pci_msix_mask` / `pci_msix_unmask` (Vector Control Mask bit, then a read to flush) or
    /// `pci_msi_mask` / `pci_msi_unmask` (bit `vector` of the Mask Bits register, when the
    /// function has per-vector masking).
    func maskVector(_ dev: PCIDevice, _ desc: MSIDescriptor, masked: Bool, vector: Int = 0) throws(Errno) {
        if dev.msixEnabled {
            desc.masked = masked
            try writeVectorControl(dev, desc.index, masked ? 1 : 0)
            _ = try readVectorControl(dev, desc.index)
        } else if dev.msiEnabled || dev.msiAttributes != nil, let cap = dev.msiCapability, var mask = dev.msiAttributes?.mask {
            guard vector >= 0, vector < 32 else { return }
            let bit = UInt32(1) << UInt32(vector)
            mask = masked ? mask | bit : mask & ~bit
            if vector == 0 { desc.masked = masked }
            try writeMSIMask(dev, cap: cap, mask)
        }
    }

    /// `get_cached_msi_msg`.
    public func cachedMSIMessage(_ desc: MSIDescriptor) -> MSIMessage { desc.message }

    // MARK: Teardown

    /// `pci_free_irq_vectors` → `pci_disable_msix` / `pci_disable_msi`: mask every vector,
    /// clear the Enable bit, then free the interrupts (`msi_domain_free_irqs_all_locked`:
    /// deactivate — which writes an all-zero message — DISCARD, and MAPD V=0 with the last
    /// event) and the descriptors. Linux WARNs if a handler is still installed; the model
    /// refuses with EBUSY instead of freeing under a live action.
    public func freeIRQVectors(_ dev: PCIDevice) throws(Errno) {
        let irqs = dev.device.msiDescriptors.flatMap { desc -> [Int] in
            let count = dev.msiEnabled ? (dev.msiAttributes?.vectors ?? 1) : 1
            return desc.irq == 0 ? [] : (0..<count).map { desc.irq + $0 }
        }
        for irq in irqs where kernel.irq.descriptor(irq)?.action != nil { throw .EBUSY }
        if dev.msixEnabled {
            for desc in dev.device.msiDescriptors { try maskVector(dev, desc, masked: true) }
            if let cap = dev.msixCapability { try dev.clearAndSet16(cap + 2, clear: MSIXCapability.controlEnable, set: 0) }
        } else if dev.msiEnabled, let cap = dev.msiCapability {
            if let attributes = dev.msiAttributes, attributes.canMask { try writeMSIMask(dev, cap: cap, UInt32.max >> UInt32(32 - Swift.min(1 << attributes.multiple, 32))) }
            try dev.clearAndSet16(cap + 2, clear: MSICapability.controlEnable, set: 0)
        } else {
            return
        }
        for irq in irqs { try kernel.irq.freeMSIIRQ(irq) }
        dev.device.msiDescriptors = []
        dev.msixEnabled = false
        dev.msiEnabled = false
        dev.msiAttributes = nil
    }

    // MARK: Dynamic MSI-X

    /// `pci_msix_alloc_irq_at(dev, index, NULL)`: one more MSI-X vector while MSI-X is on (the
    /// ITS parent supports MSI_FLAG_PCI_MSIX_ALLOC_DYN). `index` nil is MSI_ANY_INDEX: the
    /// lowest free table entry. The ITS device was sized for the whole table at enable time
    /// (hwsize), so the new vector takes a free event without a new MAPD. Errors: MSI-X off
    /// (EOPNOTSUPP; Linux -ENOTSUPP), index beyond the table (ERANGE), index in use (EBUSY),
    /// table full (ENOSPC). `iova` is the vector's RFCv1 preset (`KernelPatches.irqchipMSIIOVA`;
    /// VFIO passes `vdev->msi_iovas[vector]`), nil for none.
    public func msixAllocateIRQ(_ dev: PCIDevice, at index: Int? = nil, iova: UInt64? = nil) throws(Errno) -> (index: Int, irq: Int) {
        guard dev.msixEnabled else { throw .EOPNOTSUPP }
        let used = Set(dev.device.msiDescriptors.map(\.index))
        let chosen: Int
        if let index {
            guard index >= 0, index < dev.msixTableSize else { throw .ERANGE }
            guard !used.contains(index) else { throw .EBUSY }
            chosen = index
        } else {
            guard let free = (0..<dev.msixTableSize).first(where: { !used.contains($0) }) else { throw .ENOSPC }
            chosen = free
        }
        guard let domain = dev.msiDomain, kernel.itsDrivers.indices.contains(domain.its),
              let itsDevice = kernel.itsDrivers[domain.its].device(domain.deviceID) else { throw .ENODEV }
        let desc = MSIDescriptor(index: chosen)
        desc.masked = try readVectorControl(dev, chosen) & 1 != 0
        desc.presetIOVA = Self.presetIOVA(iova)
        dev.device.msiDescriptors.append(desc)
        dev.device.msiDescriptors.sort { $0.index < $1.index }
        do {
            let irqs = try kernel.irq.allocateMSIIRQs(device: dev.device, descriptors: [desc], driver: kernel.itsDrivers[domain.its],
                                                      itsDevice: itsDevice, chipName: "ITS-PCI-MSIX-\(dev.name)")
            return (chosen, irqs.first ?? desc.irq)
        } catch {
            dev.device.msiDescriptors.removeAll { $0 === desc }
            throw error
        }
    }

    /// `pci_msix_free_irq(dev, map)`: frees one dynamically allocated vector (its entry masked,
    /// deactivated — zero message — and its event released).
    public func msixFreeIRQ(_ dev: PCIDevice, irq: Int) throws(Errno) {
        guard dev.msixEnabled, let desc = dev.device.msiDescriptors.first(where: { $0.irq == irq }) else { throw .EINVAL }
        guard kernel.irq.descriptor(irq)?.action == nil else { throw .EBUSY }
        try maskVector(dev, desc, masked: true)
        try kernel.irq.freeMSIIRQ(irq)
        dev.device.msiDescriptors.removeAll { $0 === desc }
    }
}
