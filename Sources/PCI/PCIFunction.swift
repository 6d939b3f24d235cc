import Bus

/// A PCIe endpoint function: a type-0 configuration space, memory BARs, optional MSI and MSI-X
/// capabilities, and the two things a device does on the MSI path — DMA and raising vectors.
///
/// Every request leaves through the root complex the function is attached to, which tags it
/// with StreamID and DeviceID; the function never knows about the SMMU or the ITS. Each request
/// and its outcome is appended to `log`.
///
/// Interrupt rules (PCIe r6.0 §6.1.4, §7.7):
/// - MSI: sent when MSI Enable = 1 and the vector is unmasked (Per-Vector Masking); a masked
///   vector sets its Pending bit and is sent, with the bit cleared, when software clears its
///   Mask bit (§6.1.4.5). MSI with Enable = 0 sends nothing and latches nothing.
/// - MSI-X: sent when MSI-X Enable = 1, Function Mask = 0 and the entry's Mask = 0. Otherwise
///   the vector's PBA bit is set and the message is sent when the vector becomes deliverable
///   (per-vector unmask, Function Mask cleared, or MSI-X Enable set), clearing the bit. Latching
///   while Enable = 0 is this model's choice (the spec only defines pending for masked vectors);
///   it lets software enable MSI-X after the device signalled without losing the event.
/// - Neither is sent without Bus Master Enable (`NotSentReason.busMasterDisabled`).
/// - The message is a DWORD posted memory write of Data to Address (§6.1.4.4).
///
/// The function holds its root complex (and parent bridge) weakly: whoever builds the machine
/// keeps the `RootComplex` alive; a function whose root complex is gone reports `.notAttached`.
///
/// The pending bit is cleared immediately before the message is issued rather than after it
/// completes; in a sequential model the two are indistinguishable, and it keeps a message that
/// loops back into the function's own table from re-sending itself.
public final class PCIFunction {
    public let name: String
    /// The function's own Requester ID (bus number as enumerated, device, function).
    public let requesterID: RequesterID
    public private(set) var config: ConfigurationSpace
    public let expressCapability: PCIExpressCapability?
    public let msi: MSICapability?
    public let msix: MSIXCapability?
    public private(set) var msixTable: MSIXTable?
    /// The requests the function was asked to emit and what became of each: `log.count` is every
    /// request so far (while `isLogging`), iteration yields the last `logCapacity` of them,
    /// oldest first (`BoundedLog`: a function raising one vector after another for a whole run
    /// holds a fixed amount of memory).
    public private(set) var log = BoundedLog<FunctionLogEntry>(capacity: PCIFunction.retainedLogEntries)
    /// How many requests `log` keeps by default.
    public static let retainedLogEntries = 64
    /// How many requests `log` keeps (nil: all of them).
    public var logCapacity: Int? {
        get { log.capacity }
        set { log.capacity = newValue }
    }
    /// Function Level Resets performed (PCIe r6.0 §6.6.2).
    public private(set) var functionLevelResets = 0
    /// The configuration space as built: what an FLR returns the function to.
    private let resetConfig: ConfigurationSpace
    /// Whether requests are appended to `log`. Benchmarks turn it off to measure the path alone
    /// (the bounded log allocates nothing once its ring is full either way).
    public var isLogging = true
    public var trace: TraceLog?

    weak var rootComplex: RootComplex?
    /// The bridge whose secondary bus this function sits on, if any.
    public internal(set) weak var parentBridge: PCIToPCIBridge?
    private var deliveryDepth = 0

    public init(name: String = "pci-function", requesterID: RequesterID, vendorID: UInt16, deviceID: UInt16,
                classCode: UInt32 = 0, bars: [BaseAddressRegister] = [], msi: MSIConfiguration? = nil,
                msix: MSIXConfiguration? = nil, expressType: PCIExpressPortType? = .endpoint,
                functionLevelReset: Bool = true, multifunction: Bool = false, interruptPin: UInt8 = 0) throws(PCIConfigurationError) {
        self.name = name
        self.requesterID = requesterID
        var config = ConfigurationSpace(vendorID: vendorID, deviceID: deviceID, classCode: classCode, headerType: .endpoint)
        // Header Type bit 7 (PCI_HEADER_TYPE_MFD, pci_regs.h): the device has functions other
        // than 0, so software scans functions 1–7 of this slot. Read-only, like the rest of it.
        if multifunction {
            config.setHardwareBits(offset: ConfigRegister.headerType, size: 1, value: 0x80 | UInt32(HeaderType.endpoint.rawValue))
        }
        // Interrupt Pin (0x3D, read-only): 0 = none, 1…4 = INTA#…INTD#.
        if (1...4).contains(interruptPin) {
            config.setHardwareBits(offset: ConfigRegister.interruptPin, size: 1, value: UInt32(interruptPin))
        }
        for bar in bars { try config.defineBAR(bar) }
        expressCapability = try expressType.map { (type) throws(PCIConfigurationError) in
            try PCIExpressCapability.install(into: &config, portType: type,
                                             functionLevelReset: functionLevelReset && type == .endpoint)
        }
        self.msi = try msi.map { (c) throws(PCIConfigurationError) in try MSICapability.install(into: &config, c) }
        let msixCap = try msix.map { (c) throws(PCIConfigurationError) in try MSIXCapability.install(into: &config, c) }
        self.msix = msixCap
        msixTable = msixCap.map { MSIXTable(size: $0.tableSize) }
        self.config = config
        self.resetConfig = config
    }

    /// The log entries that reached the link.
    /// `other`'s state, attached to nothing: a forked world's copy, which its root complex's
    /// copy attaches (`RootComplex` clone). Trace is an observer and stays detached.
    init(copying other: PCIFunction) {
        name = other.name
        requesterID = other.requesterID
        config = other.config
        expressCapability = other.expressCapability
        msi = other.msi
        msix = other.msix
        msixTable = other.msixTable
        log = other.log
        functionLevelResets = other.functionLevelResets
        resetConfig = other.resetConfig
        isLogging = other.isLogging
        deliveryDepth = other.deliveryDepth
    }

    public var sentTransactions: [DeviceTransaction] { log.compactMap { $0.outcome.transaction } }

    public func clearLog() { log.removeAll() }

    private func record(_ entry: FunctionLogEntry) {
        if isLogging { log.append(entry) }
    }

    // MARK: Configuration access (from the root complex's ECAM, or directly in tests)

    public func configRead(offset: Int, size: Int) -> UInt32 { config.read(offset: offset, size: size) }

    /// A configuration write. Afterwards any pending vector that the write made deliverable
    /// (MSI Mask bit cleared; MSI-X Enable set or Function Mask cleared; Bus Master Enable set)
    /// is sent.
    public func configWrite(offset: Int, size: Int, value: UInt32) {
        let command = config.read(offset: ConfigRegister.command, size: 2)
        config.write(offset: offset, size: size, value: value)
        // The Command register or a BAR may have changed what the function decodes.
        rootComplex?.decodeMayHaveChanged(self)
        // Interrupt Disable gates the INTx wire while an interrupt condition holds (PCI Local
        // Bus 3.0 §6.2.2): setting it deasserts the wire, clearing it asserts it again.
        if interruptStatus, (command ^ config.read(offset: ConfigRegister.command, size: 2)) & UInt32(ConfigRegister.commandInterruptDisable) != 0 {
            driveINTx()
        }
        if let express = expressCapability,
           express.deviceControl(in: config) & PCIExpressCapability.initiateFunctionLevelReset != 0 {
            // Initiate Function Level Reset always reads 0. A function without the capability
            // ignores the bit (it is RsvdP for it); one with it resets.
            if express.supportsFunctionLevelReset {
                functionLevelReset()
                return
            }
            let control = express.deviceControl(in: config) & ~PCIExpressCapability.initiateFunctionLevelReset
            config.setHardwareBits(offset: express.offset + PCIExpressCapability.deviceControlOffset, size: 2, value: UInt32(control))
        }
        deliverPending()
    }

    /// Function Level Reset (PCIe r6.0 §6.6.2): the function returns to its state after
    /// Conventional Reset — configuration space as built (Command 0: no decoding, no bus
    /// mastering; BARs 0; MSI and MSI-X disabled, Device Control 0), its MSI-X table back to
    /// every entry masked with zero address/data and an empty PBA (§7.7.2.10–11). Sticky bits
    /// are not modelled (nothing here has any). The reset completes at once, so the "100 ms
    /// before the next request" rule of §6.6.2 holds trivially and config reads never return
    /// Configuration Request Retry Status.
    public func functionLevelReset() {
        let hadINTx = interruptStatus
        config = resetConfig
        rootComplex?.decodeMayHaveChanged(self)
        // The reset clears Interrupt Status, so the INTx wire deasserts.
        if hadINTx { driveINTx() }
        msixTable = msix.map { MSIXTable(size: $0.tableSize) }
        functionLevelResets += 1
        trace?.append(.pci, "Function Level Reset", "\(name) \(requesterID)")
    }

    /// Sets or clears Status.Interrupt Status (read-only to software; `setINTx`).
    func setInterruptStatusBit(_ on: Bool) {
        let status = config.status & ~ConfigRegister.statusInterrupt | (on ? ConfigRegister.statusInterrupt : 0)
        config.setHardwareBits(offset: ConfigRegister.status, size: 2, value: UInt32(status))
    }

    // MARK: BAR access (from the root complex's memory window)

    /// A read of `size` bytes at `offset` into BAR `bar`. The MSI-X table and PBA answer in
    /// their ranges; the rest of every BAR models device registers this project does not need
    /// and reads as zero.
    public func barRead(bar: Int, offset: UInt64, size: Int) -> UInt64 {
        if let msix, let table = msixTable {
            if bar == msix.tableBAR, offset >= msix.tableOffset, offset - msix.tableOffset < msix.tableLength {
                return table.readTable(offset: offset - msix.tableOffset, size: size)
            }
            if bar == msix.pbaBAR, offset >= msix.pbaOffset, offset - msix.pbaOffset < msix.pbaLength {
                return table.readPBA(offset: offset - msix.pbaOffset, size: size)
            }
        }
        return 0
    }

    /// A write into BAR `bar`: MSI-X table writes take effect (and may send a pending vector
    /// they unmask); PBA writes and other offsets are ignored.
    public func barWrite(bar: Int, offset: UInt64, size: Int, value: UInt64) {
        guard let msix, msixTable != nil, bar == msix.tableBAR, offset >= msix.tableOffset,
              offset - msix.tableOffset < msix.tableLength else { return }
        let touched = msixTable?.writeTable(offset: offset - msix.tableOffset, size: size, value: value) ?? []
        if !touched.isEmpty { deliverPending() }
    }

    // MARK: Requests

    /// Issues a DMA read or write of `size` bytes (1, 2, 4, 8) at `address`. A read returns its
    /// data in the result. An aborted read sets Status.Received Master Abort (§7.5.1.1.4: the
    /// requester received an Unsupported Request completion).
    @discardableResult
    public func dma(_ kind: DeviceTransaction.Kind, address: IOVA, size: Int, data: UInt64 = 0) -> RequestOutcome {
        let outcome: RequestOutcome
        if ![1, 2, 4, 8].contains(size) {
            outcome = .notSent(.unsupportedSize)
        } else if !config.busMasterEnabled {
            outcome = .notSent(.busMasterDisabled)
        } else if let rootComplex {
            let (transaction, result) = rootComplex.forward(from: self, kind: kind, address: address, size: size, data: data)
            outcome = .sent(transaction, result)
            if kind == .read, result.status == .aborted {
                let status = UInt32(config.status | ConfigRegister.statusReceivedMasterAbort)
                config.setHardwareBits(offset: ConfigRegister.status, size: 2, value: status)
            }
        } else {
            outcome = .notSent(.notAttached)
        }
        record(FunctionLogEntry(request: .dma(kind), outcome: outcome))
        return outcome
    }

    /// Signals interrupt `vector` by whichever mechanism software enabled: MSI-X if its Enable
    /// is set, else MSI if its Enable is set, else MSI-X (which latches the vector in the PBA)
    /// if the function has it, else nothing.
    @discardableResult
    public func raise(vector: Int) -> RequestOutcome {
        if let msix, msix.isEnabled(in: config) { return raiseMSIX(vector: vector) }
        if let msi, msi.isEnabled(in: config) { return raiseMSI(vector: vector) }
        if msix != nil { return raiseMSIX(vector: vector) }
        return raiseMSI(vector: vector)
    }

    /// Signals MSI vector `vector` (0 ≤ vector < 2^MME).
    @discardableResult
    public func raiseMSI(vector: Int) -> RequestOutcome {
        let outcome: RequestOutcome
        if let msi {
            if !msi.isEnabled(in: config) {
                outcome = .notSent(.interruptsDisabled)
            } else if vector < 0 || vector >= msi.allocatedVectors(in: config) {
                outcome = .notSent(.noSuchVector)
            } else if msi.isMasked(vector: vector, in: config) {
                msi.setPending(vector: vector, true, in: &config)
                trace?.append(.pci, "MSI vector \(vector): masked → Pending bit set", "\(name) \(requesterID)")
                outcome = .pending
            } else {
                outcome = sendMSI(msi, vector: vector)
            }
        } else {
            outcome = .notSent(.noCapability)
        }
        if outcome.transaction == nil {
            record(FunctionLogEntry(request: .msi(vector: vector), outcome: outcome))
        }
        return outcome
    }

    /// Signals MSI-X vector `vector` (0 ≤ vector < table size).
    @discardableResult
    public func raiseMSIX(vector: Int) -> RequestOutcome {
        let outcome: RequestOutcome
        if let msix, let table = msixTable {
            if vector < 0 || vector >= table.size {
                outcome = .notSent(.noSuchVector)
            } else if !msix.isEnabled(in: config) || msix.isFunctionMasked(in: config) || table.isMasked(vector) {
                msixTable?.setPending(vector, true)
                trace?.append(.pci, "MSI-X vector \(vector): masked → PBA bit set", "\(name) \(requesterID)")
                outcome = .pending
            } else {
                outcome = sendMSIX(vector: vector)
            }
        } else {
            outcome = .notSent(.noCapability)
        }
        if outcome.transaction == nil {
            record(FunctionLogEntry(request: .msix(vector: vector), outcome: outcome))
        }
        return outcome
    }

    /// Sends the MSI message of `vector`; logs it when it reaches the link.
    private func sendMSI(_ msi: MSICapability, vector: Int) -> RequestOutcome {
        let address = msi.address(in: config)
        let data = msi.data(vector: vector, in: config)
        return sendMessage(.msi(vector: vector), label: "MSI vector \(vector)", address: address, data: data)
    }

    private func sendMSIX(vector: Int) -> RequestOutcome {
        guard let table = msixTable else { return .notSent(.noCapability) }
        let address = table.messageAddress(vector)
        let data = table.messageData(vector)
        return sendMessage(.msix(vector: vector), label: "MSI-X vector \(vector)", address: address, data: data)
    }

    private func sendMessage(_ request: FunctionRequest, label: String, address: UInt64, data: UInt32) -> RequestOutcome {
        guard config.busMasterEnabled else { return .notSent(.busMasterDisabled) }
        guard let rootComplex else { return .notSent(.notAttached) }
        trace?.append(.pci, "\(label): addr \(Hex.format(address)) data \(Hex.format(UInt64(data), minDigits: 1)) → write",
                      address: address, value: UInt64(data), "\(name) \(requesterID)")
        let (transaction, result) = rootComplex.forward(from: self, kind: .write, address: IOVA(address), size: 4, data: UInt64(data))
        let outcome = RequestOutcome.sent(transaction, result)
        record(FunctionLogEntry(request: request, outcome: outcome))
        return outcome
    }

    /// Sends every pending vector that is now deliverable, lowest vector first, MSI before MSI-X.
    /// Nested delivery (a message that lands in the function's own registers) is bounded.
    func deliverPending() {
        guard deliveryDepth < 4 else { return }
        deliveryDepth += 1
        defer { deliveryDepth -= 1 }
        if let msi, msi.perVectorMasking, msi.isEnabled(in: config) {
            for vector in 0..<msi.allocatedVectors(in: config) {
                let bit = UInt32(1) << UInt32(vector)
                guard msi.pendingBits(in: config) & bit != 0, msi.maskBits(in: config) & bit == 0 else { continue }
                guard config.busMasterEnabled, rootComplex != nil else { break }
                msi.setPending(vector: vector, false, in: &config)
                _ = sendMSI(msi, vector: vector)
            }
        }
        if let msix, let size = msixTable?.size, msix.isEnabled(in: config), !msix.isFunctionMasked(in: config) {
            for vector in 0..<size {
                guard let table = msixTable, table.isPending(vector), !table.isMasked(vector) else { continue }
                guard config.busMasterEnabled, rootComplex != nil else { break }
                guard msix.isEnabled(in: config), !msix.isFunctionMasked(in: config) else { break }
                msixTable?.setPending(vector, false)
                _ = sendMSIX(vector: vector)
            }
        }
    }
}
