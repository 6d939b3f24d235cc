import Bus
import Firmware
import LinuxKernel
import PCI
import SMMUv3

/// A QEMU-like VMM for one or more passthrough PCIe functions. It talks to the host kernel only
/// through its uAPI — a `UserProcess` (mmap, eventfd), KVM (VM, memory slot, vCPUs, vGIC/vITS,
/// GSI routes, irqfd), VFIO cdev + iommufd (bind, IOAS map of guest RAM at its IPA, nest-parent
/// HWPT, vIOMMU, vDEVICE, nested HWPT, HWPT_INVALIDATE, vEVENTQ) — and emulates the guest's
/// devices on the VM's guest bus: the host bridge with the passthrough functions and any root
/// ports above them (`GuestHostBridge`, `PassthroughFunction`) and, with `.acceleratedSMMUv3`,
/// the vSMMU register file (`VirtualSMMU`). The guest's platform description is QEMU virt's on
/// the configured `GuestMemoryMap`: ACPI tables (`GuestACPITables`) or a device tree
/// (`GuestDeviceTree`), per `Configuration.firmware`.
///
/// Sequence (QEMU `vfio_realize` with iommufd — `iommufd_cdev_attach` —, `smmuv3-accel`,
/// `kvm_arm_gicv3`):
/// 1. KVM_CREATE_VM; guest RAM = `mmap` + KVM_SET_USER_MEMORY_REGION at the layout's RAM base
///    (QEMU virt's 0x4000_0000 by default); KVM_CREATE_VCPU; the vGICv3 + vITS at the layout's
///    addresses.
/// 2. /dev/iommu; per device, in order: the VFIO cdev, VFIO_DEVICE_BIND_IOMMUFD; the first
///    device's attach creates the container: IOMMU_IOAS_ALLOC, the attach, then IOMMU_IOAS_MAP
///    of guest RAM at IOVA = its GPA (the memory listener registers after the attach, so the
///    host's reserved regions are in the IOAS first); later devices attach to the same IOAS
///    ("try to attach to an existing container in this space").
/// 3. The attach: no vIOMMU — VFIO_DEVICE_ATTACH_IOMMUFD_PT to the IOAS (an auto domain, which
///    iommufd shares among devices when compatible); accelerated vSMMU — the first device
///    allocates IOMMU_HWPT_ALLOC(NEST_PARENT) on the IOAS, every device attaches to it (QEMU
///    reuses a container's HWPTs before allocating one). Then one IOMMU_VIOMMU_ALLOC on the
///    parent and one IOMMU_VEVENTQ_ALLOC, an IOMMU_VDEVICE_ALLOC per device (virt_id = its
///    guest StreamID, which the identity iommu-map makes its guest RID; a device behind another
///    host SMMU is refused there by the kernel, EINVAL — QEMU needs one vSMMU per host SMMU),
///    then each device's nested HWPT of the vSMMU's GBPA (reset: bypass).
/// 4. The guest devices on the guest bus; the guest boots (its own Command register writes turn
///    Memory Space and Bus Master on through the VFIO config region).
///
/// Interrupts: guest MSI-X writes are trapped (`msixChanged`, QEMU `vfio_msix_*`), guest MSI
/// capability writes too (`msiChanged`, QEMU `vfio_msi_enable` / `vfio_update_msi`); each
/// vector gets an eventfd, a KVM MSI route (doorbell = the guest's address, or `msi-gpa` with the
/// accelerated vSMMU, since the guest's programmed address is an IOVA of its own stage 1 that
/// KVM cannot resolve; devid = the guest RID), KVM_IRQFD and VFIO_DEVICE_SET_IRQS. KVM's routing
/// table is the VM's, so it is rebuilt from every device's vectors (KVM_SET_GSI_ROUTING
/// replaces the whole table).
///
/// After boot: `hotUnplug` / `hotPlug` (QEMU `device_del` / `device_add` of a function behind
/// a root port: +Hotplug, with the per-function `unrealize` / `realize` in +Realize) and
/// `saveAndRestore` (a migration to the same host: +Migration).
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
        /// Where the (first) function appears in the guest (00:01.0 = RID 0x0008).
        public var guestRequesterID: RequesterID
        /// Where each function appears in the guest, one per device, in order. nil: the first
        /// at `guestRequesterID`, the n-th (n ≥ 1) at 00:(n+1).0. A bus other than 0 puts the
        /// function behind an emulated root port (see `rootPortRequesterID`).
        public var guestRequesterIDs: [RequesterID]?
        /// The bridge above each non-zero guest bus: a `pcie-root-port` (the default, for a bus
        /// not listed) or a `pcie-pci-bridge` (`.pcieToPCI`, QEMU 1b36:000e, whose functions'
        /// requests carry its alias: `requesterIDSeen(guestRequesterID:)`).
        public var guestBridges: [UInt8: PCIToPCIBridge.Kind] = [:]
        /// The accelerated vSMMU's `-device arm-smmuv3,accel=on` properties (QEMU 11.0
        /// defaults); what the host SMMU has comes from IOMMU_GET_HW_INFO and is only checked.
        public var vsmmu: AcceleratedSMMUv3Properties
        /// The guest's physical address map (QEMU virt unless told otherwise).
        public var layout: GuestMemoryMap
        /// The VMM side of the MSI strategy (default: none beyond QEMU's `msi-gpa` routing).
        public var msi: MSIPlan
        /// ACPI or device tree; nil: `GuestFirmware.default` (ACPI with the accelerated vSMMU).
        public var firmware: GuestFirmware?
        /// The guest's interrupt controller (`gic-version=3` by default; `.gicv2m` is
        /// `gic-version=2`: a vGICv2 and QEMU's GICv2m frame, `GuestInterruptController`).
        public var guestGIC: GuestInterruptController = .gicv3

        /// The firmware the guest boots with.
        public var resolvedFirmware: GuestFirmware {
            firmware ?? .default(acceleratedVSMMU: viommu == .acceleratedSMMUv3)
        }

        public init(ramSize: UInt64 = 0x100_0000, vcpuCount: Int = 1, viommu: VIOMMU,
                    guestKernel: KernelConfiguration = KernelConfiguration(),
                    guestRequesterID: RequesterID = RequesterID(bus: 0, device: 1, function: 0),
                    guestRequesterIDs: [RequesterID]? = nil,
                    vsmmu: AcceleratedSMMUv3Properties = AcceleratedSMMUv3Properties(), layout: GuestMemoryMap = .virt,
                    msi: MSIPlan = MSIPlan(), firmware: GuestFirmware? = nil) {
            self.ramSize = ramSize
            self.vcpuCount = vcpuCount
            self.viommu = viommu
            self.guestKernel = guestKernel
            self.guestRequesterID = guestRequesterID
            self.guestRequesterIDs = guestRequesterIDs
            self.vsmmu = vsmmu
            self.layout = layout
            self.msi = msi
            self.firmware = firmware
        }

        /// The guest RIDs for `count` devices (see `guestRequesterIDs`).
        func resolvedGuestRequesterIDs(count: Int) throws(GuestError) -> [RequesterID] {
            let ids: [RequesterID]
            if let given = guestRequesterIDs {
                guard given.count == count else {
                    throw .unsupported("\(given.count) guest RIDs for \(count) devices")
                }
                ids = given
            } else {
                guard count <= GuestPCILimits.rootBusFunctions else {
                    throw .unsupported("\(count) devices: the guest's root bus holds \(GuestPCILimits.rootBusFunctions) functions (slots 1–31, functions 0–7; 00:00.0 is the host bridge)")
                }
                ids = (0..<count).map { $0 == 0 ? guestRequesterID : VirtualMachineMonitor.rootBusRequesterID(index: $0) }
            }
            guard Set(ids).count == ids.count else { throw .unsupported("two devices at the same guest RID") }
            return ids
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
    /// The container's IOAS. Hot-unplugging the last device destroys the container (QEMU
    /// `iommufd_cdev_container_destroy`) and the next hot-plug allocates a new IOAS; while no
    /// device is plugged this is the destroyed one's id.
    public internal(set) var ioasID: UInt32
    /// The passthrough devices, in configuration order. A hot-unplugged device keeps its slot
    /// (`isPlugged` false) until it is plugged again, so indices stay stable.
    public internal(set) var devices: [PassthroughDevice]
    /// The journal of the MSI being followed: the VMM appends the emulated MSI-X Pending bits it
    /// sets for a masked vector (`JournalEntry.pendingBitSet`).
    public var journal: Journal?
    /// The vIOMMU and its vEVENTQ (accelerated vSMMU): freed with the last device
    /// (`smmuv3_accel_free_viommu`) and allocated again by the next one.
    public internal(set) var viommuID: UInt32?
    public internal(set) var veventqID: UInt32?
    public let vsmmu: VirtualSMMU?
    public let bridge: GuestHostBridge
    /// QEMU's device tree for this VM (written either way; booted with `firmware: dt`).
    public let guestDeviceTree: GuestDeviceTree
    /// QEMU's ACPI tables for this VM (written either way; booted with `firmware: acpi`).
    public let guestACPITables: GuestACPITables
    /// What the guest kernel is given: read back from the tables or the blob of the configured
    /// firmware.
    public let guestTopology: Topology
    public private(set) var guest: LinuxKernel?
    /// What the VMM did and what failed, in order (QEMU's trace points / error_report).
    public private(set) var log: [String] = []
    /// The VMM's GSI routing table (QEMU's `irq_routes`), committed by `commitRoutes`.
    var routeTable = KVMRouteTable()

    /// `msi-gpa` is ITS base + 0x1_0000 + 0x40 (QEMU "hw/arm/virt: Set msi-gpa property",
    /// smmuv3-accel series: "GITS_TRANSLATER page + offset"): `configuration.layout.msiGPA`; for a
    /// GICv2m guest the frame + 0x40 ("MSI_SETSPI_NS page + offset"), `GuestInterruptController.msiGPA`.
    ///
    /// GSIs 0–255 are the vGIC's SPI pins in QEMU (`kvm_arm_gicv3_realize` adds an irqchip
    /// route per SPI), so MSI routes start above them. (Not verified against a running QEMU.)
    public static let firstMSIGSI: UInt32 = 256

    /// Where the root port above guest bus `bus` sits: bus 0, device 0x1F − (its index among
    /// the distinct non-zero buses in ascending order), function 0 — from the top of bus 0 down,
    /// so the default 00:01.0, 00:02.0, … slots stay free (a made-up but fixed placement; QEMU
    /// takes whatever `addr=` the user gives its `pcie-root-port`).
    ///
    /// Past 31 ports the slots are reused from the top again with functions 1–7 (QEMU's
    /// `addr=0x1f.0x1` with `multifunction=on` on function 0): 248 ports at most.
    public static func rootPortRequesterID(index: Int) -> RequesterID {
        let slots = GuestPCILimits.slots
        guard index >= slots else {
            return RequesterID(bus: 0, device: UInt8(truncatingIfNeeded: 0x1F &- index) & 0x1F, function: 0)
        }
        let extra = index - slots
        return RequesterID(bus: 0, device: UInt8(truncatingIfNeeded: 0x1F - extra % slots),
                           function: UInt8(truncatingIfNeeded: 1 + (extra / slots) % 7))
    }

    /// The positional guest RID of device `index` on the root bus: 00:(index+1).0 for the first
    /// 31 (index 0 is `guestRequesterID`, 00:01.0 by default), then functions 1–7 of slots 1…31
    /// in turn (a multifunction slot, QEMU `multifunction=on` on its function 0): 248 at most.
    public static func rootBusRequesterID(index: Int) -> RequesterID {
        let slots = GuestPCILimits.slots
        guard index >= slots else { return RequesterID(bus: 0, device: UInt8(truncatingIfNeeded: index + 1), function: 0) }
        let extra = index - slots
        return RequesterID(bus: 0, device: UInt8(truncatingIfNeeded: 1 + extra % slots),
                           function: UInt8(truncatingIfNeeded: 1 + (extra / slots) % 7))
    }

    /// The single-device VMM (the first `devices` entry is `device`).
    public convenience init(host: LinuxKernel, device: Device, configuration: Configuration) throws(GuestError) {
        try self.init(host: host, devices: [device], configuration: configuration)
    }

    public init(host: LinuxKernel, devices hostDevices: [Device], configuration: Configuration) throws(GuestError) {
        let M = configuration.layout
        self.configuration = configuration
        self.host = host
        func call<T>(_ name: String, _ body: () throws(Errno) -> T) throws(GuestError) -> T {
            do { return try body() } catch { throw .hostCall(name, error) }
        }
        guard !hostDevices.isEmpty else { throw .unsupported("no passthrough device") }
        let guestRIDs = try configuration.resolvedGuestRequesterIDs(count: hostDevices.count)
        let ram = configuration.ramSize
        guard M.ramWindow(size: ram) != nil else {
            throw .unsupported("\(Hex.format(ram, minDigits: 1)) of RAM does not fit layout \(M.name)'s RAM window \(M.ram)")
        }
        // Root ports: one per distinct non-zero guest bus, which must not take a slot a
        // function uses on bus 0.
        let buses = Array(Set(guestRIDs.map(\.bus).filter { $0 != 0 })).sorted()
        guard buses.count <= GuestPCILimits.rootBusFunctions else {
            throw .unsupported("\(buses.count) guest buses: each needs a root port on bus 0, which holds \(GuestPCILimits.rootBusFunctions) (slots 1–31, functions 0–7)")
        }
        if let highest = buses.last, Int(highest) >= GuestPCILimits.buses(ecamSize: M.ecam.size) {
            throw .unsupported("guest bus \(highest) is beyond the guest ECAM window (\(Hex.format(M.ecam.size, minDigits: 1)) bytes: buses 0–\(GuestPCILimits.buses(ecamSize: M.ecam.size) - 1))")
        }
        let portRIDs = buses.indices.map { Self.rootPortRequesterID(index: $0) }
        guard Set(portRIDs.map(\.device)).isDisjoint(with: guestRIDs.filter { $0.bus == 0 }.map(\.device)) else {
            throw .unsupported("a root port for buses \(buses) would sit on a passthrough function's slot")
        }
        // QEMU refuses a function other than 0 in a slot whose function 0 is not
        // `multifunction=on` ("PCI: single function device can't be populated in function
        // %x.%x", `pci_init_multifunction`); the VMM sets it on every function 0 of a shared slot.
        let sharedSlots = Set((guestRIDs.filter { $0.bus == 0 } + portRIDs).filter { $0.function != 0 }.map(\.device))

        process = UserProcess(kernel: host, name: "qemu-system-aarch64")
        let process = self.process
        vm = host.kvm.createVM(process: process)
        let vm = self.vm
        // QEMU `ram_block_add` madvises guest RAM MADV_HUGEPAGE; with THP (the common
        // "madvise" setting) whole 2 MiB pieces are huge pages, which the IOMMU maps as blocks.
        guestRAMUserVA = try call("mmap") { () throws(Errno) in try process.mmap(length: ram, hugePages: true) }
        let ramVA = guestRAMUserVA
        try call("KVM_SET_USER_MEMORY_REGION") { () throws(Errno) in
            try vm.setUserMemoryRegion(slot: 0, guestPhysical: M.ramBase, size: ram, userVA: ramVA)
        }
        try call("KVM_CREATE_VCPU") { () throws(Errno) in _ = try vm.createVCPUs(configuration.vcpuCount) }
        try Self.createGuestGIC(vm, configuration)

        iommufd = host.openIOMMUFD()
        let iommufd = self.iommufd
        // The file belongs to this process: IOMMU_IOAS_MAP pins its memory.
        iommufd.process = process

        // Per device: bind, attach; the first creates the IOAS (and the nest parent) and maps RAM.
        var ioas: UInt32?
        var parent: UInt32?
        var bound: [(device: Device, file: VFIODeviceFile, id: UInt32, hwpt: UInt32)] = []
        for device in hostDevices {
            let vdev = try call("vfio-pci bind") { () throws(Errno) in try host.vfio.bindVFIOPCI(device) }
            let file = try call("open vfio cdev") { () throws(Errno) in try host.vfio.openDevice(vdev.cdevName, process: process) }
            let devID = try call("VFIO_DEVICE_BIND_IOMMUFD") { () throws(Errno) in try file.bindIOMMUFD(iommufd) }
            let ioasID: UInt32
            if let existing = ioas { ioasID = existing } else {
                ioasID = try call("IOMMU_IOAS_ALLOC") { () throws(Errno) in try iommufd.ioasAlloc() }
                ioas = ioasID
            }
            if let window = configuration.msi.swMSIWindow {
                try call("IOMMU_OPTION(SW_MSI_START)") { () throws(Errno) in
                    try iommufd.setOption(.swMSIStart, objectID: devID, value: window.base)
                }
                try call("IOMMU_OPTION(SW_MSI_SIZE)") { () throws(Errno) in
                    try iommufd.setOption(.swMSISize, objectID: devID, value: max(window.size >> 20, 1))
                }
            }
            let hwpt: UInt32
            switch configuration.viommu {
            case .none:
                hwpt = try call("VFIO_DEVICE_ATTACH_IOMMUFD_PT") { () throws(Errno) in try file.attachIOMMUFDPT(ioasID) }
            case .acceleratedSMMUv3:
                let nestParent: UInt32
                if let existing = parent { nestParent = existing } else {
                    nestParent = try call("IOMMU_HWPT_ALLOC(NEST_PARENT)") { () throws(Errno) in
                        try iommufd.hwptAlloc(deviceID: devID, ptID: ioasID, flags: .nestParent)
                    }
                    parent = nestParent
                }
                _ = try call("VFIO_DEVICE_ATTACH_IOMMUFD_PT(parent)") { () throws(Errno) in try file.attachIOMMUFDPT(nestParent) }
                hwpt = nestParent
            }
            if bound.isEmpty {
                _ = try call("IOMMU_IOAS_MAP") { () throws(Errno) in
                    try iommufd.ioasMap(ioasID: ioasID, flags: [.fixedIOVA, .readable, .writeable], userVA: ramVA, length: ram, iova: M.ramBase)
                }
            }
            bound.append((device, file, devID, hwpt))
        }
        guard let ioasID = ioas else { throw .unsupported("no passthrough device") }
        self.ioasID = ioasID
        if configuration.msi.mapVITSDoorbell {
            let page = configuration.guestGIC.msiGPA(M) & ~(host.pageSize &- 1)
            for entry in bound {
                try call("IOMMUFD_CMD_IOAS_MAP_MSI(\(Hex.format(page)))") { () throws(Errno) in
                    try iommufd.ioasMapMSI(ioasID: ioasID, deviceID: entry.id, iova: page)
                }
            }
        }

        switch configuration.viommu {
        case .none:
            viommuID = nil
            veventqID = nil
            vsmmu = nil
        case .acceleratedSMMUv3:
            // smmu_realize → smmu_validate_property, then per device smmuv3_accel_set_iommu_device
            // → smmuv3_accel_hw_compatible before the first one allocates the vIOMMU.
            do throws(AcceleratedSMMUv3Error) { try configuration.vsmmu.validate() } catch { throw .vsmmu(error) }
            for entry in bound { try Self.checkHostSMMU(iommufd, deviceID: entry.id, properties: configuration.vsmmu) }
            let first = bound[0]
            let viommu = try call("IOMMU_VIOMMU_ALLOC") { () throws(Errno) in try iommufd.viommuAlloc(deviceID: first.id, hwptID: first.hwpt) }
            viommuID = viommu
            veventqID = try call("IOMMU_VEVENTQ_ALLOC") { () throws(Errno) in try iommufd.veventqAlloc(viommuID: viommu).id }
            vsmmu = VirtualSMMU(guestBus: vm.guestBus,
                                identification: configuration.vsmmu.identification)
        }

        var devices: [PassthroughDevice] = []
        var gsiBase = Self.firstMSIGSI
        for (index, entry) in bound.enumerated() {
            let rid = guestRIDs[index]
            let function = try call("vfio-pci config") { () throws(Errno) in
                try PassthroughFunction(file: entry.file, guestRequesterID: rid)
            }
            let device = PassthroughDevice(hostDevice: entry.device, deviceFile: entry.file, iommufdDeviceID: entry.id,
                                           stage2HWPTID: entry.hwpt, function: function, gsiBase: gsiBase)
            if let viommu = viommuID {
                device.vdeviceID = try call("IOMMU_VDEVICE_ALLOC") { () throws(Errno) in
                    try iommufd.vdeviceAlloc(viommuID: viommu, deviceID: entry.id,
                                             virtualID: UInt64(Self.requesterIDSeen(guestRequesterID: rid, bridges: configuration.guestBridges).rawValue))
                }
            }
            let (next, overflow) = gsiBase.addingReportingOverflow(UInt32(device.vectorCapacity))
            guard !overflow else { throw .unsupported("GSIs exhausted") }
            gsiBase = next
            devices.append(device)
        }
        self.devices = devices

        bridge = GuestHostBridge()
        for device in devices {
            let rid = device.guestRequesterID
            if rid.bus == 0, rid.function == 0, sharedSlots.contains(rid.device) { device.function.multifunction = true }
            bridge.plug(device.function)
        }
        for (index, bus) in buses.enumerated() {
            // QEMU's pcie-root-port: Red Hat vendor 0x1B36, device 0x000C; its pcie-pci-bridge:
            // 0x000E, a PCIe-to-PCI bridge (Device/Port Type 7), here on the root bus (QEMU
            // docs/pcie_pci_bridge.txt allows it on pcie.0 or behind a root port).
            let kind = configuration.guestBridges[bus] ?? .rootPort
            guard kind == .rootPort || kind == .pcieToPCI else { throw .unsupported("guest bus \(bus): a \(kind) bridge is not emulated") }
            let port: PCIToPCIBridge
            do {
                port = try PCIToPCIBridge(name: kind == .rootPort ? "root-port\(index)" : "pcie-pci-bridge\(index)",
                                          requesterID: portRIDs[index], kind: kind,
                                          vendorID: 0x1B36, deviceID: kind == .rootPort ? 0x000C : 0x000E, secondaryBus: bus,
                                          multifunction: portRIDs[index].function == 0 && sharedSlots.contains(portRIDs[index].device))
            } catch { throw .unsupported("bridge: \(error)") }
            bridge.plug(port)
        }
        let accelerated = configuration.viommu == .acceleratedSMMUv3
        guestDeviceTree = GuestDeviceTree(ramSize: ram, cpuCount: configuration.vcpuCount, vSMMU: accelerated, layout: M,
                                          gic: configuration.guestGIC)
        // The strategy's guest RMR is the IORT RMR node of the accelerated SMMUv3
        // (`build_iort_rmr_nodes`); a VMM without it (no window in the plan) writes none.
        guestACPITables = GuestACPITables(ramSize: ram, cpuCount: configuration.vcpuCount, layout: M, vSMMU: accelerated,
                                          accelerated: accelerated, rootPortBuses: buses,
                                          reservedMSIWindow: configuration.msi.guestReservedMSIWindow, gic: configuration.guestGIC)
        switch configuration.resolvedFirmware {
        case .acpi: guestTopology = try guestACPITables.topology()
        case .dt: guestTopology = try guestDeviceTree.topology()
        }

        do {
            try bridge.attach(to: vm.guestBus, layout: M)
            if let vsmmu { try vm.guestBus.addDevice(vsmmu, base: PhysicalAddress(M.smmu.base), size: M.smmu.size, name: "vsmmu") }
        } catch { throw .bus("\(error)") }
        for device in devices { installChangeHandlers(device) }
        if let vsmmu {
            installVSMMUHandlers(vsmmu)
            // QEMU "hw/arm/smmuv3-accel: Install SMMUv3 GBPA based hwpt": before the guest
            // enables its SMMU each device sits on the nested HWPT of GBPA's bypass vSTE.
            for device in devices { installGuestSTE(device) }
        }
        note("VM \(vm.id) (\(M.name)): \(Hex.format(ram, minDigits: 1)) of RAM at \(Hex.format(M.ramBase, minDigits: 1)), vIOMMU \(configuration.viommu), firmware \(configuration.resolvedFirmware.rawValue)")
        for device in devices {
            note("\(device.hostDevice.name) as guest \(device.guestRequesterID), GSIs from \(device.gsiBase)")
        }
    }

    func note(_ line: String) { log.append(line) }

    /// The guest's MSI-X and MSI capability writes on `device`'s function reach the VMM (QEMU's
    /// config-space and table write handlers: `vfio_msix_*`, `vfio_msi_enable`/`vfio_update_msi`).
    func installChangeHandlers(_ device: PassthroughDevice) {
        device.function.onMSIXChange = { [weak self, weak device] _ in if let device { self?.msixChanged(device) } }
        device.function.onMSIChange = { [weak self, weak device] _ in if let device { self?.msiChanged(device) } }
    }

    /// The accelerated vSMMU hands its commands to this VMM, and a CR0.SMMUEN change makes it
    /// re-install every device's vSTE.
    func installVSMMUHandlers(_ vsmmu: VirtualSMMU) {
        vsmmu.backend = self
        vsmmu.onTranslationEnableChange = { [weak self] _ in
            guard let self else { return }
            for device in self.devices { self.installGuestSTE(device) }
        }
    }

    /// The VMM as `original` left it, over the forked world's copies of what it holds
    /// (`VirtualMachineMonitor+Clone.swift`); the values are the original's, the journal starts
    /// detached and the closures it installs are installed again by the clone.
    init(copying original: VirtualMachineMonitor, host: LinuxKernel, process: UserProcess, vm: KVMVirtualMachine,
         iommufd: IOMMUFD, devices: [PassthroughDevice], vsmmu: VirtualSMMU?, bridge: GuestHostBridge, guest: LinuxKernel?) {
        configuration = original.configuration
        self.host = host
        self.process = process
        self.vm = vm
        guestRAMUserVA = original.guestRAMUserVA
        self.iommufd = iommufd
        ioasID = original.ioasID
        self.devices = devices
        viommuID = original.viommuID
        veventqID = original.veventqID
        self.vsmmu = vsmmu
        self.bridge = bridge
        guestDeviceTree = original.guestDeviceTree
        guestACPITables = original.guestACPITables
        guestTopology = original.guestTopology
        self.guest = guest
        log = original.log
        routeTable = original.routeTable
    }


    /// The guest's interrupt controller at the layout's addresses (at boot, and again on a
    /// migration's destination): the vGICv3 + vITS, or the vGICv2 and then QEMU's v2m frame
    /// (`kvm_arm_gic_realize`, `create_v2m`). The frame is QEMU's own MMIO device
    /// (`arm-gicv2m`), whose SETSPI writes pulse the vGIC's SPI (KVM_IRQ_LINE); the model puts it
    /// on the guest bus beside the vGIC, raising the distributor's SPI directly.
    static func createGuestGIC(_ vm: KVMVirtualMachine, _ configuration: Configuration) throws(GuestError) {
        let M = configuration.layout
        switch configuration.guestGIC {
        case .gicv3:
            do {
                try vm.createVGIC(distributor: PhysicalAddress(M.distributor.base), redistributors: PhysicalAddress(M.redistributors.base),
                                  its: PhysicalAddress(M.its.base))
            } catch { throw .hostCall("KVM_CREATE_DEVICE(vgic-v3, its)", error) }
        case .gicv2m:
            let vgic: KVMVGIC
            do {
                vgic = try vm.createVGICv2(distributor: PhysicalAddress(M.distributor.base), cpuInterface: PhysicalAddress(M.cpuInterface.base),
                                           spiCount: Int(GuestInterruptController.spiCount))
            } catch { throw .hostCall("KVM_CREATE_DEVICE(vgic-v2)", error) }
            do {
                try vgic.gic.addV2mFrame(base: PhysicalAddress(M.v2mFrame.base), baseSPI: GuestInterruptController.v2mFirstSPI,
                                         spiCount: GuestInterruptController.v2mSPICount)
            } catch { throw .bus("arm-gicv2m at \(Hex.format(M.v2mFrame.base)): \(error)") }
        }
    }

    /// The RID a guest function's requests carry to the vIOMMU and the vITS: QEMU's
    /// `pci_requester_id` (the requester-ID cache `pci_req_id_cache_get` fills) and
    /// `pci_device_get_iommu_bus_devfn`, both following the PCIe-to-PCI bridge specification
    /// §2.3 as Linux's `pci_for_each_dma_alias` does: behind a `pcie-pci-bridge` (a PCIe
    /// capability of type PCI_EXP_TYPE_PCI_BRIDGE) it is (secondary bus, 00.0); behind a root
    /// port, or on the root bus, the function's own RID. KVM routes (`devid`) and the vDEVICE's
    /// virtual StreamID use it.
    public func requesterIDSeen(guestRequesterID rid: RequesterID) -> RequesterID {
        Self.requesterIDSeen(guestRequesterID: rid, bridges: configuration.guestBridges)
    }

    static func requesterIDSeen(guestRequesterID rid: RequesterID, bridges: [UInt8: PCIToPCIBridge.Kind]) -> RequesterID {
        guard rid.bus != 0, bridges[rid.bus] == .pcieToPCI else { return rid }
        return RequesterID(bus: rid.bus, devfn: 0)
    }

    /// The passthrough device the guest sees at `rid` (nil while it is hot-unplugged).
    public func device(guestRequesterID rid: RequesterID) -> PassthroughDevice? {
        devices.first { $0.isPlugged && $0.guestRequesterID == rid }
    }

    // MARK: The first device (the single-device API)

    public var deviceFile: VFIODeviceFile { devices[0].deviceFile }
    public var iommufdDeviceID: UInt32 { devices[0].iommufdDeviceID }
    /// The nest-parent HWPT (accelerated vSMMU) or the first device's auto domain (no vIOMMU).
    public var stage2HWPTID: UInt32 { devices[0].stage2HWPTID }
    public var vdeviceID: UInt32? { devices[0].vdeviceID }
    public var nestedHWPTID: UInt32? { devices[0].nestedHWPTID }
    public var function: PassthroughFunction { devices[0].function }
    public var vectors: [Int: Vector] { devices[0].vectors }

    /// What the guest's GIC driver reaches its CPU interface through: the vCPUs' ICC_* system
    /// registers on a vGICv3, the memory-mapped GICC frame on a vGICv2 (irq-gic.c).
    var guestCPUInterface: any CPUInterfaceRegisters {
        if let base = vm.vgic?.cpuInterfaceBase {
            return GICv2CPUInterfaceRegisters(bus: vm.guestBus, base: base, cpuCount: vm.vcpus.count)
        }
        return vm.cpuInterface
    }

    /// Boots the guest kernel on the VM: `LinuxKernel(role: .guest)` over the guest bus and the
    /// vCPUs' GIC system registers, with the topology read from the guest's ACPI tables or DTB.
    @discardableResult
    public func bootGuest() throws(GuestError) -> LinuxKernel {
        let kernel = LinuxKernel(role: .guest, topology: guestTopology, bus: vm.guestBus,
                                 cpuInterface: guestCPUInterface, configuration: configuration.guestKernel)
        guest = kernel
        do { try kernel.boot() } catch { throw .hostCall("guest boot", error) }
        return kernel
    }

    // MARK: KVM routing

    /// KVM_SET_GSI_ROUTING with every device's routes: the table is the VM's and each call
    /// replaces it whole (`kvm_set_irq_routing`), as QEMU commits its whole route list
    /// (`kvm_irqchip_commit_routes`). The VMM's copy (`routeTable`) takes the routes of
    /// `device`'s vectors `indices` (the ones just set up, changed or torn down; every other
    /// route is as the last commit left it), and the commit writes only those GSIs: O(changed)
    /// instead of O(all routes), with the same table and the same EINVAL as a whole-table call.
    ///
    /// A GICv2m guest has no MSI routes (`kvm_gsi_direct_mapping`: `kvm_irqchip_add_msi_route`
    /// and `kvm_irqchip_update_msi_route` return before adding one), so there is nothing to commit.
    func commitRoutes(_ device: PassthroughDevice, _ indices: some Sequence<Int>) {
        guard configuration.guestGIC == .gicv3 else { return }
        for index in indices {
            routeTable.set(device.gsiBase &+ UInt32(truncatingIfNeeded: index), device.vectors[index]?.route)
        }
        do { try vm.setGSIRouting(&routeTable) } catch { note("KVM_SET_GSI_ROUTING: \(error)") }
    }

    /// The doorbell a KVM route of `device` uses for a vector the guest programmed with
    /// `address`: the guest's own address without a vIOMMU (a GPA), `msi-gpa` with the
    /// accelerated vSMMU.
    func routeDoorbell(_ address: UInt64) -> UInt64 {
        vsmmu != nil ? configuration.guestGIC.msiGPA(configuration.layout) : address
    }

    /// The GSI a vector's irqfd uses: the device's next MSI GSI (a KVM MSI route of its own), or
    /// on a GICv2m guest the GSI its data names (`kvm_arch_msi_data_to_gsi`: the SPI's IRQCHIP
    /// route), computed once, when the vector is set up (`vfio_add_kvm_msi_virq`).
    func vectorGSI(_ device: PassthroughDevice, index: Int, data: UInt32) -> UInt32 {
        configuration.guestGIC == .gicv2m ? GuestInterruptController.directMappedGSI(data: data) : device.gsiBase &+ UInt32(index)
    }

    /// The VMM's own delivery of a vector (QEMU `msix_notify` / `msi_notify` after an unmask of
    /// a pending vector, or `vfio_msi_interrupt`): KVM_SIGNAL_MSI with the vector's route on a
    /// vGICv3; on a GICv2m guest the message's store reaches QEMU's v2m frame, which pulses the
    /// SPI (`gicv2m_write` → KVM_IRQ_LINE). Model simplification, documented: the store is taken
    /// to reach the frame (with an accelerated vSMMU QEMU's bus-master address space is the
    /// system one, so a guest IOVA that is not the frame's GPA would miss it).
    func deliverFromUserspace(_ v: Vector) {
        switch configuration.guestGIC {
        case .gicv3: _ = try? vm.signalMSI(v.route.msi)
        case .gicv2m: try? vm.pulseSPI(intid: v.route.data & 0x3FF)
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
