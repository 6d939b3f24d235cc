import Firmware
import GIC
import PCI

extension Machine {
    /// The host bridge's INTx wiring as its `interrupt-map` describes it: the root-bus devfn
    /// and pin select an entry (masked by `interrupt-map-mask`), whose parent must be the GIC
    /// with a specifier <0 (SPI) number flags>; the wire then drives SPI INTID 32 + number at
    /// the distributor. On QEMU's `virt` this is the GPEX host's four lines, line
    /// (slot + pin − 1) mod 4 to SPI 3 + line (`create_pcie`, `create_pcie_irq_map`). Nil when
    /// there is no map or no GICv3; an entry that names another parent drops the level.
    static func intxWiring(_ bridge: PCIeHostBridge, topology: Topology, gic: GICv3?) -> ((UInt8, UInt8, Bool) -> Void)? {
        guard let map = bridge.interruptMap, let gic, let gicPhandle = topology.gic?.phandle else { return nil }
        let firstBus = UInt32(bridge.busRange.lowerBound & 0xFF)
        return { [weak gic] devfn, pin, asserted in
            guard let gic, let entry = map.lookup(address: [firstBus << 16 | UInt32(devfn) << 8, 0, 0], pin: UInt32(pin)),
                  entry.parentPhandle == gicPhandle, entry.parentSpecifier.count >= 2, entry.parentSpecifier[0] == 0,
                  entry.parentSpecifier[1] < 988 else { return }
            gic.distributor.setLevel(intid: 32 + entry.parentSpecifier[1], asserted: asserted)
        }
    }
}
