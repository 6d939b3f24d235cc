import Testing
import Bus
@testable import SMMUv3

@Suite("SMMUv3 command queue consumption (§3.5, §4, §7.1)")
struct CommandQueueTests {
    typealias R = SMMURegisterOffset
    static let queue: UInt64 = 0x4100_0000
    static let nop = Command.sync(CommandSync(completionSignal: .none))

    @Test("many commands through a 4-entry queue: CONS follows PROD and the wrap bit flips each lap")
    func wrapAround() throws {
        let h = DeviceHarness()
        try h.enableCommandQueue(base: Self.queue, log2Size: 2)
        var prod: UInt32 = 0
        var wrapsSeen: [Bool] = []
        for round in 0..<11 {
            // 1, 2 or 3 commands at a time, never more than the 4 free slots.
            let batch = Array(repeating: Command.tlbiNSNHAll, count: round % 3 + 1)
            prod = try h.place(batch, queueBase: Self.queue, log2Size: 2, producer: prod)
            try h.write32(R.cmdqProd, prod)
            let cons = try h.read32(R.cmdqCons)
            #expect(cons == prod)                   // all consumed synchronously
            wrapsSeen.append(cons & 0b100 != 0)     // wrap bit at bit LOG2SIZE = 2
        }
        // 1+2+3+1+2+3+1+2+3+1+2 = 21 commands = 5 laps of 4 + 1: the pointer is index 1, wrap 1.
        #expect(try h.read32(R.cmdqCons) == 0b101)
        #expect(h.smmu.translator.counters.commandsConsumed == 21)
        #expect(wrapsSeen.contains(true) && wrapsSeen.contains(false))
        #expect(try h.read32(R.gerror) == 0)
    }

    @Test("a full queue (PROD = CONS with the wrap bit toggled) is consumed entirely")
    func fullQueue() throws {
        let h = DeviceHarness()
        try h.enableCommandQueue(base: Self.queue, log2Size: 3)
        let prod = try h.place(Array(repeating: Self.nop, count: 8), queueBase: Self.queue, log2Size: 3, producer: 0)
        #expect(prod == 0b1000)                     // index 0, wrap 1: full relative to CONS 0
        #expect(QueueGeometry(log2Size: 3).isFull(producer: prod, consumer: 0))
        try h.write32(R.cmdqProd, prod)
        #expect(try h.read32(R.cmdqCons) == 0b1000)
        #expect(h.smmu.translator.counters.commandsConsumed == 8)
    }

    @Test("LOG2SIZE above IDR1.CMDQS is capped: the wrap bit sits at CMDQS")
    func log2SizeCapped() throws {
        var configuration = SMMUConfiguration()
        configuration.commandQueueMaxLog2 = 1
        let h = DeviceHarness(configuration: configuration)
        try h.enableCommandQueue(base: Self.queue, log2Size: 5)  // reads back 5, used as 1
        #expect(try h.read64(R.cmdqBase) & 0x1F == 5)
        let prod = try h.place([Self.nop, Self.nop, Self.nop], queueBase: Self.queue, log2Size: 1, producer: 0)
        try h.write32(R.cmdqProd, prod)
        #expect(try h.read32(R.cmdqCons) == 0b11)   // index 1, wrap 1 in a 2-entry queue
    }

    @Test("no consumption while CMDQEN=0; setting CMDQEN consumes what is already produced")
    func enableStartsConsumption() throws {
        let h = DeviceHarness()
        try h.write64(R.cmdqBase, Self.queue | 4)
        let prod = try h.place([Self.nop, Self.nop], queueBase: Self.queue, log2Size: 4, producer: 0)
        try h.write32(R.cmdqProd, prod)
        #expect(try h.read32(R.cmdqCons) == 0)
        try h.write32(R.cr0, SMMUControl0.commandQueueEnable.rawValue)
        #expect(try h.read32(R.cmdqCons) == 2)
    }

    @Test("illegal opcode: CONS stops at it, ERR=CERROR_ILL, GERROR.CMDQ_ERR toggles; GERRORN ack resumes")
    func illegalOpcodeAndRecovery() throws {
        let h = DeviceHarness()
        try h.enableCommandQueue(base: Self.queue, log2Size: 4)
        var prod = try h.place([Self.nop], queueBase: Self.queue, log2Size: 4, producer: 0)
        try h.placeRaw(0x09, 0, queueBase: Self.queue, slot: 1)       // 0x09: Reserved
        prod = 2
        prod = try h.place([.tlbiNSNHAll], queueBase: Self.queue, log2Size: 4, producer: prod)
        try h.write32(R.cmdqProd, prod)
        let cons = try h.read32(R.cmdqCons)
        #expect(cons & 0xF_FFFF == 1)               // RD points at the bad command
        #expect(cons >> 24 & 0x7F == 1)             // CERROR_ILL
        #expect(try h.read32(R.gerror) ^ (try h.read32(R.gerrorn)) == 1)   // CMDQ_ERR active
        #expect(h.smmu.translator.counters.commandsConsumed == 1)

        // While the error is active nothing is consumed, even on a new PROD write.
        try h.write32(R.cmdqProd, prod)
        #expect(try h.read32(R.cmdqCons) & 0xF_FFFF == 1)

        // Linux's recovery: overwrite the bad slot with a CMD_SYNC, then acknowledge. The ack
        // alone restarts consumption (§7.1: no PROD write needed).
        let (s0, s1) = Self.nop.encode()
        try h.placeRaw(s0, s1, queueBase: Self.queue, slot: 1)
        try h.write32(R.gerrorn, try h.read32(R.gerror))
        #expect(try h.read32(R.cmdqCons) & 0xF_FFFF == 3)
        #expect(h.smmu.translator.counters.commandsConsumed == 3)
        #expect(h.smmu.registers.activeErrors.isEmpty)
    }

    @Test("a second error while CMDQ_ERR is active is not logged again (§7.5)")
    func errorNotRetoggledWhileActive() throws {
        let h = DeviceHarness()
        try h.enableCommandQueue(base: Self.queue, log2Size: 4)
        try h.placeRaw(0xFF, 0, queueBase: Self.queue, slot: 0)
        try h.write32(R.cmdqProd, 1)
        #expect(try h.read32(R.gerror) == 1)
        try h.write32(R.cmdqProd, 1)
        #expect(try h.read32(R.gerror) == 1)        // not toggled back
    }

    @Test("a command the SMMU does not implement is CERROR_ILL: TLBI_EL2_ALL without IDR0.HYP")
    func featureIllegalInQueue() throws {
        let h = DeviceHarness()
        try h.enableCommandQueue(base: Self.queue, log2Size: 4)
        let prod = try h.place([.tlbiEL2All], queueBase: Self.queue, log2Size: 4, producer: 0)
        try h.write32(R.cmdqProd, prod)
        #expect(h.smmu.registers.commandError == .illegal)
        #expect(try h.read32(R.cmdqCons) & 0xF_FFFF == 0)
    }

    @Test("a command fetch that aborts is CERROR_ABT, CONS stays (§7.1)")
    func fetchAbort() throws {
        let h = DeviceHarness()
        // 0x2000_0000 decodes to nothing on this bus.
        try h.enableCommandQueue(base: 0x2000_0000, log2Size: 4)
        try h.write32(R.cmdqProd, 1)
        let cons = try h.read32(R.cmdqCons)
        #expect(cons >> 24 & 0x7F == 2)
        #expect(cons & 0xF_FFFF == 0)
        #expect(try h.read32(R.gerror) & 1 == 1)
    }

    @Test("CMD_SYNC with SIG_IRQ writes MSIData to MSIAddress as one 32-bit write (Linux MSIPOLL)")
    func syncMSIPoll() throws {
        let h = DeviceHarness()
        try h.enableCommandQueue(base: Self.queue, log2Size: 4)
        // Linux points the MSI at the CMD_SYNC's own slot with data 0 and polls its first word.
        let slot = Self.queue + 2 * 16
        let sync = Command.sync(CommandSync(completionSignal: .interrupt, msiShareability: 3, msiAttributes: 0xF,
                                            msiData: 0, msiAddress: slot))
        let prod = try h.place([.tlbiNSNHAll, .tlbiNSNHAll, sync], queueBase: Self.queue, log2Size: 4, producer: 0)
        let (w0, _) = sync.encode()
        #expect(try h.bus.read(PhysicalAddress(slot), size: 4) != 0)
        try h.write32(R.cmdqProd, prod)
        #expect(try h.bus.read(PhysicalAddress(slot), size: 4) == 0)          // the MSI landed
        #expect(try h.bus.read(PhysicalAddress(slot + 4), size: 4) == w0 >> 32) // upper half untouched
        #expect(h.smmu.messageInterrupts.commandSync == 1)
        #expect(h.smmu.wiredInterrupts.commandSync == 1)
    }

    @Test("the CMD_SYNC MSI carries the SMMU's own DeviceID; without IDR0.MSI only the wired line pulses")
    func syncMSIRequester() throws {
        let h = DeviceHarness()
        h.smmu.msiDeviceID = DeviceID(0x8_0000)
        try h.enableCommandQueue(base: Self.queue, log2Size: 4)
        let sync = Command.sync(CommandSync(completionSignal: .interrupt, msiData: 0x1234,
                                            msiAddress: DeviceHarness.doorbellBase + 0x40))
        try h.write32(R.cmdqProd, try h.place([sync], queueBase: Self.queue, log2Size: 4, producer: 0))
        #expect(h.doorbell.writes == [RecordingDevice.Write(offset: 0x40, size: 4, value: 0x1234,
                                                            requester: .device(DeviceID(0x8_0000)))])

        var noMSI = SMMUConfiguration()
        noMSI.msi = false
        let h2 = DeviceHarness(configuration: noMSI)
        try h2.enableCommandQueue(base: Self.queue, log2Size: 4)
        try h2.write32(R.cmdqProd, try h2.place([sync], queueBase: Self.queue, log2Size: 4, producer: 0))
        #expect(h2.doorbell.writes.isEmpty)
        #expect(h2.smmu.wiredInterrupts.commandSync == 1)
    }

    @Test("an aborted CMD_SYNC MSI activates GERROR.MSI_CMDQ_ABT_ERR but the command is consumed")
    func syncMSIAbort() throws {
        let h = DeviceHarness()
        try h.enableCommandQueue(base: Self.queue, log2Size: 4)
        let sync = Command.sync(CommandSync(completionSignal: .interrupt, msiData: 1, msiAddress: 0x2000_0000))
        try h.write32(R.cmdqProd, try h.place([sync], queueBase: Self.queue, log2Size: 4, producer: 0))
        #expect(try h.read32(R.cmdqCons) == 1)
        #expect(try h.read32(R.gerror) == SMMUGlobalErrors.commandSyncMSIAbort.rawValue)
    }

    @Test("a command error raises the GERROR interrupt: wired pulse and MSI of CFG1 to CFG0")
    func gerrorInterrupt() throws {
        let h = DeviceHarness()
        try h.write64(R.gerrorIRQCfg0, DeviceHarness.doorbellBase + 0x40)
        try h.write32(R.gerrorIRQCfg1, 0x2A)
        try h.write32(R.irqCtrl, SMMUInterruptControl.globalError.rawValue)
        try h.enableCommandQueue(base: Self.queue, log2Size: 4)
        try h.placeRaw(0x00, 0, queueBase: Self.queue, slot: 0)
        try h.write32(R.cmdqProd, 1)
        #expect(h.smmu.wiredInterrupts.globalError == 1)
        #expect(h.doorbell.writes.map(\.value) == [0x2A])
        #expect(h.doorbell.writes.first?.requester == .device(SMMUv3.defaultMSIDeviceID))
    }

    @Test("invalidation commands count as consumed; PREFETCH is a no-op that is still consumed")
    func prefetchConsumed() throws {
        let h = DeviceHarness()
        try h.enableCommandQueue(base: Self.queue, log2Size: 4)
        let prod = try h.place([.prefetchConfig(StreamID(1), substream: nil), Command.cfgiAll(), .tlbiNHAll(VMID(1))],
                               queueBase: Self.queue, log2Size: 4, producer: 0)
        try h.write32(R.cmdqProd, prod)
        #expect(h.smmu.translator.counters.commandsConsumed == 3)
        #expect(try h.read32(R.gerror) == 0)
    }
    @Test("an aborted GERROR MSI activates MSI_GERROR_ABT_ERR without raising another GERROR interrupt (§7.5.1)")
    func gerrorMSIAbort() throws {
        let h = DeviceHarness()
        try h.write64(R.gerrorIRQCfg0, 0x2000_0000)                   // nothing decodes there
        try h.write32(R.irqCtrl, SMMUInterruptControl.globalError.rawValue)
        try h.enableCommandQueue(base: Self.queue, log2Size: 4)
        try h.placeRaw(0x00, 0, queueBase: Self.queue, slot: 0)
        try h.write32(R.cmdqProd, 1)
        let expected: SMMUGlobalErrors = [.commandQueue, .globalErrorMSIAbort]
        #expect(try h.read32(R.gerror) == expected.rawValue)
        #expect(h.smmu.wiredInterrupts.globalError == 1)
        #expect(h.smmu.messageInterrupts.globalError == 0)
    }

    @Test("a CMD_SYNC MSI aimed at the SMMU's own CMDQ_PROD is a producer update: the new commands run")
    func syncMSIIntoOwnRegister() throws {
        let h = DeviceHarness()
        try h.enableCommandQueue(base: Self.queue, log2Size: 4)
        let kick = Command.sync(CommandSync(completionSignal: .interrupt, msiData: 3,
                                            msiAddress: DeviceHarness.smmuBase + R.cmdqProd))
        _ = try h.place([kick, .tlbiNSNHAll, .tlbiNSNHAll], queueBase: Self.queue, log2Size: 4, producer: 0)
        try h.write32(R.cmdqProd, 1)                                   // only the CMD_SYNC
        // The MSI wrote PROD = 3 during consumption; the consumer picked it up.
        #expect(try h.read32(R.cmdqProd) == 3)
        #expect(try h.read32(R.cmdqCons) == 3)
        #expect(h.smmu.translator.counters.commandsConsumed == 3)
    }
}
