import Bus
import GIC

/// One KVM VM (the object behind a VM fd): its guest physical address space (`guestBus`),
/// memory slots, vCPUs, the in-kernel vGICv3/vITS and the GSI routing table with its irqfds.
///
/// Guest bus: a `SystemBus` over the HOST's `SparseRAM`, so guest RAM windows are host pages
/// seen at guest physical addresses (`addRAM(base:size:backedAt:)`), and the emulated GIC sits
/// on it as MMIO — what a guest store to an unbacked IPA would trap to in KVM (`io_mem_abort`
/// → `kvm_io_bus_write`) is here a direct device access on the same bus.
public final class KVMVirtualMachine {
    unowned(safe) let kernel: LinuxKernel
    /// The VMM process: memory slots are its user addresses, irqfds its descriptors.
    public let process: UserProcess
    public let id: Int
    /// The guest's physical address space.
    public let guestBus: SystemBus

    /// One `struct kvm_userspace_memory_region` as the model resolved it.
    public struct MemorySlot: Hashable, Sendable {
        public var slot: UInt32
        public var guestPhysical: UInt64
        public var size: UInt64
        public var userVA: UInt64
        /// The host-physical runs backing the slot: one guest-bus RAM window each.
        public var windows: [Window]

        public struct Window: Hashable, Sendable {
            public var guestPhysical: UInt64
            public var hostPhysical: PhysicalAddress
            public var size: UInt64
        }

        /// The host physical address behind guest address `gpa`, if the slot covers it.
        public func hostPhysical(of gpa: UInt64) -> PhysicalAddress? {
            for window in windows where gpa >= window.guestPhysical && gpa - window.guestPhysical < window.size {
                return PhysicalAddress(window.hostPhysical.rawValue &+ (gpa - window.guestPhysical))
            }
            return nil
        }
    }

    /// Slots by slot number, sorted.
    public internal(set) var memorySlots: [MemorySlot] = []
    public internal(set) var vcpus: [KVMVCPU] = []
    /// The in-kernel interrupt controller, once created.
    public internal(set) var vgic: KVMVGIC?
    /// KVM_SET_GSI_ROUTING's table, by GSI (sorted on use: never iterate it for output).
    var routes: [UInt32: KVMMSIRoute] = [:]
    /// KVM_IRQ_ROUTING_IRQCHIP routes, GSI → pin (a vGICv2's SPIs: `KVMVGICv2.swift`).
    var irqchipRoutes: [UInt32: UInt32] = [:]
    /// Guest LPIs forwarded as vLPIs (`irq->hw`), with their host irq (`irq->host_irq`);
    /// `KVMVGICv4Forwarding.swift`.
    public internal(set) var forwardedVLPIs: [UInt32: Int] = [:]
    /// `kvm->arch.vgic.its_vm` once `vgic_v4_init` ran (host GICv4.1 and
    /// `kvm-arm.vgic_v4_enable`), with the vCPUs' vPEs (`KVMVGICv4.swift`).
    public internal(set) var itsVM: ITSVM?
    /// What every irqbypass connection did with its route, oldest first.
    public internal(set) var forwardingLog: [KVMForwardingEvent] = []
    /// Counts the KVM_SET_GSI_ROUTING calls that took effect, so a `KVMRouteTable` knows
    /// whether the table is still the one it committed last.
    var routingGeneration: UInt64 = 0
    /// Assigned irqfds: eventfd object identity → GSI.
    var irqfds: [ObjectIdentifier: KVMIRQFD] = [:]
    public var counters = KVMCounters()
    /// How many injection records `injections` keeps by default.
    public static let retainedInjections = 64
    /// The injections: `injections.count` is every injection so far, iteration yields the last
    /// `injections.capacity` of them, oldest first (a `BoundedLog`, so a VM injecting one MSI
    /// after another for a whole run holds a fixed amount of memory; `injectionCapacity = nil`
    /// keeps all). `recordsInjections` turns the records off.
    public internal(set) var injections = BoundedLog<KVMInjectionRecord>(capacity: KVMVirtualMachine.retainedInjections)
    public var recordsInjections = true
    /// How many records `injections` keeps (nil: all of them).
    public var injectionCapacity: Int? {
        get { injections.capacity }
        set { injections.capacity = newValue }
    }

    init(kernel: LinuxKernel, process: UserProcess, id: Int) {
        self.kernel = kernel
        self.process = process
        self.id = id
        guestBus = SystemBus(ram: kernel.bus.ram)
    }

    /// A VM over an existing guest bus: the copy a forked world makes (`KVMVirtualMachine+Clone.swift`).
    init(kernel: LinuxKernel, process: UserProcess, id: Int, guestBus: SystemBus) {
        self.kernel = kernel
        self.process = process
        self.id = id
        self.guestBus = guestBus
    }

    // MARK: - Memory

    /// KVM_SET_USER_MEMORY_REGION (`kvm_set_memory_region` → `__kvm_set_memory_region`): guest
    /// physical [guestPhysical, +size) is the process's memory at `userVA`.
    ///
    /// Checks in `__kvm_set_memory_region`'s order: size, guest_phys_addr and userspace_addr
    /// aligned to the host's PAGE_SIZE (EINVAL), slot < KVM_USER_MEM_SLOTS (EINVAL), end of the
    /// range not wrapping (EINVAL); an existing slot number (a move/resize/flags change) is not modelled (EINVAL);
    /// a range overlapping another slot is EEXIST. A zero size deletes a slot in KVM; deletion
    /// is not modelled (EINVAL).
    ///
    /// Model difference, documented: KVM maps guest pages lazily at stage-2 fault time
    /// (`user_mem_abort` → `__gfn_to_pfn_memslot`), so an unmapped user range only fails when
    /// the guest touches it. The model resolves the backing pages now (`UserProcess.pin`, the
    /// same lookup `get_user_pages` does) and fails with EFAULT at once. It then adds one
    /// guest-bus RAM window per physically contiguous run of backing pages, so any process
    /// mapping works; the page allocator hands out ascending pages, so an `mmap` is usually
    /// one window. A window overlapping the vGIC's frames on the guest bus is EEXIST.
    public func setUserMemoryRegion(slot: UInt32, guestPhysical: UInt64, size: UInt64, userVA: UInt64) throws(Errno) {
        let page = kernel.pageSize
        guard size > 0 else { throw .EINVAL }
        guard size & (page - 1) == 0, guestPhysical & (page - 1) == 0, userVA & (page - 1) == 0 else { throw .EINVAL }
        guard slot < KVMConstants.userMemorySlots else { throw .EINVAL }
        let (_, wraps) = guestPhysical.addingReportingOverflow(size - 1)
        guard !wraps, guestPhysical &+ (size - 1) < SystemBus.physicalAddressLimit else { throw .EINVAL }
        guard !memorySlots.contains(where: { $0.slot == slot }) else { throw .EINVAL }
        for other in memorySlots where other.guestPhysical <= guestPhysical &+ (size - 1) && guestPhysical <= other.guestPhysical &+ (other.size - 1) {
            throw .EEXIST
        }
        let pages = try process.pin(vaddr: userVA, length: size)
        var windows: [MemorySlot.Window] = []
        for (index, host) in pages.enumerated() {
            let gpa = guestPhysical &+ UInt64(index) &* page
            if var last = windows.last, last.hostPhysical.rawValue &+ last.size == host.rawValue {
                last.size &+= page
                windows[windows.count - 1] = last
            } else {
                windows.append(.init(guestPhysical: gpa, hostPhysical: host, size: page))
            }
        }
        // Check every window first so a failure leaves the guest bus unchanged.
        let last = guestPhysical &+ (size - 1)
        for region in guestBus.regions where region.base.rawValue <= last && guestPhysical <= region.last {
            throw .EEXIST
        }
        for window in windows {
            do {
                try guestBus.addRAM(base: PhysicalAddress(window.guestPhysical), size: window.size,
                                    backedAt: window.hostPhysical, name: "kvm-slot\(slot)")
            } catch {
                throw .EEXIST
            }
        }
        memorySlots.append(MemorySlot(slot: slot, guestPhysical: guestPhysical, size: size, userVA: userVA, windows: windows))
        memorySlots.sort { $0.slot < $1.slot }
        kernel.log.log("kvm", "VM \(id): slot \(slot) GPA \(Hex.format(guestPhysical, minDigits: 1)) size \(Hex.format(size, minDigits: 1)) in \(windows.count) window(s)")
    }

    /// The host physical address backing guest physical `gpa` (`gfn_to_pfn`), if a slot covers it.
    public func hostPhysical(ofGuest gpa: UInt64) -> PhysicalAddress? {
        for slot in memorySlots where gpa >= slot.guestPhysical && gpa - slot.guestPhysical < slot.size {
            return slot.hostPhysical(of: gpa)
        }
        return nil
    }

    // MARK: - vCPUs

    /// KVM_CREATE_VCPU × `count`, ids continuing from the last one. EBUSY once the vGIC exists
    /// (`kvm_vm_ioctl_create_vcpu` refuses vCPUs after `vgic_initialized`, since the emulated
    /// GIC's redistributors are sized then); EINVAL beyond the vGICv3's 512-vCPU limit
    /// (`VGIC_V3_MAX_CPUS`).
    @discardableResult
    public func createVCPUs(_ count: Int) throws(Errno) -> [KVMVCPU] {
        guard vgic == nil else { throw .EBUSY }
        guard count > 0, vcpus.count + count <= 512 else { throw .EINVAL }
        let created = (vcpus.count..<(vcpus.count + count)).map { KVMVCPU(id: $0) }
        vcpus += created
        return created
    }

    /// The guest kernel's GIC system registers (ICC_IAR1/EOIR1/PMR of each vCPU), served by the
    /// vGIC's CPU interfaces: what the guest reaches through its ICH_* list registers in KVM.
    public internal(set) lazy var cpuInterface: KVMVCPUInterface = KVMVCPUInterface(vm: self)
}

/// One vCPU (KVM_CREATE_VCPU).
public final class KVMVCPU {
    public let id: Int
    /// MPIDR_EL1 affinity KVM gives the vCPU (`reset_mpidr`, arch/arm64/kvm/sys_regs.c): Aff0 =
    /// id[3:0], Aff1 = id[11:4], Aff2 = id[19:12] — 16 vCPUs per Aff1 cluster, matching the
    /// GICv3 target-list width, and the same as `GICv3.defaultAffinity(ofCPU:)`.
    public var affinity: UInt32 {
        UInt32(truncatingIfNeeded: (id & 0xF) | ((id >> 4) & 0xFF) << 8 | ((id >> 12) & 0xFF) << 16)
    }
    init(id: Int) { self.id = id }
}

/// What KVM did with MSIs it was asked to inject (irqfd signals and KVM_SIGNAL_MSI).
public struct KVMCounters: Hashable, Sendable {
    /// irqfd wakeups (each signal of an assigned eventfd).
    public var irqfdSignals = 0
    /// Injections that set a guest LPI pending.
    public var delivered = 0
    /// irqfd signals on a GSI with no route (`kvm_set_irq` finds no entry and does nothing).
    public var noRoute = 0
    /// Routes whose doorbell address decodes to no vITS (`vgic_msi_to_its` → -EINVAL).
    public var notITSDoorbell = 0
    /// Routes without KVM_MSI_VALID_DEVID (`vgic_msi_to_its` → -EINVAL).
    public var noDeviceID = 0
    /// The vITS (or vGIC) is not there (`vgic_has_its` false → -ENODEV), or an IRQCHIP route's
    /// pin names no SPI of the vGIC (`vgic_valid_spi` false → -EINVAL).
    public var noITS = 0
    /// The vITS is disabled or the target vCPU's LPIs are off (-EBUSY).
    public var busy = 0
    /// The guest's ITS has no translation for (DeviceID, EventID) — unmapped device, event or
    /// collection (a positive E_ITS_* code that KVM turns into "blocked by the guest").
    public var blockedByGuest = 0
    public init() {}

    /// Every injection that did not set an LPI pending.
    public var dropped: Int { noRoute + notITSDoorbell + noDeviceID + noITS + busy + blockedByGuest }
}
