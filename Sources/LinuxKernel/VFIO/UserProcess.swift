import Bus

/// The user process that drives VFIO and iommufd (the VMM, QEMU-like): its anonymous memory and
/// its file-descriptor table for eventfds.
///
/// Memory: `mmap(MAP_ANONYMOUS)` hands out page-aligned user virtual addresses, each page
/// backed by a kernel page from `kernel.pages` when the mapping is made (the model populates
/// eagerly, as `MAP_POPULATE` would, so that pinning is a lookup). `VFIO_IOMMU_MAP_DMA`
/// (`vfio_pin_pages_remote` → `pin_user_pages_remote`) and `IOMMU_IOAS_MAP`
/// (`iopt_alloc_user_pages` → `pin_user_pages_fast`) pin through `pin(vaddr:length:)`; an address
/// with no VMA fails the way `get_user_pages` does, with EFAULT.
///
/// File descriptors: `eventfd(2)` returns the lowest free descriptor ≥ 3 (0–2 are stdio, as in
/// any process: `alloc_fd` takes the lowest free slot). `eventfd_ctx_fdget(fd)` resolves it:
/// EBADF for a descriptor that is not open (`fdget` fails), EINVAL for an open descriptor that is
/// not an eventfd (`eventfd_ctx_fileget` checks `f_op`).
public final class UserProcess {
    /// One VMA: [start, start+length) of anonymous memory, one kernel page per user page.
    public struct Mapping: Hashable, Sendable {
        public var start: UInt64
        public var length: UInt64
        /// The physical page behind each user page (PAGE_SIZE, aligned), in order.
        public var pages: [PhysicalAddress]
    }

    public let name: String
    unowned(safe) let kernel: LinuxKernel
    /// VMAs sorted by start.
    public private(set) var mappings: [Mapping] = []
    /// Where the next `mmap` goes: user addresses start at 0x40_0000_0000 (a fixed, deterministic
    /// stand-in for the kernel's top-down `mmap_base`; any page-aligned address works for VFIO).
    var nextVirtualAddress: UInt64 = 0x40_0000_0000
    /// Open descriptors. A non-eventfd descriptor (e.g. the /dev/iommu or VFIO files, which the
    /// model passes as objects) is recorded as `.other` so that `eventfd_ctx_fdget` can tell
    /// EBADF from EINVAL.
    enum OpenFile {
        case eventfd(EventFD)
        case other(String)
    }
    var files: [Int32: OpenFile] = [:]
    /// Which descriptors are free: the lowest one in O(log n) (`DescriptorTable`).
    var descriptors = DescriptorTable(first: 3)

    public init(kernel: LinuxKernel, name: String = "vmm") {
        self.kernel = kernel
        self.name = name
        self.pageSize = kernel.pageSize
        self.hugePageSize = kernel.hugePageSize
    }

    /// `PAGE_SIZE` of the kernel the process runs on: the unit of `mmap`, pinning and VMAs.
    public let pageSize: UInt64
    /// `HPAGE_SIZE` of that kernel.
    let hugePageSize: UInt64

    /// `mmap(NULL, length, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0)`:
    /// returns the user virtual address. EINVAL for a zero length (`do_mmap`), ENOMEM when the
    /// kernel runs out of pages or the length overflows.
    ///
    /// `hugePages`: the mapping is advised MADV_HUGEPAGE (QEMU does this for guest RAM,
    /// `qemu_ram_mmap` → `qemu_madvise(QEMU_MADV_HUGEPAGE)`, with RAM blocks aligned to 2 MiB
    /// on aarch64), and transparent huge pages back every whole HPAGE_SIZE of it: each is one
    /// physically contiguous, HPAGE_SIZE-aligned allocation, which lets an IOMMU map it with a
    /// block descriptor. The tail below HPAGE_SIZE gets small pages.
    public func mmap(length: UInt64, hugePages: Bool = false) throws(Errno) -> UInt64 {
        guard length > 0 else { throw .EINVAL }
        let (rounded, overflow) = length.addingReportingOverflow(pageSize - 1)
        guard !overflow else { throw .ENOMEM }
        let size = rounded & ~(pageSize - 1)
        let pageCount = size / pageSize
        guard pageCount <= 1 << 20 else { throw .ENOMEM }
        var pages: [PhysicalAddress] = []
        pages.reserveCapacity(Int(pageCount))
        var remaining = size
        while remaining > 0 {
            if hugePages, remaining >= hugePageSize, hugePageSize > pageSize {
                let base = try kernel.pages.allocate(bytes: hugePageSize, alignment: hugePageSize)
                for offset in stride(from: UInt64(0), to: hugePageSize, by: Int(pageSize)) {
                    pages.append(PhysicalAddress(base.rawValue &+ offset))
                }
                remaining -= hugePageSize
            } else {
                pages.append(try kernel.pages.allocate(bytes: pageSize, alignment: pageSize))
                remaining -= pageSize
            }
        }
        let start = nextVirtualAddress
        let (end, endOverflow) = start.addingReportingOverflow(size)
        guard !endOverflow else { throw .ENOMEM }
        // Leave a one-page hole between VMAs so that two mappings are never contiguous by
        // accident (tests of "vaddr not mapped" rely on it).
        nextVirtualAddress = end &+ pageSize
        mappings.append(Mapping(start: start, length: size, pages: pages))
        return start
    }

    /// The physical page behind the user page containing `vaddr`, or nil (no VMA).
    public func physicalPage(of vaddr: UInt64) -> PhysicalAddress? {
        for mapping in mappings where vaddr >= mapping.start && vaddr - mapping.start < mapping.length {
            let index = Int((vaddr - mapping.start) / pageSize)
            return index < mapping.pages.count ? mapping.pages[index] : nil
        }
        return nil
    }

    /// `pin_user_pages` over [vaddr, vaddr+length): the physical page of every user page, or
    /// EFAULT as soon as one page has no VMA. `vaddr` and `length` must be page aligned (callers
    /// check alignment first and answer EINVAL themselves).
    public func pin(vaddr: UInt64, length: UInt64) throws(Errno) -> [PhysicalAddress] {
        guard length > 0 else { return [] }
        guard vaddr & (pageSize - 1) == 0, length & (pageSize - 1) == 0 else { throw .EINVAL }
        let (_, overflow) = vaddr.addingReportingOverflow(length - 1)
        guard !overflow else { throw .EFAULT }
        var result: [PhysicalAddress] = []
        var offset: UInt64 = 0
        while offset < length {
            guard let page = physicalPage(of: vaddr &+ offset) else { throw .EFAULT }
            result.append(page)
            offset &+= pageSize
        }
        return result
    }

    /// Writes bytes into the process's memory (what the VMM does through its own pointers).
    public func write(vaddr: UInt64, bytes: [UInt8]) throws(Errno) {
        for (i, byte) in bytes.enumerated() {
            let (address, overflow) = vaddr.addingReportingOverflow(UInt64(i))
            guard !overflow, let page = physicalPage(of: address) else { throw .EFAULT }
            kernel.bus.ram.write(page.rawValue | (address & (pageSize - 1)), size: 1, value: UInt64(byte))
        }
    }

    /// Reads bytes from the process's memory.
    public func read(vaddr: UInt64, count: Int) throws(Errno) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(max(count, 0))
        for i in 0..<max(count, 0) {
            let (address, overflow) = vaddr.addingReportingOverflow(UInt64(i))
            guard !overflow, let page = physicalPage(of: address) else { throw .EFAULT }
            result.append(UInt8(truncatingIfNeeded: kernel.bus.ram.read(page.rawValue | (address & (pageSize - 1)), size: 1)))
        }
        return result
    }

    // MARK: file descriptors

    /// `alloc_fd`: the lowest free descriptor from 3.
    func allocateDescriptor() -> Int32 {
        descriptors.allocate()
    }

    /// `eventfd(0, EFD_CLOEXEC)`: a new eventfd and its descriptor.
    public func eventfd(name: String? = nil) -> (fd: Int32, eventfd: EventFD) {
        let fd = allocateDescriptor()
        let object = EventFD(name: name ?? "eventfd[\(fd)]")
        files[fd] = .eventfd(object)
        return (fd, object)
    }

    /// Opens a descriptor that is not an eventfd (a device or /dev/iommu file, for fd-type tests).
    public func openOtherFile(_ name: String) -> Int32 {
        let fd = allocateDescriptor()
        files[fd] = .other(name)
        return fd
    }

    /// `close(fd)`: EBADF when not open.
    public func close(_ fd: Int32) throws(Errno) {
        guard files.removeValue(forKey: fd) != nil else { throw .EBADF }
        descriptors.release(fd)
    }

    /// `eventfd_ctx_fdget(fd)` (fs/eventfd.c).
    public func eventfdContext(_ fd: Int32) throws(Errno) -> EventFD {
        guard fd >= 0, let file = files[fd] else { throw .EBADF }
        guard case .eventfd(let object) = file else { throw .EINVAL }
        return object
    }
}

/// A forked process on the kernel's copy: the same mappings (the pages are in the fork's copy
/// of RAM), next address, descriptor table and open files (an eventfd is the copy the rest of
/// the world shares: VFIO's trigger, KVM's irqfd).
extension UserProcess: WorldCloneable {
    public func clone(into map: inout CloneMap) -> UserProcess {
        let kernelCopy = map.clone(kernel)
        if let done = map.copy(of: self) { return done }
        let copy = UserProcess(kernel: kernelCopy, name: name)
        map.record(self, as: copy)
        precondition(copy.pageSize == pageSize && copy.hugePageSize == hugePageSize,
                     "UserProcess: the kernel's copy has another page size")
        copy.mappings = mappings
        copy.nextVirtualAddress = nextVirtualAddress
        copy.files = files   // eventfds replaced below, keeping the original's layout
        for fd in files.keys.sorted() {
            guard let file = files[fd] else { continue }
            switch file {
            case .eventfd(let eventfd): copy.files[fd] = .eventfd(map.clone(eventfd))
            case .other(let name): copy.files[fd] = .other(name)
            }
        }
        copy.descriptors = descriptors
        return copy
    }
}
