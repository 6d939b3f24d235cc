/// `DMA_BIT_MASK(n)`.
@inlinable
public func dmaBitMask(_ bits: Int) -> UInt64 {
    bits >= 64 ? .max : (UInt64(1) << UInt64(max(bits, 0))) &- 1
}
