import LinuxKernel
import PCI

/// What a function's enabled vectors hold after Linux programmed them: per vector its index,
/// Linux irq, the message the device will send (read back from the MSI-X table or the MSI
/// capability, as the hardware holds it, else the descriptor's composed message), and the
/// LPI and CPU of its interrupt descriptor. `doorbell host --device` and `doorbell inspect`
/// both report these.
public struct ProgrammedVector: Hashable, Sendable {
    public var index: Int
    public var irq: Int
    public var address: UInt64
    public var data: UInt32
    public var lpi: UInt32?
    public var cpu: Int

    /// Every vector of `pdev` (a multi-message MSI descriptor counts its `msiVectorCount`).
    public static func all(_ pdev: PCIDevice, function: PCIFunction, kernel: LinuxKernel) -> [ProgrammedVector] {
        var vectors: [ProgrammedVector] = []
        for desc in pdev.device.msiDescriptors where desc.irq != 0 {
            let count = pdev.msiEnabled ? max(pdev.msiVectorCount, 1) : 1
            for k in 0..<count {
                let index = desc.index + k
                let irq = desc.irq + k
                let d = kernel.irq.descriptor(irq)
                let (address, data): (UInt64, UInt32)
                if pdev.msixEnabled, let table = function.msixTable {
                    (address, data) = (table.messageAddress(index), table.messageData(index))
                } else if let msi = function.msi {
                    (address, data) = (msi.address(in: function.config), msi.data(vector: index, in: function.config))
                } else {
                    (address, data) = (desc.message.address, desc.message.data)
                }
                vectors.append(ProgrammedVector(index: index, irq: irq, address: address, data: data, lpi: d?.hwirq, cpu: d?.effectiveCPU ?? 0))
            }
        }
        return vectors
    }
}
