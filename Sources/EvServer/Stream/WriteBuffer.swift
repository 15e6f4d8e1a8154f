/// Bytes accepted for sending that the kernel has not taken yet, oldest first.
///
/// Appends copy; `consume` advances a head index and compacts only when the dead prefix is at least half of
/// the storage, so a steady stream costs amortised O(1) per byte and no allocation once warmed up.
struct WriteBuffer {
    private var storage: [UInt8] = []
    private var head = 0

    var count: Int { storage.count - head }
    var isEmpty: Bool { head == storage.count }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if head > 0 && head >= storage.count / 2 {
            storage.removeFirst(head)
            head = 0
        }
        storage.append(contentsOf: bytes)
    }

    /// Calls `body` with the unsent bytes; `body` returns how many were sent, which are dropped.
    mutating func send(_ body: (UnsafeRawBufferPointer) throws -> Int) rethrows {
        let sent = try storage.withUnsafeBytes { bytes in
            try body(UnsafeRawBufferPointer(rebasing: bytes[head...]))
        }
        head += sent
        if head == storage.count {
            // Keep a modest buffer for the next burst; give back a large one.
            storage.removeAll(keepingCapacity: storage.capacity <= 64 * 1024)
            head = 0
        }
    }

    /// Drops every byte and the storage (a buffer that never held any is left alone: no release).
    mutating func removeAll() {
        if storage.capacity != 0 { storage = [] }
        head = 0
    }
}
