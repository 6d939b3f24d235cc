import Testing
import Bus
import LinuxKernel
import Machine
import PCI
import SMMUv3
@testable import VMM

/// Helpers for the guest-side events (domain changes, adversarial guests): the scenario
/// world's guest driver bound through the driver core, and a watch on host memory that says
/// which 4 KiB frames a step changed, so a test can check that a device's write landed nowhere
/// the host did not give the guest.
enum GuestAdversary {
    /// The scenario world's guest driver as a real driver: `really_probe` (the default domain
    /// claimed) with a probe that enables, sets bus master, allocates `vectors` MSI-X vectors
    /// and requests each (handler counts into `counter`). Returns the guest IRQs.
    static func bindDriver(_ h: VMMHarness, vectors: Int = 4, counter: VMMScenarioTests.Counter) throws -> [Int] {
        let g = try #require(h.guestDevice)
        var irqs: [Int] = []
        let guest = h.guest
        try guest.pci.probeDriver(g, name: "guest-ep0") { () throws(Errno) in
            try guest.pci.enableDevice(g)
            try guest.pci.setMaster(g)
            let n = try guest.pci.allocateIRQVectors(g, min: vectors, max: vectors, flags: .msix)
            for v in 0..<n {
                let irq = try guest.pci.irqVector(g, v)
                try guest.irq.requestIRQ(irq, name: "guest-ep0[\(v)]") { _, _ in counter.hits[v, default: 0] += 1; return .handled }
                irqs.append(irq)
            }
        }
        return irqs
    }

    /// `echo 1 > unbind` for the guest driver: free_irq, pci_free_irq_vectors,
    /// pci_disable_device, then the driver core's dma_cleanup.
    static func unbindDriver(_ h: VMMHarness) throws {
        let g = try #require(h.guestDevice)
        let guest = h.guest
        try guest.pci.releaseDriver(g) { () throws(Errno) in try guest.pci.standardRemove(g) }
    }

    /// The host frames (frame numbers) that back guest RAM: what the host let the guest's
    /// device reach through stage 2.
    static func guestRAMFrames(_ h: VMMHarness) -> Set<UInt64> {
        var frames = Set<UInt64>()
        let base = h.vmm.configuration.layout.ramBase
        var offset: UInt64 = 0
        while offset < h.vmm.configuration.ramSize {
            if let pa = h.vmm.vm.hostPhysical(ofGuest: base &+ offset) { frames.insert(pa.rawValue >> 12) }
            offset &+= 0x1000
        }
        return frames
    }

    /// The frames of the host SMMU's event queue (SMMU_EVENTQ_BASE: ADDR[51:5], LOG2SIZE[4:0];
    /// 32-byte records), where the hardware itself writes fault records.
    static func hostEventQueueFrames(_ h: VMMHarness) throws -> Set<UInt64> {
        let smmu = try #require(h.host.smmuDrivers.first)
        let base = try h.machine.bus.read(PhysicalAddress(smmu.node.region.base.rawValue + SMMURegisterOffset.eventqBase), size: 8)
        let start = base.keepingBits(51, 5)
        let bytes = (UInt64(1) << base.bits(4, 0)) * 32
        return Set((start >> 12)...((start + bytes - 1) >> 12))
    }

    /// A copy of the host RAM frames outside `allowed`, to tell later which of them a step
    /// changed (a frame that appears counts when it holds a non-zero byte). Frames in
    /// `allowed` (guest RAM, the SMMU event queue) are not copied, which keeps this cheap
    /// enough for property tests.
    struct Watch {
        let allowed: Set<UInt64>
        let before: [UInt64: [UInt8]]
        init(_ h: VMMHarness, allowed: Set<UInt64> = []) {
            self.allowed = allowed
            let ram = h.machine.bus.ram
            var copy: [UInt64: [UInt8]] = [:]
            for frame in ram.allocatedFrameNumbers where !allowed.contains(frame) {
                copy[frame] = ram.readBytes(frame << 12, count: SparseRAM.frameSize)
            }
            before = copy
        }

        /// Frames outside `allowed` whose bytes differ from the copy, ascending.
        func changedFrames(_ h: VMMHarness) -> [UInt64] {
            let ram = h.machine.bus.ram
            var changed: [UInt64] = []
            for frame in ram.allocatedFrameNumbers where !allowed.contains(frame) {
                let bytes = ram.readBytes(frame << 12, count: SparseRAM.frameSize)
                if let old = before[frame] {
                    if old != bytes { changed.append(frame) }
                } else if bytes.contains(where: { $0 != 0 }) {
                    changed.append(frame)
                }
            }
            return changed
        }
    }

    /// Where the host SMMU sent the transaction a journal followed, if it translated it.
    static func translatedOutput(_ journal: Journal) -> UInt64? {
        for case .smmuTranslated(_, _, let output, _, _) in journal.entries { return output }
        return nil
    }
}
