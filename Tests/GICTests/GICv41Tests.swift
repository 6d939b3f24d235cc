import Bus
import Testing
@testable import GIC

/// GICv4.1 direct injection (Arm IHI 0069H): command encodings, the vPE table, vLPI delivery
/// into the virtual pending table, residency through GICR_VPENDBASER and the default doorbell.
@Suite struct GICv41Tests {
    static let vpeTable: UInt64 = 0x4300_0000
    static let vpt: UInt64 = 0x4400_0000
    static let vconf: UInt64 = 0x4500_0000
    static let doorbellLPI: UInt32 = 8400

    /// A two-CPU GICv4.1 with the ITS's vPE table at BASER2 and LPIs enabled, the way Linux's
    /// its_probe_one / its_setup_baser programs it.
    static func fixture(vpeIDBits: Int = 16, virtualLPIs: Bool = true, cpuCount: Int = 2, commonLPIAffinity: Int = 0) throws -> Fixture {
        var c = GICConfiguration(version: 4, cpuCount: cpuCount)
        c.virtualLPIs = virtualLPIs
        c.vpeIDBits = vpeIDBits
        c.commonLPIAffinity = commonLPIAffinity
        let f = try Fixture(c, enableITS: false)
        try f.its64(ITS.Offset.baser + 16, vpeTable | UInt64(1) << 63 | 3)  // 4 pages of 4 KiB
        try f.its32(ITS.Offset.ctlr, 1)
        return f
    }

    func vptAddress(_ vpe: UInt16) -> UInt64 { Self.vpt + UInt64(vpe) * 0x1_0000 }

    func vmapp(_ f: Fixture, vpe: UInt16, cpu: Int, valid: Bool = true, doorbell: UInt32 = doorbellLPI) throws {
        try f.send(words: ITSVirtualCommand.vmapp(vpe: vpe, target: f.gic.target(ofCPU: cpu), valid: valid,
                                                  vptAddress: PhysicalAddress(vptAddress(vpe)), vptSize: 15,
                                                  vconfAddress: PhysicalAddress(Self.vconf), alloc: true, ptz: true,
                                                  defaultDoorbell: doorbell).encode())
    }

    func vmapti(_ f: Fixture, device: UInt32, event: UInt32, vpe: UInt16, vintid: UInt32) throws {
        try f.send(words: ITSVirtualCommand.vmapti(device: DeviceID(device), event: EventID(event), vpe: vpe,
                                                   vintid: vintid, doorbell: ITSVirtualCommand.noDoorbell).encode())
    }

    func vpendbaser(_ f: Fixture, cpu: Int, _ value: UInt64) throws {
        try f.bus.write(PhysicalAddress(f.rdBase(cpu).rawValue + Redistributor.VirtualOffset.vpendbaser), size: 8, value: value,
                        requester: .cpu(cpu))
    }

    func readVPendbaser(_ f: Fixture, cpu: Int) throws -> UInt64 {
        try f.bus.read(PhysicalAddress(f.rdBase(cpu).rawValue + Redistributor.VirtualOffset.vpendbaser), size: 8, requester: .cpu(cpu))
    }

    func isVPending(_ f: Fixture, vpe: UInt16, _ vintid: UInt32) -> Bool {
        f.bus.ram.readByte(vptAddress(vpe) + UInt64(vintid / 8)) & UInt8(1 << (vintid % 8)) != 0
    }

    /// vLPI configuration bytes: enabled, priority 0xA0.
    func enableVLPIs(_ f: Fixture) {
        f.bus.ram.writeBytes(Self.vconf, [UInt8](repeating: 0xA3, count: 0x2000))
    }

    func msi(_ f: Fixture, device: UInt32 = 0x10, event: UInt32) throws -> ITSTranslationResult {
        f.its.translate(deviceID: DeviceID(device), eventID: EventID(event))
    }

    // MARK: - Encodings

    @Test func commandWordsFollowTheSpecifiedFieldPositions() {
        let vmapti = ITSVirtualCommand.vmapti(device: DeviceID(0x1234), event: EventID(7), vpe: 0x55, vintid: 8200, doorbell: 1023)
        let vmaptiWords: [UInt64] = [0x2A | 0x1234 << 32, 7 | 0x55 << 32, 8200 | 1023 << 32, 0]
        #expect(vmapti.encode() == vmaptiWords)
        let vmapp = ITSVirtualCommand.vmapp(vpe: 3, target: .processor(1), valid: true, vptAddress: PhysicalAddress(0x4400_0000),
                                            vptSize: 15, vconfAddress: PhysicalAddress(0x4500_0000), alloc: true, ptz: true,
                                            defaultDoorbell: 8400)
        let w0: UInt64 = 0x29 | 1 << 8 | 1 << 9 | 0x4500_0000
        let w1: UInt64 = 8400 | 3 << 32
        let w2: UInt64 = 1 << 16 | 1 << 63
        let w3: UInt64 = 15 | 0x4400_0000
        #expect(vmapp.encode() == [w0, w1, w2, w3])
        let vmovp = ITSVirtualCommand.vmovp(vpe: 9, target: .processor(2), sequence: 0x77, itsList: 0x3, doorbellValid: true,
                                            defaultDoorbell: 8401)
        let p0: UInt64 = 0x22 | 0x77 << 32
        let p1: UInt64 = 0x3 | 9 << 32
        let p2: UInt64 = 2 << 16 | 1 << 63
        #expect(vmovp.encode() == [p0, p1, p2, 8401])
        let vmovi = ITSVirtualCommand.vmovi(device: DeviceID(1), event: EventID(2), vpe: 4, doorbellValid: true, doorbell: 8500)
        let i0: UInt64 = 0x21 | 1 << 32
        let i1: UInt64 = 2 | 4 << 32
        let i2: UInt64 = 1 | 8500 << 32
        #expect(vmovi.encode() == [i0, i1, i2, 0])
        let vpe6: UInt64 = 6 << 32
        #expect(ITSVirtualCommand.vsync(vpe: 6).encode() == [0x25, vpe6, 0, 0])
        #expect(ITSVirtualCommand.vinvall(vpe: 6).encode() == [0x2D, vpe6, 0, 0])
        #expect(ITSVirtualCommand.invdb(vpe: 6).encode() == [0x2E, vpe6, 0, 0])
        let all: [ITSVirtualCommand] = [vmapti, vmapp, vmovp, vmovi, .vsync(vpe: 1), .vinvall(vpe: 2), .invdb(vpe: 3),
                                        .vmapi(device: DeviceID(5), event: EventID(6), vpe: 7, doorbell: 1023)]
        for command in all {
            #expect(ITSVirtualCommand(words: command.encode()) == command)
        }
        // A physical opcode is not a virtual command.
        #expect(ITSVirtualCommand(words: ITSCommand.sync(target: .processor(0)).encode()) == nil)
    }

    @Test func idRegistersAdvertiseGICv41() throws {
        let f = try Self.fixture(vpeIDBits: 12)
        let typer = try f.itsRead(ITS.Offset.typer)
        #expect(typer.bit(1) && typer.bit(37) && typer.bit(40))
        #expect(typer.bits(42, 41) == 0)
        // GICD_TYPER2: VIL = 1, VID = 11.
        #expect(try f.bus.read(PhysicalAddress(Fixture.distributorBase.rawValue + 0xC), size: 4, requester: .cpu(0)) == 0x8B)
        let gicrTyper = try f.bus.read(PhysicalAddress(f.rdBase(0).rawValue + Redistributor.Offset.typer), size: 8, requester: .cpu(0))
        #expect(gicrTyper.bit(1) && gicrTyper.bit(3) && gicrTyper.bit(7))
        let baser2 = try f.itsRead(ITS.Offset.baser + 16)
        #expect(baser2.bits(58, 56) == GITSBaser.TableType.vPEs && baser2.bits(52, 48) == 31)

        let v4 = try Self.fixture(virtualLPIs: false)
        #expect(try !v4.itsRead(ITS.Offset.typer).bit(40))
        #expect(try v4.bus.read(PhysicalAddress(Fixture.distributorBase.rawValue + 0xC), size: 4, requester: .cpu(0)) == 0)
    }

    // MARK: - Delivery

    @Test func vmaptiWritesAVirtualITEAndAnMSIBecomesPendingInTheVPT() throws {
        let f = try Self.fixture()
        enableVLPIs(f)
        try f.mapDevice(0x10)
        try vmapp(f, vpe: 3, cpu: 1)
        try vmapti(f, device: 0x10, event: 2, vpe: 3, vintid: 8300)
        #expect(f.its.lastCommandError == nil)
        // ITE: Valid, IntType 0 (virtual), vINTID 8300, vPEID 3; doorbell word 1023.
        let ite = f.ittAddress(0x10).rawValue + 2 * 12
        let expectedITE: UInt64 = 1 | 8300 << 2 | 3 << 48
        #expect(f.bus.ram.read(ite, size: 8) == expectedITE)
        #expect(f.bus.ram.read(ite + 8, size: 4) == 1023)
        try vpendbaser(f, cpu: 1, GICRVPendbaser.scheduling(vpe: 3))
        #expect(try msi(f, event: 2) == .virtual(vintid: 8300, vpe: 3, cpu: 1, delivery: .resident))
        #expect(isVPending(f, vpe: 3, 8300))
        // The host saw no physical LPI.
        #expect(f.gic.redistributors[1].pendingLPIs.isEmpty && f.gic.redistributors[0].pendingLPIs.isEmpty)
        // The journal keeps the delivery, and reads back the same result.
        let result = ITSTranslationResult.virtual(vintid: 8300, vpe: 3, cpu: 1, delivery: .doorbell(intid: 8400))
        #expect(ITSTranslationResult(result.journalResult) == result)
    }

    @Test func aNonResidentVPEGetsItsDefaultDoorbellOnceWhenItAskedForOne() throws {
        let f = try Self.fixture()
        enableVLPIs(f)
        try f.mapDevice(0x10)
        try vmapp(f, vpe: 3, cpu: 0)
        try vmapti(f, device: 0x10, event: 1, vpe: 3, vintid: 8300)
        try vmapti(f, device: 0x10, event: 2, vpe: 3, vintid: 8301)
        try vpendbaser(f, cpu: 0, GICRVPendbaser.scheduling(vpe: 3))
        // its_vpe_4_1_deschedule with req_db: Valid cleared, PendingLast cleared, DB set.
        try vpendbaser(f, cpu: 0, UInt64(3).settingBit(GICRVPendbaser.doorbell, to: true))
        let readBack = try readVPendbaser(f, cpu: 0)
        #expect(!readBack.bit(GICRVPendbaser.valid) && !readBack.bit(GICRVPendbaser.pendingLast) && !readBack.bit(GICRVPendbaser.dirty))
        #expect(try msi(f, event: 1) == .virtual(vintid: 8300, vpe: 3, cpu: 0, delivery: .doorbell(intid: Self.doorbellLPI)))
        #expect(f.gic.redistributors[0].isPending(INTID(Self.doorbellLPI)))
        #expect(isVPending(f, vpe: 3, 8300))
        // The doorbell is rung once; the next vLPI is only pending (not lost).
        #expect(try msi(f, event: 2) == .virtual(vintid: 8301, vpe: 3, cpu: 0, delivery: .pendingNotResident))
        #expect(isVPending(f, vpe: 3, 8301))
        #expect(f.gic.redistributors[0].virtualState.counters.doorbellsRung == 1)
    }

    @Test func descheduleWithoutDoorbellLeavesTheVLPIPendingOnly() throws {
        let f = try Self.fixture()
        enableVLPIs(f)
        try f.mapDevice(0x10)
        try vmapp(f, vpe: 3, cpu: 0)
        try vmapti(f, device: 0x10, event: 1, vpe: 3, vintid: 8300)
        try vpendbaser(f, cpu: 0, GICRVPendbaser.scheduling(vpe: 3))
        // its_vpe_4_1_deschedule without req_db: PendingLast set, no DB.
        try vpendbaser(f, cpu: 0, UInt64(3).settingBit(GICRVPendbaser.pendingLast, to: true))
        #expect(try msi(f, event: 1) == .virtual(vintid: 8300, vpe: 3, cpu: 0, delivery: .pendingNotResident))
        #expect(!f.gic.redistributors[0].isPending(INTID(Self.doorbellLPI)))
        #expect(isVPending(f, vpe: 3, 8300))
    }

    @Test func pendingLastReportsAnEnabledPendingVLPIAndThenNoDoorbellIsRequested() throws {
        let f = try Self.fixture()
        try f.mapDevice(0x10)
        try vmapp(f, vpe: 3, cpu: 0)
        try vmapti(f, device: 0x10, event: 1, vpe: 3, vintid: 8300)
        try vmapti(f, device: 0x10, event: 2, vpe: 3, vintid: 8301)
        try vpendbaser(f, cpu: 0, GICRVPendbaser.scheduling(vpe: 3))
        _ = try msi(f, event: 1)
        // Pending but disabled in VConf: PendingLast stays 0.
        try vpendbaser(f, cpu: 0, UInt64(3).settingBit(GICRVPendbaser.doorbell, to: true))
        #expect(try !readVPendbaser(f, cpu: 0).bit(GICRVPendbaser.pendingLast))
        try vpendbaser(f, cpu: 0, GICRVPendbaser.scheduling(vpe: 3))
        enableVLPIs(f)
        try vpendbaser(f, cpu: 0, UInt64(3).settingBit(GICRVPendbaser.doorbell, to: true))
        #expect(try readVPendbaser(f, cpu: 0).bit(GICRVPendbaser.pendingLast))
        // PendingLast was 1, so the doorbell request was not armed.
        #expect(try msi(f, event: 2) == .virtual(vintid: 8301, vpe: 3, cpu: 0, delivery: .pendingNotResident))
    }

    @Test func vmovpRetargetsTheVPEAndItsDoorbellRequest() throws {
        let f = try Self.fixture()
        enableVLPIs(f)
        try f.mapDevice(0x10)
        try vmapp(f, vpe: 3, cpu: 0)
        try vmapti(f, device: 0x10, event: 1, vpe: 3, vintid: 8300)
        try vpendbaser(f, cpu: 0, GICRVPendbaser.scheduling(vpe: 3))
        try vpendbaser(f, cpu: 0, UInt64(3).settingBit(GICRVPendbaser.doorbell, to: true))
        try f.send(words: ITSVirtualCommand.vmovp(vpe: 3, target: f.gic.target(ofCPU: 1), sequence: 0, itsList: 0,
                                                  doorbellValid: true, defaultDoorbell: 8401).encode())
        #expect(f.its.lastCommandError == nil)
        #expect(f.gic.redistributors[0].virtualState.mapped[3] == nil)
        #expect(try msi(f, event: 1) == .virtual(vintid: 8300, vpe: 3, cpu: 1, delivery: .doorbell(intid: 8401)))
        #expect(f.gic.redistributors[1].isPending(INTID(8401)))
        // Scheduled on CPU1 now: resident there.
        try vpendbaser(f, cpu: 1, GICRVPendbaser.scheduling(vpe: 3))
        #expect(try msi(f, event: 1) == .virtual(vintid: 8300, vpe: 3, cpu: 1, delivery: .resident))
    }

    @Test func aVPEScheduledOnARedistributorOfAnotherVPETableGroupIsNotResidentForItsVLPIs() throws {
        // The failure VMOVP exists for: vcpu_load on a CPU whose redistributor does not share
        // the vPE table (CommonLPIAff = 3: CPU 16 is in cluster 1, CPU 0 in cluster 0).
        let f = try Self.fixture(cpuCount: 17, commonLPIAffinity: 3)
        enableVLPIs(f)
        try f.mapDevice(0x10)
        try vmapp(f, vpe: 3, cpu: 0)
        try vmapti(f, device: 0x10, event: 1, vpe: 3, vintid: 8300)
        try vpendbaser(f, cpu: 16, GICRVPendbaser.scheduling(vpe: 3))
        #expect(f.gic.redistributors[16].typer.bits(25, 24) == 3)
        #expect(try msi(f, event: 1) == .virtual(vintid: 8300, vpe: 3, cpu: 0, delivery: .pendingNotResident))
    }

    @Test func aVPEScheduledOnARedistributorSharingItsVPETableIsResidentThereWithoutVMOVP() throws {
        // CommonLPIAff = 0: every redistributor shares the vPE table, so Linux skips VMOVP
        // (its_vpe_set_affinity) and the vLPI reaches the vPE where it is resident; a doorbell
        // request made there is honoured there too.
        let f = try Self.fixture()
        enableVLPIs(f)
        try f.mapDevice(0x10)
        try vmapp(f, vpe: 3, cpu: 0)
        try vmapti(f, device: 0x10, event: 1, vpe: 3, vintid: 8300)
        try vpendbaser(f, cpu: 1, GICRVPendbaser.scheduling(vpe: 3))
        #expect(try msi(f, event: 1) == .virtual(vintid: 8300, vpe: 3, cpu: 1, delivery: .resident))
        try vpendbaser(f, cpu: 1, UInt64(3).settingBit(GICRVPendbaser.doorbell, to: true))
        #expect(try msi(f, event: 2 - 1) == .virtual(vintid: 8300, vpe: 3, cpu: 1, delivery: .doorbell(intid: Self.doorbellLPI)))
        #expect(f.gic.redistributors[1].isPending(INTID(Self.doorbellLPI)))
    }

    @Test func vmoviMovesThePendingStateToTheNewVPE() throws {
        let f = try Self.fixture()
        enableVLPIs(f)
        try f.mapDevice(0x10)
        try vmapp(f, vpe: 3, cpu: 0)
        try vmapp(f, vpe: 4, cpu: 1)
        try vmapti(f, device: 0x10, event: 1, vpe: 3, vintid: 8300)
        _ = try msi(f, event: 1)
        #expect(isVPending(f, vpe: 3, 8300))
        try f.send(words: ITSVirtualCommand.vmovi(device: DeviceID(0x10), event: EventID(1), vpe: 4, doorbellValid: false, doorbell: 0).encode())
        #expect(f.its.lastCommandError == nil)
        #expect(!isVPending(f, vpe: 3, 8300) && isVPending(f, vpe: 4, 8300))
        try vpendbaser(f, cpu: 1, GICRVPendbaser.scheduling(vpe: 4))
        #expect(try msi(f, event: 1) == .virtual(vintid: 8300, vpe: 4, cpu: 1, delivery: .resident))
    }

    @Test func intClearAndDiscardActOnTheVLPI() throws {
        let f = try Self.fixture()
        try f.mapDevice(0x10)
        try vmapp(f, vpe: 3, cpu: 0)
        try vmapti(f, device: 0x10, event: 1, vpe: 3, vintid: 8300)
        try f.send(.int(device: DeviceID(0x10), event: EventID(1)))
        #expect(isVPending(f, vpe: 3, 8300))
        try f.send(.clear(device: DeviceID(0x10), event: EventID(1)))
        #expect(!isVPending(f, vpe: 3, 8300))
        try f.send(.int(device: DeviceID(0x10), event: EventID(1)))
        // its_vlpi_unmap: DISCARD clears the pending vLPI and unmaps the event.
        try f.send(.discard(device: DeviceID(0x10), event: EventID(1)))
        #expect(f.its.lastCommandError == nil)
        #expect(!isVPending(f, vpe: 3, 8300))
        #expect(try msi(f, event: 1) == .dropped(.unmappedEvent))
        #expect(f.gic.redistributors.allSatisfy { $0.pendingLPIs.isEmpty })
    }

    @Test func invdbReReadsTheDefaultDoorbellConfiguration() throws {
        let f = try Self.fixture()
        try vmapp(f, vpe: 3, cpu: 1)
        #expect(f.gic.redistributors[1].cachedConfiguration(INTID(Self.doorbellLPI)) == 0xA2)
        f.configure(Self.doorbellLPI, priority: 0x80, enabled: true)
        try f.send(words: ITSVirtualCommand.invdb(vpe: 3).encode())
        #expect(f.gic.redistributors[1].cachedConfiguration(INTID(Self.doorbellLPI)) == 0x83)
    }

    @Test func gicrInvlpirWithVClearInvalidatesAPhysicalLPI() throws {
        let f = try Self.fixture()
        f.configure(8200, priority: 0x40, enabled: true)
        try f.bus.write(PhysicalAddress(f.rdBase(0).rawValue + Redistributor.VirtualOffset.invlpir), size: 8, value: 8200, requester: .cpu(0))
        #expect(f.gic.redistributors[0].cachedConfiguration(INTID(8200)) == 0x43)
        #expect(try f.bus.read(PhysicalAddress(f.rdBase(0).rawValue + Redistributor.VirtualOffset.syncr), size: 4, requester: .cpu(0)) == 0)
    }

    // MARK: - Errors

    @Test func virtualCommandErrorsCarryTheCommandsOpcode() throws {
        let f = try Self.fixture(vpeIDBits: 4)
        try vmapti(f, device: 0x10, event: 1, vpe: 3, vintid: 8300)
        #expect(f.its.lastCommandError?.rawValue == 0x01_2A04)
        try f.mapDevice(0x10)
        try vmapti(f, device: 0x10, event: 1, vpe: 3, vintid: 100)
        #expect(f.its.lastCommandError?.rawValue == 0x01_2A06)
        try vmapti(f, device: 0x10, event: 64, vpe: 3, vintid: 8300)
        #expect(f.its.lastCommandError?.rawValue == 0x01_2A05)
        try vmapti(f, device: 0x10, event: 1, vpe: 16, vintid: 8300)
        #expect(f.its.lastCommandError?.rawValue == 0x01_2A10)
        try vmapp(f, vpe: 3, cpu: 5)
        #expect(f.its.lastCommandError?.rawValue == 0x01_2902)
        try vmapp(f, vpe: 3, cpu: 0, doorbell: 42)
        #expect(f.its.lastCommandError?.rawValue == 0x01_2906)
        try f.send(words: ITSVirtualCommand.vmovp(vpe: 3, target: .processor(1), sequence: 0, itsList: 0, doorbellValid: false, defaultDoorbell: 0).encode())
        #expect(f.its.lastCommandError?.rawValue == 0x01_2211)
        try f.send(words: ITSVirtualCommand.vsync(vpe: 2).encode())
        #expect(f.its.lastCommandError?.rawValue == 0x01_2511)
        try f.send(words: ITSVirtualCommand.vmovi(device: DeviceID(0x10), event: EventID(1), vpe: 3, doorbellValid: false, doorbell: 0).encode())
        #expect(f.its.lastCommandError?.rawValue == 0x01_2107)
        // An MSI for a vLPI whose vPE was never mapped is dropped with that reason.
        try vmapti(f, device: 0x10, event: 1, vpe: 3, vintid: 8300)
        #expect(try msi(f, event: 1) == .dropped(.unmappedVPE))
    }

    @Test func aGICv4WithoutVirtualLPIsTreatsVirtualCommandsAsUnsupported() throws {
        let f = try Self.fixture(virtualLPIs: false)
        try vmapp(f, vpe: 3, cpu: 0)
        #expect(f.its.counters.unsupportedCommands == 1)
    }
}
