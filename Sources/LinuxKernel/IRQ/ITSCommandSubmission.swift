import Bus
import GIC

extension GICv3ITSDriver {
    /// `its_send_single_command`: the command at `cmd_write` (`its_allocate_entry`, which waits
    /// while the queue is full, i.e. the next slot is GITS_CREADR), then the SYNC that the
    /// command's builder asks for (`its_build_*_cmd` return the collection to sync on: MAPC,
    /// MAPTI, MOVI, DISCARD, INV, INT, CLEAR do; MAPD and INVALL do not), then GITS_CWRITER
    /// (`its_post_commands`) and `its_wait_for_range_completion`: poll GITS_CREADR until it
    /// has passed the commands. A stalled queue (GITS_CREADR.Stalled) or one that never gets
    /// there is "ITS queue timeout" (ETIMEDOUT), as Linux logs it.
    func send(_ command: ITSCommand, syncOn target: ITSTarget?) throws(Errno) {
        var batch: [QueuedCommand] = [.physical(command)]
        if let target { batch.append(.physical(.sync(target: target))) }
        try post(batch)
    }

    /// `its_send_single_vcommand`: a GICv4 command, then the VSYNC on the vPE its builder
    /// returns (`valid_vpe`: every builder but a failed INVDB does, once the vPE's collection
    /// is valid), posted and waited for as `send` does.
    func sendVirtual(_ command: ITSVirtualCommand, vsync vpe: UInt16?) throws(Errno) {
        var batch: [QueuedCommand] = [.virtual(command)]
        if let vpe { batch.append(.virtual(.vsync(vpe: vpe))) }
        try post(batch)
    }

    /// A command for the queue: the ITS's physical set or a GICv4 one.
    enum QueuedCommand {
        case physical(ITSCommand)
        case virtual(ITSVirtualCommand)

        var words: (UInt64, UInt64, UInt64, UInt64) {
            switch self {
            case .physical(let command): return command.encodeWords()
            case .virtual(let command):
                let w = command.encode()
                return (w[0], w[1], w[2], w[3])
            }
        }

        var description: String {
            switch self {
            case .physical(let command): command.description
            case .virtual(let command): command.description
            }
        }
    }

    private func post(_ batch: [QueuedCommand]) throws(Errno) {
        let mmio = kernel.mmio
        guard let cwriter = base.adding(ITS.Offset.cwriter), let creadr = base.adding(ITS.Offset.creadr) else { throw .EINVAL }
        let queueBytes = GICv3ITSDriver.commandQueueBytes
        var write = commandWriteOffset
        for cmd in batch {
            let next = (write + UInt64(ITSCommand.byteCount)) % queueBytes
            // its_queue_full: the slot after the write pointer is the read pointer.
            var spins = 0
            while try mmio.read64(creadr).keepingBits(19, 5) == next {
                spins += 1
                if spins > 1000 { kernel.log.log("ITS", "ITS queue not draining"); throw .ETIMEDOUT }
            }
            let (w0, w1, w2, w3) = cmd.words
            let slot = commandQueue.rawValue &+ write
            kernel.bus.kernelWrite(slot, size: 8, value: w0)
            kernel.bus.kernelWrite(slot &+ 8, size: 8, value: w1)
            kernel.bus.kernelWrite(slot &+ 16, size: 8, value: w2)
            kernel.bus.kernelWrite(slot &+ 24, size: 8, value: w3)
            switch cmd {
            case .physical(let command): record(command)
            case .virtual(let command): record(command)
            }
            kernel.journal?.append(.itsCommand(its: index, command: cmd.description))
            write = next
        }
        advanceWriteOffset(to: write)
        try mmio.write64(cwriter, write)
        // its_wait_for_range_completion.
        for _ in 0..<1000 {
            let r = try mmio.read64(creadr)
            if r.bit(0) { break }
            if r.keepingBits(19, 5) == write { return }
        }
        kernel.log.log("ITS", "ITS queue timeout (\(batch.map(\.description).joined(separator: "; ")))")
        throw .ETIMEDOUT
    }

    /// The SYNC target for commands on `cpu`'s collection (`valid_col(its->collections + cpu)`).
    func collectionTarget(_ cpu: Int) -> ITSTarget? {
        cpu >= 0 && cpu < collectionTargets.count ? collectionTargets[cpu] : nil
    }
}
