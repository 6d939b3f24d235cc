import Testing
import Bus
@testable import LinuxKernel

/// VFIO logic that needs no hardware: `vfio_set_irqs_validate_and_prepare`, type1's IOVA-list
/// arithmetic and SW_MSI detection, and the user process's eventfd table.
@Suite("VFIO units")
struct VFIOUnitTests {
    typealias S = VFIOIRQSet

    @Test("SET_IRQS validation: each malformed header gives EINVAL, as vfio_set_irqs_validate_and_prepare checks", arguments: [
        // argsz below offsetofend(struct vfio_irq_set, count) = 20.
        S(argsz: 16, flags: S.actionTrigger | S.dataNone, index: S.msixIndex, start: 0, count: 0),
        // index ≥ VFIO_PCI_NUM_IRQS.
        S(flags: S.actionTrigger | S.dataNone, index: 5, start: 0, count: 0),
        // count ≥ U32_MAX − start (start + count would wrap).
        S(flags: S.actionTrigger | S.dataNone, index: S.msixIndex, start: 1, count: UInt32.max - 1),
        // a flag outside DATA_TYPE_MASK | ACTION_TYPE_MASK.
        S(flags: S.actionTrigger | S.dataNone | (1 << 6), index: S.msixIndex, start: 0, count: 0),
        // start ≥ the index's vector count (4).
        S(flags: S.actionTrigger | S.dataNone, index: S.msixIndex, start: 4, count: 0),
        // start + count > 4.
        S(flags: S.actionTrigger | S.dataNone, index: S.msixIndex, start: 2, count: 3),
        // two data types at once.
        S(flags: S.actionTrigger | S.dataNone | S.dataEventFD, index: S.msixIndex, start: 0, count: 1, data: [0, 0, 0, 0]),
        // no data type.
        S(flags: S.actionTrigger, index: S.msixIndex, start: 0, count: 0),
        // argsz − 20 < count × sizeof(s32).
        S(argsz: 23, flags: S.actionTrigger | S.dataEventFD, index: S.msixIndex, start: 0, count: 1, data: [3, 0, 0, 0]),
    ])
    func setIRQsValidation(header: VFIOIRQSet) {
        #expect(throws: Errno.EINVAL) { try header.validate(numIRQs: 4) }
    }

    @Test("SET_IRQS validation accepts well-formed headers and returns count × data size")
    func setIRQsValid() throws {
        #expect(try S.trigger(start: 0, eventfds: [3, 4]).validate(numIRQs: 4) == 8)
        #expect(try S.disable().validate(numIRQs: 4) == 0)
        #expect(try S(flags: S.actionTrigger | S.dataBool, index: S.msixIndex, start: 1, count: 3, data: [1, 0, 1]).validate(numIRQs: 4) == 3)
        // A device without MSI-X (0 vectors) refuses even the disable: start 0 ≥ 0.
        #expect(throws: Errno.EINVAL) { try S.disable().validate(numIRQs: 0) }
    }

    @Test("eventfds are read as little-endian __s32, including -1")
    func eventfdDecoding() {
        #expect(S.trigger(start: 0, eventfds: [7, -1, 0x0102_0304]).eventfds(count: 3) == [7, -1, 0x0102_0304])
    }

    @Test("vfio_iommu_has_sw_msi: the SW_MSI base, unless any hardware MSI region exists")
    func hasSoftwareMSI() {
        let sw = ReservedRegion(start: 0x0800_0000, length: 0x10_0000, protection: [.write], type: .swMSI)
        let hw = ReservedRegion(start: 0x0809_0000, length: 0x1_0000, protection: [.write], type: .msi)
        #expect(VFIOType1.hasSoftwareMSI([sw]) == 0x0800_0000)
        #expect(VFIOType1.hasSoftwareMSI([sw, hw]) == nil, "real MSI regions take precedence")
        #expect(VFIOType1.hasSoftwareMSI([]) == nil)
    }

    @Test("vfio_iommu_resv_exclude cuts reserved regions out of the aperture, skips DIRECT_RELAXABLE, and refuses to leave nothing")
    func reservedExclude() throws {
        var list: [ClosedRange<UInt64>] = []
        VFIOType1.apertureResize(&list, start: 0, end: 0xFFFF_FFFF_FFFF)
        let sw = ReservedRegion(start: 0x0800_0000, length: 0x10_0000, protection: [.write], type: .swMSI)
        let relaxable = ReservedRegion(start: 0x1000, length: 0x1000, protection: [.read], type: .directRelaxable)
        try VFIOType1.reservedExclude(&list, regions: [sw, relaxable])
        #expect(list == [0...0x07FF_FFFF, 0x0810_0000...0xFFFF_FFFF_FFFF])
        var tiny: [ClosedRange<UInt64>] = [0x0800_0000...0x080F_FFFF]
        #expect(throws: Errno.EINVAL) { try VFIOType1.reservedExclude(&tiny, regions: [sw]) }
    }

    @Test("eventfd_ctx_fdget: EBADF for a closed descriptor, EINVAL for a descriptor that is not an eventfd; fds start at 3")
    func eventfdLookup() throws {
        let harness = try HostHarness.make(boot: false)
        let process = UserProcess(kernel: harness.kernel)
        let (fd, object) = process.eventfd()
        #expect(fd == 3, "0–2 are stdio; alloc_fd takes the lowest free")
        #expect(try process.eventfdContext(fd) === object)
        let other = process.openOtherFile("/dev/iommu")
        #expect(throws: Errno.EINVAL) { try process.eventfdContext(other) }
        #expect(throws: Errno.EBADF) { try process.eventfdContext(99) }
        #expect(throws: Errno.EBADF) { try process.eventfdContext(-5) }
        try process.close(fd)
        #expect(throws: Errno.EBADF) { try process.eventfdContext(fd) }
    }

    @Test("user memory: mmap gives page-backed addresses; pinning outside a VMA is EFAULT")
    func userMemory() throws {
        let harness = try HostHarness.make(boot: false)
        let process = UserProcess(kernel: harness.kernel)
        let va = try process.mmap(length: 0x3000)
        let pages = try process.pin(vaddr: va, length: 0x3000)
        #expect(pages.count == 3)
        try process.write(vaddr: va + 0x1004, bytes: [0xAB])
        #expect(harness.kernel.bus.ram.read(pages[1].rawValue + 4, size: 1) == 0xAB, "the user page is the kernel page")
        #expect(throws: Errno.EFAULT) { try process.pin(vaddr: va + 0x2000, length: 0x2000) }
        #expect(throws: Errno.EINVAL) { try process.mmap(length: 0) }
    }
}
