import Bus
import SMMUv2

/// The path from a root complex to memory through an SMMUv2 (MMU-500, generic SMMUv2): the SMMU's
/// stream mapping and context bank answer for the address, then the access goes onto the system
/// bus carrying the requester's DeviceID, as `TranslatedPort` does for an SMMUv3. ITS doorbell
/// pages the platform keeps outside the SMMU are checked first.
public final class SMMUv2Port: UpstreamPort {
    public let smmu: SMMUv2
    public let bus: SystemBus
    public let untranslatedWindows: [(base: UInt64, size: UInt64)]
    public private(set) var lastBusError: BusError?

    public init(smmu: SMMUv2, bus: SystemBus, untranslatedWindows: [(base: UInt64, size: UInt64)] = []) {
        self.smmu = smmu
        self.bus = bus
        self.untranslatedWindows = untranslatedWindows
    }

    public func issue(_ transaction: DeviceTransaction) -> TransactionResult {
        let address = transaction.address.rawValue
        if isOutsideSMMU(address, untranslatedWindows, bus) { return access(PhysicalAddress(address), transaction) }
        switch smmu.handle(transaction) {
        case .translated(let output, _):
            return access(output, transaction)
        case .terminated(let abort, _):
            return TransactionResult(status: abort ? .aborted : .readAsZeroWriteIgnored)
        }
    }

    func access(_ address: PhysicalAddress, _ transaction: DeviceTransaction) -> TransactionResult {
        let (result, error) = performBusAccess(bus, address, transaction)
        lastBusError = error
        return result
    }
}

extension SMMUv2Port {
    /// Takes `other`'s last bus error (a forked world's copy).
    func copyLastBusError(of other: SMMUv2Port) { lastBusError = other.lastBusError }
}
