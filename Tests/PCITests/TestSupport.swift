import Bus
@testable import PCI

/// An upstream port that records what reaches it and completes everything.
final class RecordingPort: UpstreamPort {
    var transactions: [DeviceTransaction] = []
    var readData: UInt64 = 0
    var status: TransactionStatus = .completed

    func issue(_ transaction: DeviceTransaction) -> TransactionResult {
        transactions.append(transaction)
        return TransactionResult(status: status, data: transaction.kind == .read && status == .completed ? readData : 0)
    }
}

/// The ITS doorbell on QEMU `virt` (GITS_TRANSLATER at 0x0808_0000 + 0x1_0040; docs/hardware.md §QEMU virt machine).
let doorbell: UInt64 = 0x0809_0040

/// One endpoint with a 16 KiB 64-bit BAR0 holding the MSI-X table at 0 and the PBA at 0x2000,
/// attached to a root complex with identity iommu-map and msi-map, like QEMU `virt`.
struct Fixture {
    let rootComplex: RootComplex
    let port: RecordingPort
    let function: PCIFunction
    static let barAddress: UInt64 = 0x1000_0000

    init(tableSize: Int = 8, msi: MSIConfiguration? = nil, withMSIX: Bool = true,
         requesterID: RequesterID = RequesterID(bus: 0, device: 1, function: 0)) throws {
        rootComplex = RootComplex(memoryWindowBase: Fixture.barAddress)
        rootComplex.iommuMap = .identity()
        rootComplex.msiMap = .identity()
        port = RecordingPort()
        rootComplex.upstream = port
        function = try PCIFunction(name: "nic", requesterID: requesterID, vendorID: 0x1AF4, deviceID: 0x1041,
                                   bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                   msi: msi,
                                   msix: withMSIX ? MSIXConfiguration(tableSize: tableSize, tableBAR: 0, tableOffset: 0, pbaBAR: 0, pbaOffset: 0x2000) : nil)
        try rootComplex.attach(function)
    }

    /// What a driver does first: place BAR0 and set Memory Space and Bus Master Enable.
    func enable(busMaster: Bool = true) {
        function.configWrite(offset: ConfigRegister.bar0, size: 4, value: UInt32(Fixture.barAddress))
        function.configWrite(offset: ConfigRegister.bar0 + 4, size: 4, value: 0)
        let command = ConfigRegister.commandMemorySpace | (busMaster ? ConfigRegister.commandBusMaster : 0)
        function.configWrite(offset: ConfigRegister.command, size: 2, value: UInt32(command))
    }

    /// A CPU store into BAR0 through the root complex's memory window.
    func mmioWrite(_ barOffset: UInt64, size: Int, _ value: UInt64) throws {
        try rootComplex.memoryWindow.mmioWrite(offset: barOffset, size: size, value: value, requester: .cpu(0))
    }

    func mmioRead(_ barOffset: UInt64, size: Int) throws -> UInt64 {
        try rootComplex.memoryWindow.mmioRead(offset: barOffset, size: size, requester: .cpu(0))
    }

    /// Programs MSI-X entry `vector` with DWORD writes, as Linux `pci_write_msg_msix` does.
    func program(vector: Int, address: UInt64, data: UInt32, masked: Bool) throws {
        let entry = UInt64(vector) * 16
        try mmioWrite(entry + 0xC, size: 4, 1)
        try mmioWrite(entry + 0x0, size: 4, address & 0xFFFF_FFFF)
        try mmioWrite(entry + 0x4, size: 4, address >> 32)
        try mmioWrite(entry + 0x8, size: 4, UInt64(data))
        try mmioWrite(entry + 0xC, size: 4, masked ? 1 : 0)
    }

    var msix: MSIXCapability { function.msix! }

    func setMSIXControl(enable: Bool, functionMask: Bool) {
        var value: UInt16 = 0
        if enable { value |= MSIXCapability.controlEnable }
        if functionMask { value |= MSIXCapability.controlFunctionMask }
        function.configWrite(offset: msix.controlOffset, size: 2, value: UInt32(value))
    }

    func pba() throws -> UInt64 { try mmioRead(0x2000, size: 8) }
}
