import Bus
import Firmware
import LinuxKernel
import PCI
import SMMUv3

/// A QEMU-like VMM for one passthrough PCIe function. It talks to the host kernel only through
/// its uAPI — a `UserProcess` (mmap, eventfd), KVM (VM, memory slot, vCPUs, vGIC/vITS, GSI
/// routes, irqfd), VFIO cdev + iommufd (bind, IOAS map of guest RAM at its IPA, nest-parent
/// HWPT, vIOMMU, vDEVICE, nested HWPT, HWPT_INVALIDATE, vEVENTQ) — and emulates the guest's
/// devices on the VM's guest bus: the host bridge with the passthrough function
/// (`GuestHostBridge`, `PassthroughFunction`) and, with `.acceleratedSMMUv3`, the vSMMU
/// register file (`VirtualSMMU`). The guest's device tree is QEMU virt's (`GuestDeviceTree`).
///
/// Sequence (QEMU `vfio_realize` with iommufd, `smmuv3-accel`, `kvm_arm_gicv3`):
/// 1. KVM_CREATE_VM; guest RAM = `mmap` + KVM_SET_USER_MEMORY_REGION at the layout's RAM base
///    (`Configuration.layout`, QEMU virt's 0x4000_0000 by default); KVM_CREATE_VCPU; the
///    vGICv3 + vITS at the layout's addresses.
/// 2. /dev/iommu; the VFIO cdev; VFIO_DEVICE_BIND_IOMMUFD; IOMMU_IOAS_ALLOC.
/// 3. No vIOMMU: VFIO_DEVICE_ATTACH_IOMMUFD_PT to the IOAS (auto domain: the device's DMA
///    addresses are GPAs). Accelerated vSMMU: IOMMU_HWPT_ALLOC(NEST_PARENT) on the IOAS and
///    attach the device to it. Then IOMMU_IOAS_MAP of guest RAM at IOVA = its GPA (the stage-2
///    view: IPA → host page), after the attach as in QEMU. Accelerated vSMMU, continued:
///    IOMMU_VIOMMU_ALLOC, IOMMU_VDEVICE_ALLOC (virt_id = the guest
///    StreamID, which the identity iommu-map makes the guest RID), IOMMU_VEVENTQ_ALLOC, then
///    the nested HWPT of the vSMMU's GBPA (reset: bypass), as QEMU's smmuv3-accel does.
/// 4. The guest devices on the guest bus; the guest boots (its own Command register writes turn
///    Memory Space and Bus Master on through the VFIO config region).
/// Guest MSI-X writes are trapped (`msixChanged`): on MSI-X enable, SET_IRQS with one vector
/// and no eventfd (`vfio_enable_msix_no_vec`); per unmasked vector an eventfd, a KVM MSI route
/// (doorbell = the guest's address, or `msi-gpa` (0x0809_0040 on virt) with the accelerated vSMMU, since
/// the guest's programmed address is an IOVA of its own stage 1 that KVM cannot resolve), KVM_IRQFD
/// and SET_IRQS for that vector (`vfio_msix_vector_use`).
public final class VirtualMachineMonitor {
    public enum VIOMMU: Hashable, Sendable {
        case none
        case acceleratedSMMUv3
    }

    public struct Configuration: Sendable {
        public var ramSize: UInt64
        public var vcpuCount: Int
        public var viommu: VIOMMU
        public var guestKernel: KernelConfiguration
        /// Where the function appears in the guest (00:01.0 = RID 0x0008).
        public var guestRequesterID: RequesterID
        /// The host SMMU's ID registers as IOMMU_GET_HW_INFO would report them. The model has no
        /// GET_HW_INFO ioctl yet, so the VMM is told (default: the qemu-virt SMMU model's).
        public var hostSMMU: SMMUConfiguration
        /// The guest's physical address map (QEMU virt unless told otherwise).
        public var layout: GuestMemoryMap
        /// The VMM side of the MSI strategy (default: none beyond QEMU's `msi-gpa` routing).
        public var msi: MSIPlan

        public init(ramSize: UInt64 = 0x100_0000, vcpuCount: Int = 1, viommu: VIOMMU,
                    guestKernel: KernelConfiguration = KernelConfiguration(),
                    guestRequesterID: RequesterID = RequesterID(bus: 0, device: 1, function: 0),
                    hostSMMU: SMMUConfiguration = SMMUConfiguration(), layout: GuestMemoryMap = .virt,
                    msi: MSIPlan = MSIPlan()) {
            self.ramSize = ramSize
            self.vcpuCount = vcpuCount
            self.viommu = viommu
            self.guestKernel = guestKernel
            self.guestRequesterID = guestRequesterID
            self.hostSMMU = hostSMMU
            self.layout = layout
            self.msi = msi
        }
    }

    /// One guest vector wired to KVM: its GSI, the eventfd of its KVM irqfd, the eventfd of the
    /// VMM's own handler (used while the guest masks the vector), the route, and which eventfd
    /// VFIO signals now.
    public struct Vector: Hashable, Sendable {
        public var gsi: UInt32
        public var fd: Int32
        public var userspaceFD: Int32
        public var route: KVMMSIRoute
        public var maskedByGuest = false
    }

    public let configuration: Configuration
    public let host: LinuxKernel
    public let process: UserProcess
    public let vm: KVMVirtualMachine
    public let guestRAMUserVA: UInt64
    public let iommufd: IOMMUFD
    public let deviceFile: VFIODeviceFile
    /// The device's object id in the iommufd.
    public let iommufdDeviceID: UInt32
    public let ioasID: UInt32
    /// The nest-parent HWPT (accelerated vSMMU) or the auto domain's HWPT (no vIOMMU).
    public let stage2HWPTID: UInt32
    public let viommuID: UInt32?
    public let vdeviceID: UInt32?
    public let veventqID: UInt32?
    /// The nested HWPT the device is attached to now (accelerated vSMMU, after a guest STE).
    public private(set) var nestedHWPTID: UInt32?
    public let vsmmu: VirtualSMMU?
    public let bridge: GuestHostBridge
    public let function: PassthroughFunction
    public let guestDeviceTree: GuestDeviceTree
    public let guestTopology: Topology
    public private(set) var guest: LinuxKernel?
    public private(set) var vectors: [Int: Vector] = [:]
    /// What the VMM did and what failed, in order (QEMU's trace points / error_report).
    public private(set) var log: [String] = []

    /// `msi-gpa` is ITS base + 0x1_0000 + 0x40 (QEMU "hw/arm/virt: Set msi-gpa property",
    /// smmuv3-accel series: "GITS_TRANSLATER page + offset"): `configuration.layout.msiGPA`.
    ///
    /// GSIs 0–255 are the vGIC's SPI pins in QEMU (`kvm_arm_gicv3_realize` adds an irqchip
    /// route per SPI), so MSI routes start above them. (Not verified against a running QEMU.)
    public static let firstMSIGSI: UInt32 = 256

    public init(host: LinuxKernel, device: Device, configuration: Configuration) throws(GuestError) {
        let M = configuration.layout
        self.configuration = configuration
        self.host = host
        func call<T>(_ name: String, _ body: () throws(Errno) -> T) throws(GuestError) -> T {
            do { return try body() } catch { throw .hostCall(name, "\(error)") }
        }
        process = UserProcess(kernel: host, name: "qemu-system-aarch64")
        let process = self.process
        vm = host.kvm.createVM(process: process)
        let vm = self.vm
        let ram = configuration.ramSize
        guard M.ramWindow(size: ram) != nil else {
            throw .unsupported("\(Hex.format(ram, minDigits: 1)) of RAM does not fit layout \(M.name)'s RAM window \(M.ram)")
        }
        guestRAMUserVA = try call("mmap") { () throws(Errno) in try process.mmap(length: ram) }
        let ramVA = guestRAMUserVA
        try call("KVM_SET_USER_MEMORY_REGION") { () throws(Errno) in
            try vm.setUserMemoryRegion(slot: 0, guestPhysical: M.ramBase, size: ram, userVA: ramVA)
        }
        try call("KVM_CREATE_VCPU") { () throws(Errno) in _ = try vm.createVCPUs(configuration.vcpuCount) }
        try call("KVM_CREATE_DEVICE(vgic-v3, its)") { () throws(Errno) in
            _ = try vm.createVGIC(distributor: PhysicalAddress(M.distributor.base),
                                  redistributors: PhysicalAddress(M.redistributors.base),
                                  its: PhysicalAddress(M.its.base))
        }

        iommufd = host.openIOMMUFD()
        let iommufd = self.iommufd
        // The file belongs to this process: IOMMU_IOAS_MAP pins its memory.
        iommufd.process = process
        let vdev = try call("vfio-pci bind") { () throws(Errno) in try host.vfio.bindVFIOPCI(device) }
        deviceFile = try call("open vfio cdev") { () throws(Errno) in try host.vfio.openDevice(vdev.cdevName, process: process) }
        let file = deviceFile
        iommufdDeviceID = try call("VFIO_DEVICE_BIND_IOMMUFD") { () throws(Errno) in try file.bindIOMMUFD(iommufd) }
        let devID = iommufdDeviceID
        ioasID = try call("IOMMU_IOAS_ALLOC") { () throws(Errno) in try iommufd.ioasAlloc() }
        let ioas = ioasID
        // QEMU `iommufd_cdev_attach`: the device is attached (to the IOAS, or to the nest
        // parent) before the memory listener maps guest RAM, so the host's reserved regions
        // (the SW_MSI window among them) are already in the IOAS when RAM is mapped, and a RAM
        // range over one fails IOMMU_IOAS_MAP (`iopt_check_iova`: EINVAL) — QEMU then fails the
        // device's realize with the listener's stored error.
        switch configuration.viommu {
        case .none:
            stage2HWPTID = try call("VFIO_DEVICE_ATTACH_IOMMUFD_PT") { () throws(Errno) in try file.attachIOMMUFDPT(ioas) }
        case .acceleratedSMMUv3:
            let parent = try call("IOMMU_HWPT_ALLOC(NEST_PARENT)") { () throws(Errno) in
                try iommufd.hwptAlloc(deviceID: devID, ptID: ioas, flags: .nestParent)
            }
            stage2HWPTID = parent
            _ = try call("VFIO_DEVICE_ATTACH_IOMMUFD_PT(parent)") { () throws(Errno) in try file.attachIOMMUFDPT(parent) }
        }
        _ = try call("IOMMU_IOAS_MAP") { () throws(Errno) in
            try iommufd.ioasMap(ioasID: ioas, flags: [.fixedIOVA, .readable, .writeable], userVA: ramVA, length: ram, iova: M.ramBase)
        }

        bridge = GuestHostBridge()
        let guestSID = UInt64(configuration.guestRequesterID.rawValue)
        switch configuration.viommu {
        case .none:
            viommuID = nil
            vdeviceID = nil
            veventqID = nil
            vsmmu = nil
        case .acceleratedSMMUv3:
            let parent = stage2HWPTID
            let viommu = try call("IOMMU_VIOMMU_ALLOC") { () throws(Errno) in try iommufd.viommuAlloc(deviceID: devID, hwptID: parent) }
            viommuID = viommu
            vdeviceID = try call("IOMMU_VDEVICE_ALLOC") { () throws(Errno) in
                try iommufd.vdeviceAlloc(viommuID: viommu, deviceID: devID, virtualID: guestSID)
            }
            veventqID = try call("IOMMU_VEVENTQ_ALLOC") { () throws(Errno) in try iommufd.veventqAlloc(viommuID: viommu).id }
            vsmmu = VirtualSMMU(guestBus: vm.guestBus,
                                identification: VirtualSMMU.acceleratedIdentification(host: configuration.hostSMMU))
        }
        function = try call("vfio-pci config") { () throws(Errno) in
            try PassthroughFunction(file: file, guestRequesterID: configuration.guestRequesterID)
        }
        let ids = (try? file.readConfig(0, size: 4)) ?? .max
        let dtFunction = GuestDeviceTree.Function(requesterID: configuration.guestRequesterID,
                                                  vendorID: UInt16(truncatingIfNeeded: ids), deviceID: UInt16(truncatingIfNeeded: ids >> 16))
        guestDeviceTree = GuestDeviceTree(ramSize: ram, cpuCount: configuration.vcpuCount, vSMMU: configuration.viommu != .none,
                                          layout: M, functions: [dtFunction],
                                          reservedMSIWindow: configuration.msi.guestReservedMSIWindow)
        guestTopology = try guestDeviceTree.topology()

        bridge.plug(function)
        do {
            try bridge.attach(to: vm.guestBus, layout: M)
            if let vsmmu { try vm.guestBus.addDevice(vsmmu, base: PhysicalAddress(M.smmu.base), size: M.smmu.size, name: "vsmmu") }
        } catch { throw .bus("\(error)") }
        function.onMSIXChange = { [weak self] _ in self?.msixChanged() }
        if let vsmmu {
            vsmmu.backend = self
            vsmmu.onTranslationEnableChange = { [weak self] _ in self?.installGuestSTE(vsid: guestSID) }
            // QEMU "hw/arm/smmuv3-accel: Install SMMUv3 GBPA based hwpt": before the guest
            // enables its SMMU the device sits on the nested HWPT of GBPA's bypass vSTE.
            installGuestSTE(vsid: guestSID)
        }
        note("VM \(vm.id) (\(M.name)): \(Hex.format(ram, minDigits: 1)) of RAM at \(Hex.format(M.ramBase, minDigits: 1)), \(device.name) as guest \(configuration.guestRequesterID), vIOMMU \(configuration.viommu)")
    }

    func note(_ line: String) { log.append(line) }

    /// Boots the guest kernel on the VM: `LinuxKernel(role: "guest")` over the guest bus and the
    /// vCPUs' GIC system registers, with the topology read from the guest DTB.
    @discardableResult
    public func bootGuest() throws(GuestError) -> LinuxKernel {
        let kernel = LinuxKernel(role: "guest", topology: guestTopology, bus: vm.guestBus,
                                 cpuInterface: vm.cpuInterface, configuration: configuration.guestKernel)
        guest = kernel
        do { try kernel.boot() } catch { throw .hostCall("guest boot", "\(error)") }
        return kernel
    }

    // MARK: vfio-pci MSI-X

    /// Re-evaluates the guest's vMSI-X state after a trapped write (QEMU `vfio_msix_enable`,
    /// `vfio_msix_vector_do_use`, `vfio_update_kvm_msi_virq`).
    func msixChanged() {
        let f = function
        if f.msixEnabled && deviceFile.vdev.irqType != VFIOIRQSet.msixIndex {
            do {
                try deviceFile.setIRQs(.trigger(start: 0, eventfds: [-1]))
                note("vfio_msix_enable: MSI-X on, no vector yet")
            } catch { note("VFIO_DEVICE_SET_IRQS(enable): \(error)") }
        } else if !f.msixEnabled && deviceFile.vdev.irqType == VFIOIRQSet.msixIndex {
            for (_, v) in vectors.sorted(by: { $0.key < $1.key }) {
                if let e = try? process.eventfdContext(v.fd) { try? vm.irqfd(eventfd: e, gsi: v.gsi, deassign: true) }
                try? process.close(v.fd)
                try? process.close(v.userspaceFD)
            }
            vectors = [:]
            try? vm.setGSIRouting([])
            try? deviceFile.setIRQs(.disable())
            note("vfio_msix_disable")
            return
        }
        guard f.msixEnabled else { return }
        var routesChanged = false
        var newVectors: [Int] = []
        for (index, entry) in f.entries.enumerated() {
            let doorbell = vsmmu != nil ? configuration.layout.msiGPA : entry.address
            let gsi = Self.firstMSIGSI &+ UInt32(index)
            let route = KVMMSIRoute(gsi: gsi, addressLo: UInt32(truncatingIfNeeded: doorbell),
                                    addressHi: UInt32(truncatingIfNeeded: doorbell >> 32), data: entry.data,
                                    devid: UInt32(f.guestRequesterID.rawValue))
            if var existing = vectors[index] {
                if existing.route != route, entry.address != 0 { existing.route = route; routesChanged = true }
                vectors[index] = existing
            } else if !f.isMasked(index), entry.address != 0 {
                let (fd, _) = process.eventfd(name: "vfio-msix[\(index)] kvm")
                let (userFD, user) = process.eventfd(name: "vfio-msix[\(index)] qemu")
                user.onSignal = { [weak self] eventfd in
                    _ = eventfd.read()
                    self?.userspaceInterrupt(index)
                }
                vectors[index] = Vector(gsi: gsi, fd: fd, userspaceFD: userFD, route: route)
                routesChanged = true
                newVectors.append(index)
            }
        }
        if routesChanged {
            do { try vm.setGSIRouting(vectors.values.map(\.route).sorted { $0.gsi < $1.gsi }) } catch { note("KVM_SET_GSI_ROUTING: \(error)") }
        }
        for index in newVectors {
            guard let v = vectors[index] else { continue }
            do {
                try vm.irqfd(eventfd: v.fd, gsi: v.gsi)
                try deviceFile.setIRQs(.trigger(start: UInt32(index), eventfds: [v.fd]))
                note("vector \(index): gsi \(v.gsi) → \(v.route)")
            } catch { note("vector \(index): \(error)") }
        }
        // Mask/unmask (QEMU `vfio_msix_vector_release` / `_use`): a masked vector's trigger is
        // switched to the VMM's own eventfd, whose handler (`vfio_msi_interrupt`) sets the
        // Pending bit instead of injecting; unmasking switches back to the irqfd and delivers a
        // pending interrupt (`msix_handle_mask_update` → `msix_notify`).
        for index in vectors.keys.sorted() {
            guard var v = vectors[index], !newVectors.contains(index) else { continue }
            let masked = f.isMasked(index)
            guard masked != v.maskedByGuest else { continue }
            do {
                try deviceFile.setIRQs(.trigger(start: UInt32(index), eventfds: [masked ? v.userspaceFD : v.fd]))
                v.maskedByGuest = masked
                vectors[index] = v
            } catch { note("vector \(index) \(masked ? "mask" : "unmask"): \(error)") }
            if !masked, index < f.pendingBits.count, f.pendingBits[index] {
                f.pendingBits[index] = false
                _ = try? vm.signalMSI(v.route.msi)
            }
        }
    }

    /// QEMU `vfio_msi_interrupt`: the VFIO trigger fired on the VMM's eventfd (the vector is
    /// masked by the guest, or was when the trigger was switched): set the Pending bit while
    /// masked, else deliver through KVM_SIGNAL_MSI.
    func userspaceInterrupt(_ index: Int) {
        guard let v = vectors[index] else { return }
        if function.isMasked(index) {
            if index < function.pendingBits.count { function.pendingBits[index] = true }
        } else {
            _ = try? vm.signalMSI(v.route.msi)
        }
    }

    // MARK: vEVENTQ

    /// Reads the vEVENTQ and writes each record into the guest's event queue (QEMU's vEVENTQ
    /// read handler). The kernel has already replaced the pSID by the vSID. Returns how many
    /// records were delivered.
    @discardableResult
    public func pollVirtualEvents() -> Int {
        guard let vsmmu, let veventqID else { return 0 }
        let events: [IOMMUFDVEvent]
        do { events = try iommufd.veventqRead(veventqID) } catch { note("vEVENTQ read: \(error)"); return 0 }
        var delivered = 0
        for event in events {
            if event.lostEvents { note("vEVENTQ: events lost") }
            guard event.data.count >= 4 else { continue }
            if vsmmu.record(EventRecord(event.data[0], event.data[1], event.data[2], event.data[3])) { delivered += 1 }
        }
        return delivered
    }
}

// MARK: accelerated vSMMU backend

extension VirtualMachineMonitor: VirtualSMMUBackend {
    /// QEMU `smmuv3_cmdq_consume` with accel: STE invalidations re-install the vSTE as a nested
    /// HWPT; stage-1 TLB and CD invalidations go to the host through IOMMU_HWPT_INVALIDATE on the
    /// vIOMMU (the kernel forces the VMID and turns vSIDs into pSIDs); prefetches are hints.
    /// Stage-2 and EL2 invalidations are CERROR_ILL: the vSMMU advertises neither S2P nor HYP
    /// (§4.4: a command for an unimplemented stage is ILLEGAL).
    public func execute(_ command: Command, from vsmmu: VirtualSMMU) -> CommandErrorCode {
        let guestSID = UInt32(function.guestRequesterID.rawValue)
        switch command {
        case .cfgiSTE(let sid, _):
            if sid.rawValue == guestSID { installGuestSTE(vsid: UInt64(guestSID)) }
            return .none
        case .cfgiSTERange(let sid, let range):
            let span = UInt64(1) << UInt64(min(Int(range) + 1, 32))
            let start = UInt64(sid.rawValue) & ~(span &- 1)
            if UInt64(guestSID) >= start, UInt64(guestSID) - start < span { installGuestSTE(vsid: UInt64(guestSID)) }
            return .none
        case .cfgiCD, .cfgiCDAll, .tlbiNHAll, .tlbiNHASID, .tlbiNHVA, .tlbiNHVAA, .tlbiNSNHAll, .atcInvalidate:
            guard let viommuID else { return .illegal }
            do {
                try iommufd.hwptInvalidate(viommuID: viommuID, commands: [command.encode()])
                return .none
            } catch {
                note("IOMMU_HWPT_INVALIDATE \(command.opcode): \(error)")
                return .illegal
            }
        case .prefetchConfig, .prefetchAddress:
            return .none
        default:
            return .illegal
        }
    }

    /// QEMU `smmuv3_accel_install_nested_ste`: the guest's effective STE for `vsid` — GBPA's
    /// bypass/abort while the guest's SMMU is off, else the guest STE from its stream table (an
    /// unreadable one as V = 0) — becomes a nested HWPT on the vIOMMU (the kernel keeps only
    /// the allow-listed words), the device is attached to it (replace), the previous one freed.
    func installGuestSTE(vsid: UInt64) {
        guard let vsmmu, let viommuID else { return }
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
        do {
            let hwpt = try iommufd.hwptAlloc(deviceID: iommufdDeviceID, ptID: viommuID, dataType: .armSMMUv3, data: words)
            _ = try deviceFile.attachIOMMUFDPT(hwpt)
            if let old = nestedHWPTID { try? iommufd.destroy(old) }
            nestedHWPTID = hwpt
            note("vSTE \(Hex.format(vsid, minDigits: 1)) config \(ste.config) → nested hwpt \(hwpt)")
        } catch {
            note("vSTE \(Hex.format(vsid, minDigits: 1)) install: \(error)")
        }
    }
}
