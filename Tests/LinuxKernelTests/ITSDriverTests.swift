import Testing
import Bus
import GIC
@testable import LinuxKernel
import Machine
import PCI

@Suite("GICv3 ITS driver and redistributor bring-up")
struct ITSDriverTests {
    @Test("its_cpu_init_lpis: PROPBASER (16 LPI ID bits), PENDBASER (no PTZ, as Linux), EnableLPIs, GICR_WAKER awake, PMR 0xF0")
    func redistributorBringUp() throws {
        let h = try HostHarness.make()
        let gic = try #require(h.machine.gic)
        let rd = gic.redistributors[0]
        let irq = h.kernel.irq
        #expect(irq.lpiIDBits == 16, "min(GICD_TYPER.IDbits + 1 = 16, ITS_MAX_LPI_NRBITS = 16)")
        #expect(rd.propbaser.physicalAddress == irq.propertyTable)
        #expect(rd.propbaser.idBits == 16)
        #expect(rd.pendbaser.physicalAddress == irq.redistributors[0].pendingTable)
        #expect(!rd.pendbaser.pendingTableZero)
        #expect(rd.pendingCount == 0, "the zeroed table read at EnableLPIs holds nothing pending")
        #expect(irq.redistributors[0].pendingTable.rawValue & 0xFFFF == 0, "64 KiB aligned")
        #expect(rd.enableLPIs)
        #expect(rd.waker & 0b110 == 0, "ProcessorSleep and ChildrenAsleep clear")
        #expect(gic.cpuInterfaces[0].priorityMask == 0xF0)
        // Every LPI starts disabled at the default priority (LPI_PROP_DEFAULT_PRIO | GROUP1).
        #expect(h.machine.bus.ram.read(irq.propertyTable.rawValue, size: 1) == 0xA2)
        #expect(h.machine.bus.ram.read(irq.propertyTable.rawValue + 0xDFFF, size: 1) == 0xA2)
    }

    @Test("its_probe_one + its_alloc_tables: indirect device table (16 DeviceID bits > 2 pages flat), flat collection table, queue, enabled")
    func tables() throws {
        let h = try HostHarness.make()
        let driver = try #require(h.kernel.itsDrivers.first)
        #expect(driver.msiBase == 0x0809_0040)
        #expect(driver.iteSize == 12 && driver.deviceIDBits == 16)
        let devices = try #require(driver.tables.first { $0.type == GITSBaser.TableType.devices })
        // 8-byte DTEs × 2^16 = 512 KiB > 2 × 64 KiB, so Linux tries Indirect; QEMU's ITS (and
        // this model) keeps it. Level 1 then needs 2^(16 − log2(64K/8)) = 8 entries: one page.
        #expect(devices.indirect && devices.pageSize == 0x1_0000 && devices.pages == 1)
        let collections = try #require(driver.tables.first { $0.type == GITSBaser.TableType.collections })
        #expect(!collections.indirect && collections.pages == 1)
        // The hardware holds what was written.
        #expect(h.its.baser[devices.index] == devices.register)
        #expect(GITSBaser(rawValue: h.its.baser[devices.index]).physicalAddress == devices.base)
        #expect(h.its.enabled)
        #expect(h.its.commandQueueBase == driver.commandQueue && h.its.commandQueueBytes == 0x1_0000)
        #expect(h.its.errorLog.isEmpty && h.its.counters.commandErrors == 0)
    }

    @Test("its_cpu_init_collection: MAPC(ICID 0 → processor 0, V=1) + SYNC, then INVALL, for the one CPU of qemu-virt")
    func collections() throws {
        let h = try HostHarness.make()
        let driver = try #require(h.kernel.itsDrivers.first)
        #expect(driver.issuedCommands == [
            .mapc(collection: CollectionID(0), target: .processor(0), valid: true),
            .sync(target: .processor(0)),
            .invall(collection: CollectionID(0)),
        ])
        #expect(h.its.creadr == 3 * 32, "the ITS consumed all three")
    }

    @Test("with 8 CPUs (QEMU -smp 8) each CPU gets its collection mapped to its redistributor")
    func eightCollections() throws {
        let h = try PCIKernelHost.make(fixture: "qemu-virt/virt-smmu-smp8.dtb")
        let driver = try #require(h.kernel.itsDrivers.first)
        #expect(h.kernel.irq.redistributors.map(\.cpu) == Array(0..<8))
        #expect(driver.count(of: ITSCommand.Opcode.mapc) == 8)
        #expect(driver.collectionTargets == (0..<8).map { ITSTarget.processor($0) })
        #expect(h.machine.gic?.redistributors.allSatisfy(\.enableLPIs) == true)
    }

    @Test("its_create_device sizes the ITT for max(nvec, 2) rounded to a power of two, 256-byte aligned",
          arguments: [(1, 2, 0), (2, 2, 0), (3, 4, 1), (4, 4, 1), (5, 8, 2), (32, 32, 4)])
    func ittSizing(vectors: Int, entries: Int, mapdSize: Int) throws {
        let h = try HostHarness.make()
        let driver = try #require(h.kernel.itsDrivers.first)
        let device = try driver.prepareDevice(deviceID: 0x42, vectors: vectors)
        #expect(device.eventCount == entries)
        #expect(Int(device.mapdSize) == mapdSize, "MAPD Size = log2(nr_ites) − 1")
        #expect(device.ittAddress.rawValue % 256 == 0)
        #expect(device.ittBytes == UInt64(max(entries * 12, 256)))
        #expect(driver.issuedCommands.last == .mapd(device: DeviceID(0x42), size: UInt8(mapdSize), ittAddress: device.ittAddress, valid: true))
        #expect(h.its.errorLog.isEmpty)
    }

    @Test("its_alloc_device_irq takes the lowest free run of 2^order events aligned to 2^order (bitmap_find_free_region)")
    func alignedEventRuns() throws {
        let h = try HostHarness.make()
        let driver = try #require(h.kernel.itsDrivers.first)
        let device = try driver.prepareDevice(deviceID: 0x77, vectors: 8)
        #expect(try driver.allocateEvents(on: device, count: 1) == 0)
        #expect(try driver.allocateEvents(on: device, count: 4) == 4, "0 is taken, so the first aligned run of 4 is 4–7")
        #expect(try driver.allocateEvents(on: device, count: 2) == 2)
        #expect(try driver.allocateEvents(on: device, count: 1) == 1)
        #expect(throws: Errno.ENOSPC) { try driver.allocateEvents(on: device, count: 1) }
        #expect(device.eventsInUse == Array(repeating: true, count: 8))
    }

    @Test("a DeviceID beyond GITS_TYPER.Devbits is refused before any command is sent")
    func deviceIDOutOfRange() throws {
        let h = try HostHarness.make()
        let driver = try #require(h.kernel.itsDrivers.first)
        let before = driver.issuedCommands.count
        #expect(throws: Errno.ENXIO) { try driver.prepareDevice(deviceID: 0x1_0000, vectors: 4) }
        #expect(driver.issuedCommands.count == before)
    }
}

@Suite("LPI allocator (its_lpi_alloc)")
struct ITSLPIAllocatorTests {
    @Test("first fit from 8192, halving when nothing fits, merging on free")
    func basics() {
        var a = LPIAllocator(first: 8192, count: 64)
        #expect(a.allocate(4)! == (8192, 4))
        #expect(a.allocate(32)! == (8196, 32))
        #expect(a.allocate(64)! == (8228, 16), "64 and 32 do not fit in the 28 left; 16 does")
        a.release(base: 8192, count: 4)
        #expect(a.allocate(4)! == (8192, 4), "the freed range is reused first (lowest)")
        a.release(base: 8196, count: 32)
        a.release(base: 8192, count: 4)
        #expect(a.free.first == LPIAllocator.Range(base: 8192, span: 36), "neighbours merge")
    }

    @Test("random allocate/free sequences never hand out an LPI twice and conserve the total", arguments: [1, 2, 3])
    func property(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        var a = LPIAllocator(first: 8192, count: 4096)
        var held: [(UInt32, Int)] = []
        var violations = 0
        for _ in 0..<3000 {
            if held.isEmpty || Int.random(in: 0..<3, using: &rng) > 0 {
                let want = 1 << Int.random(in: 0..<7, using: &rng)
                if let got = a.allocate(want) {
                    if got.count > want || got.count <= 0 { violations += 1 }
                    for (b, n) in held where !(got.base >= b &+ UInt32(n) || got.base &+ UInt32(got.count) <= b) {
                        violations += 1
                    }
                    held.append((got.base, got.count))
                }
            } else {
                let i = Int.random(in: 0..<held.count, using: &rng)
                a.release(base: held[i].0, count: held[i].1)
                held.remove(at: i)
            }
            if a.freeCount + held.reduce(0, { $0 + $1.1 }) != 4096 { violations += 1 }
        }
        #expect(violations == 0)
    }
}
