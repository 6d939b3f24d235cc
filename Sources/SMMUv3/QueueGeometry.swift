/// Index arithmetic of an SMMU circular queue (SMMUv3 §3.5 "Circular queues", §6.3.27–28).
///
/// A PROD or CONS register holds an index of `log2Size` bits with the wrap flag immediately
/// above it, at bit `log2Size` (QS). The queue is empty when index and wrap are both equal, and
/// full when the indices are equal and the wrap flags differ. Bits above the wrap flag are
/// ignored ("might be stored but has no other effect", §6.3.27), so every function here masks
/// them off first. `log2Size` is the *effective* size: *_BASE.LOG2SIZE capped at the IDR1
/// maximum (§6.3.26 "any use of the value of this field is capped at … CMDQS").
public struct QueueGeometry: Hashable, Sendable {
    /// log2 of the number of entries, 0…19.
    public let log2Size: Int

    /// Caps `log2Size` to 0…19 (the widest PROD.WR/CONS.RD field, §6.3.27).
    public init(log2Size: Int) {
        self.log2Size = min(max(log2Size, 0), 19)
    }

    /// The number of entries, 2^log2Size.
    @inlinable public var entryCount: UInt32 { 1 &<< UInt32(log2Size) }

    /// Mask of the index bits [QS-1:0].
    @inlinable public var indexMask: UInt32 { entryCount &- 1 }

    /// Mask of the index and the wrap flag, bits [QS:0].
    @inlinable public var pointerMask: UInt32 { (entryCount &<< 1) &- 1 }

    /// The entry index a pointer names.
    @inlinable public func index(_ pointer: UInt32) -> UInt32 { pointer & indexMask }

    /// The wrap flag of a pointer.
    @inlinable public func wrap(_ pointer: UInt32) -> Bool { pointer & entryCount != 0 }

    /// Index and wrap equal (§3.5).
    @inlinable public func isEmpty(producer: UInt32, consumer: UInt32) -> Bool {
        producer & pointerMask == consumer & pointerMask
    }

    /// Index equal, wrap different (§3.5; CMDQ_PROD "space in the queue" condition inverted).
    @inlinable public func isFull(producer: UInt32, consumer: UInt32) -> Bool {
        (producer ^ consumer) & pointerMask == entryCount
    }

    /// The pointer after one entry: the index increments and, on passing the end, wraps to 0
    /// and toggles the wrap flag. Adding 1 to the QS+1-bit field does exactly that.
    @inlinable public func advanced(_ pointer: UInt32) -> UInt32 {
        (pointer &+ 1) & pointerMask
    }

    /// How many entries lie between `consumer` and `producer` (0…entryCount).
    @inlinable public func occupancy(producer: UInt32, consumer: UInt32) -> UInt32 {
        ((producer & pointerMask) &- (consumer & pointerMask)) & pointerMask
    }
}
