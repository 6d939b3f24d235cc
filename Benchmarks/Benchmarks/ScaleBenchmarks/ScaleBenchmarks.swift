import Benchmark
import Bus
import GIC
import LinuxKernel
import Machine
import PCI
import Testbed

/// Costs that must grow linearly with the size of the setup: one whole bring-up per iteration,
/// so the time per device (or page) is the median divided by the size, and a flat per-unit time
/// across sizes is what linear means.
///
/// - `Scale.bareMetal.devices.N` — on `qemu-virt` brought up by `BareMetal`: N MSI-X functions
///   with 64 vectors each attached and enumerated (BAR, Memory Space, Bus Master, MSI-X on),
///   each DeviceID mapped on the ITS (MAPD + 64 × MAPTI/INV), every table entry written, and
///   the last vector of the last device raised and delivered (checked). N = 1, 16, 256, 896:
///   896 × 64 = 57 344 LPIs fills the preset's LPI space (16 INTID bits, GICD_TYPER.IDbits = 15: INTIDs
///   8192…65535), so 4096 devices × 64 vectors (262 144 LPIs) cannot exist on it: what stops
///   them is the GIC's INTID width (IDbits, which bounds GICR_PROPBASER.IDbits and so the LPI
///   tables), not the ITS (its DeviceID and EventID widths take 4096 × 64 easily).
/// - `Scale.bareMetal.idbits20.devices.N` — the same bring-up on the same `qemu-virt` tree
///   with the GIC built with 20 INTID bits (`GICConfiguration.lpiIDBits`, the model's maximum;
///   the architecture allows up to 24: GICD_TYPER.IDbits ≤ 23, GICv3 IHI 0069):
///   LPIs 8192…1 048 575, with PROPBASER.IDbits = 19. N = 896, 4096 devices × 64 vectors.
/// - `Scale.iommufd.ioasMap.pages.N` — a booted host kernel's iommufd, one IOAS without domains,
///   N IOMMU_IOAS_MAP calls of one 4 KiB page each at consecutive fixed IOVAs (the same user
///   page every time, as aliasing is allowed), N = 1 K, 16 K, 256 K, 1 M.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.cpuTotal, .wallClock], maxDuration: .seconds(20), maxIterations: 3)

    for devices in [1, 16, 256, 896] {
        Benchmark("Scale.bareMetal.devices.\(devices)x64") { benchmark in
            for _ in benchmark.scaledIterations { blackHole(ScaleRig.bareMetal(devices: devices, vectors: 64)) }
        }
    }

    for devices in [896, 4096] {
        Benchmark("Scale.bareMetal.idbits20.devices.\(devices)x64") { benchmark in
            for _ in benchmark.scaledIterations { blackHole(ScaleRig.bareMetal(devices: devices, vectors: 64, idBits: 20)) }
        }
    }

    for pages in [1 << 10, 1 << 14, 1 << 18, 1 << 20] {
        Benchmark("Scale.iommufd.ioasMap.pages.\(pages)") { benchmark in
            for _ in benchmark.scaledIterations { blackHole(ScaleRig.ioasMap(pages: pages)) }
        }
    }
}

enum ScaleRig {
    /// Brings up `devices` functions with `vectors` vectors each on a GIC with `idBits` INTID
    /// bits (the preset's 16, or more); returns the delivered INTID.
    static func bareMetal(devices: Int, vectors: Int, idBits: Int = 16) -> UInt32 {
        let preset = MachinePreset.qemuVirt
        var options = preset.options
        options.gic.lpiIDBits = idBits
        let machine = try! Machine(topology: preset.topology(), options: options, name: preset.rawValue)
        guard devices * vectors <= (1 << idBits) - Int(BareMetal.firstLPI) else {
            fatalError("\(devices) × \(vectors) LPIs exceed \(idBits) INTID bits")
        }
        let bareMetal = try! BareMetal(machine: machine)
        try! bareMetal.enableLPIs(idBits: idBits)
        try! bareMetal.enableITS()
        let gic = machine.gic!
        for cpu in gic.cpuInterfaces { cpu.recordsDeliveries = false }
        let doorbell: UInt64 = 0x0809_0040
        var last: PCIFunction?
        for index in 0..<devices {
            // RIDs 00:01.0 upwards (devfn 8 + index): bus 0 then buses 1, 2, … (256 devfns each).
            let rid = RequesterID(UInt16(8 + index))
            let function = try! bareMetal.addMSIXEndpoint(requesterID: rid, vectors: vectors,
                                                          barAddress: 0x1000_0000 + UInt64(index) * 0x4000)
            function.isLogging = false
            let first = BareMetal.firstLPI + UInt32(index * vectors)
            try! bareMetal.mapDevice(DeviceID(UInt32(rid.rawValue)), events: vectors, firstINTID: first)
            for vector in 0..<vectors {
                try! bareMetal.writeMSIXEntry(function, vector: vector, address: doorbell, data: UInt32(vector))
            }
            last = function
        }
        _ = last!.raise(vector: vectors - 1)
        let intid = gic.acknowledge(cpu: 0)
        guard intid == BareMetal.firstLPI + UInt32(devices * vectors - 1) else { fatalError("last vector not delivered: \(intid)") }
        gic.endOfInterrupt(cpu: 0, intid: intid)
        return intid
    }

    /// `pages` single-page IOMMU_IOAS_MAPs; returns the IOAS's area count (checked).
    static func ioasMap(pages: Int) -> Int {
        let machine = try! MachinePreset.qemuVirt.makeMachine()
        let host = try! HostMachine(machine).bootHost()
        let process = UserProcess(kernel: host, name: "vmm")
        let iommufd = host.openIOMMUFD()
        iommufd.process = process
        let userVA = try! process.mmap(length: 0x1000)
        let ioas = try! iommufd.ioasAlloc()
        for page in 0..<pages {
            _ = try! iommufd.ioasMap(ioasID: ioas, flags: [.fixedIOVA, .writeable, .readable], userVA: userVA, length: 0x1000,
                                     iova: 0x1_0000_0000 + UInt64(page) * 0x1000)
        }
        let areas = (iommufd.object(ioas) as! IOMMUFDIOAS).iopt.areas.count
        guard areas == pages else { fatalError("\(areas) areas for \(pages) maps") }
        return areas
    }
}
