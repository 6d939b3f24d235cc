import Bus

extension Distributor {
    /// GICD_TYPER2 (Arm IHI 0069H §12.9, GICD_TYPER2; Linux `GICD_TYPER2_VIL`, `GICD_TYPER2_VID`):
    /// VID[4:0] = vPEID bits − 1 and VIL[7] = 1 when GICv4.1 virtual LPIs are implemented (with
    /// VIL = 0 software assumes 16-bit vPEIDs); nASSGIcap[8] = 0 (vSGIs are not modelled). Zero
    /// for a GIC without GICv4.1 support, as before.
    public var typer2: UInt32 {
        guard configuration.virtualLPIs else { return 0 }
        return UInt32(0)
            .settingBits(4, 0, to: UInt32(configuration.vpeIDBits - 1))
            .settingBit(7, to: true)
    }
}
