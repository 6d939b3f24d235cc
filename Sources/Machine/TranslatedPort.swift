import Bus
import SMMUv3

/// The path from a root complex to memory through an SMMU: the SMMU answers for the address
/// (translate, bypass or terminate), then the access goes onto the system bus carrying the
/// requester's DeviceID, which the ITS reads as the sideband of a GITS_TRANSLATER write.
///
/// Doorbell pages of ITSs that the platform does not put behind the SMMU are checked first and
/// go straight to the bus, untranslated (see `MachineOptions.untranslatedITS`).
public final class TranslatedPort: UpstreamPort {
    public let smmu: SMMUv3
    public let bus: SystemBus
    /// Physical pages (base, size) reached without translation.
    public let untranslatedWindows: [(base: UInt64, size: UInt64)]
    public private(set) var lastBusError: BusError?

    public init(smmu: SMMUv3, bus: SystemBus, untranslatedWindows: [(base: UInt64, size: UInt64)] = []) {
        self.smmu = smmu
        self.bus = bus
        self.untranslatedWindows = untranslatedWindows
    }

    public func issue(_ transaction: DeviceTransaction) -> TransactionResult {
        let address = transaction.address.rawValue
        if isOutsideSMMU(address, untranslatedWindows, bus) { return access(PhysicalAddress(address), transaction) }
        switch smmu.handle(transaction) {
        case .translated(let result):
            return access(result.output, transaction)
        case .terminated(_, let abort):
            return TransactionResult(status: abort ? .aborted : .readAsZeroWriteIgnored)
        }
    }

    /// The bus access after translation.
    @inline(__always)
    func access(_ address: PhysicalAddress, _ transaction: DeviceTransaction) -> TransactionResult {
        let (result, error) = performBusAccess(bus, address, transaction)
        lastBusError = error
        return result
    }
}

/// Whether `address` is in one of the doorbell pages the platform keeps outside the SMMU
/// (`MachineOptions.untranslatedITS`), which an SMMUv3 or SMMUv2 port sends to the bus
/// untranslated; the trace and journal say so.
@inline(__always)
func isOutsideSMMU(_ address: UInt64, _ windows: [(base: UInt64, size: UInt64)], _ bus: SystemBus) -> Bool {
    for window in windows where address >= window.base && address &- window.base < window.size {
        bus.trace?.append(.bus, "untranslated window", address: address, "ITS doorbell page outside the SMMU: no translation")
        bus.journal?.append(.untranslatedWindow(address: address))
        return true
    }
    return false
}

/// A device's access on the system bus at `address`, carrying its DeviceID. A bus error (nothing
/// decoded there, a device refusing) comes back to the device as an abort (PCIe Completer Abort
/// / Unsupported Request).
@inline(__always)
func performBusAccess(_ bus: SystemBus, _ address: PhysicalAddress, _ transaction: DeviceTransaction) -> (TransactionResult, BusError?) {
    do {
        if transaction.isWrite {
            try bus.write(address, size: transaction.size, value: transaction.data, requester: .device(transaction.deviceID))
            return (.completedWrite, nil)
        }
        let data = try bus.read(address, size: transaction.size, requester: .device(transaction.deviceID))
        return (TransactionResult(status: .completed, data: data), nil)
    } catch {
        return (TransactionResult(status: .aborted), error)
    }
}

/// The path from a root complex straight to the bus, for requesters no IOMMU translates
/// (RIDs outside every `iommu-map` entry, or a platform without an SMMU).
public final class DirectPort: UpstreamPort {
    public let bus: SystemBus
    public private(set) var lastBusError: BusError?

    public init(bus: SystemBus) { self.bus = bus }

    public func issue(_ transaction: DeviceTransaction) -> TransactionResult {
        let (result, error) = performBusAccess(bus, PhysicalAddress(transaction.address.rawValue), transaction)
        lastBusError = error
        return result
    }
}

extension TranslatedPort {
    /// Takes `other`'s last bus error (a forked world's copy).
    func copyLastBusError(of other: TranslatedPort) { lastBusError = other.lastBusError }
}

extension DirectPort {
    /// Takes `other`'s last bus error (a forked world's copy).
    func copyLastBusError(of other: DirectPort) { lastBusError = other.lastBusError }
}
