import Bus

/// The kernel's plain loads and stores to its own RAM (a queue slot, a table entry, a
/// `memset` of a fresh page), as opposed to MMIO.
///
/// They go to the bus's backing store directly (no MMIO dispatch, no bus counters), but
/// translated through the bus's RAM window: on the host the windows are identity-mapped, while
/// a guest instance of the kernel runs on a VM's bus whose guest-physical windows are backed by
/// host pages elsewhere in the store (`SystemBus.addRAM(backedAt:)`). Storing at the guest
/// physical address itself would write the HOST's page at that address. Bulk writes translate
/// page by page, since consecutive guest pages need not be consecutive host pages. An address
/// outside every RAM window falls back to the store at the same address (the host behaviour).
extension SystemBus {
    func storeAddress(_ address: UInt64, size: Int) -> UInt64 {
        ramBackingAddress(PhysicalAddress(address), size: UInt64(size)) ?? address
    }

    /// A load of `size` bytes from kernel RAM.
    func kernelRead(_ address: UInt64, size: Int) -> UInt64 {
        ram.read(storeAddress(address, size: size), size: size)
    }

    /// A store of `size` bytes to kernel RAM.
    func kernelWrite(_ address: UInt64, size: Int, value: UInt64) {
        ram.write(storeAddress(address, size: size), size: size, value: value)
    }

    /// `memcpy` into kernel RAM, split at 4 KiB page boundaries.
    func kernelWriteBytes(_ address: UInt64, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let at = address &+ UInt64(offset)
            let chunk = min(bytes.count - offset, Int(4096 - (at & 4095)))
            ram.writeBytes(storeAddress(at, size: chunk), Array(bytes[offset..<(offset + chunk)]))
            offset += chunk
        }
    }
}
