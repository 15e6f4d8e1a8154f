#if canImport(Glibc)
import Glibc
#endif

// Handlers that talk to each other, in the blocking modes: a blocking connection is in the server's registry
// too, so `StreamServer.send(_:to:)` and `broadcast(_:topic:except:)` reach it, as socketserver tutorials
// reach their clients with `sendall` from another client's thread.

extension StreamRequest {
    /// Joins `topic`: `StreamServer.broadcast(_:topic:except:)` reaches this connection.
    public func join(topic: String) { server.blocking.join(id, topic: topic) }

    /// Leaves `topic`.
    public func leave(topic: String) { server.blocking.leave(id, topic: topic) }

    /// Writes a message another thread sends to this connection, whole, between the handler's own writes.
    /// Waits at most `deliveryTimeout` for the client to take it; a message it does not take in time, or a
    /// closed connection, drops it. Any thread. - Returns: whether it was sent.
    func deliver(_ bytes: [UInt8]) -> Bool {
        writeLock.withLock { _ in
            guard socket.isOpen else { return false }
            let deadline = MonotonicClock.now + deliveryTimeout
            return bytes.withUnsafeBytes { bytes in
                var sent = 0
                while sent < bytes.count {
                    let remaining = UnsafeRawBufferPointer(rebasing: bytes[sent...])
                    // Never waits in `send`: the handler may have left the socket in blocking mode.
                    let written: Int?
                    do {
                        written = try socket.write(remaining, neverWait: true)
                    } catch {
                        return false
                    }
                    if let written {
                        sent += written
                        bytesSent &+= written
                        continue
                    }
                    let left = deadline - MonotonicClock.now
                    let ready = left > 0 ? (try? socket.poll(events: CInt(POLLOUT), timeout: left)) ?? false : false
                    guard ready else { return false }
                }
                return true
            }
        }
    }
}
