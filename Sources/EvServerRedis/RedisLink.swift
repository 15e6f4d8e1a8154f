internal import CHiredis
import EvServer

/// One hiredis connection attached to the backplane's loop (hiredis's libev adapter: two `ev_io` watchers
/// on that loop, no thread of its own). Confined to that loop's thread, as hiredis's async API is.
///
/// Its context's `data` points at this object, unretained: the session keeps every link until hiredis can
/// no longer call back for it (it retires closed links and drops them at the next connect).
final class RedisLink {
    enum Role: String { case publisher, subscriber }

    let role: Role
    unowned let session: RedisSession
    /// `nil` once closed by us or freed by hiredis: later callbacks for it are ignored.
    fileprivate(set) var context: UnsafeMutablePointer<redisAsyncContext>?
    fileprivate(set) var isConnected = false

    init(role: Role, session: RedisSession) {
        self.role = role
        self.session = session
    }

    /// Starts connecting to `address` (numeric: hiredis then does no blocking lookup) and `port` on `loop`
    /// (its thread). - Returns: why it failed at once, or `nil`.
    func open(_ address: String, port: Int, on loop: EventLoop) -> String? {
        loop.preconditionInLoop()
        guard let context = redisAsyncConnect(address, CInt(port)) else { return "out of memory" }
        guard context.pointee.err == 0 else {
            let reason = String(cString: context.pointee.errstr)
            redisAsyncFree(context)
            return reason
        }
        context.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        guard CHiredis_redisLibevAttach(loop.raw, context) == REDIS_OK else {
            redisAsyncFree(context)
            return "cannot attach to the event loop"
        }
        CHiredis_setCallbacks(context, linkConnected, linkDisconnected)
        self.context = context
        return nil
    }

    /// Frees the connection: pending commands get their callbacks with no reply (a publish counts as lost).
    /// Not from inside one of its own callbacks.
    func close() {
        guard let context else { return }
        self.context = nil
        isConnected = false
        redisAsyncFree(context)
    }

    /// Sends one command made of binary-safe arguments; `replied` gets each reply (`nil` when the
    /// connection went first).
    func command(_ arguments: [[UInt8]], replied: CHiredis_callback?) {
        guard let context else { return }
        var joined: [UInt8] = []
        for argument in arguments { joined += argument }
        let lengths = arguments.map(\.count)
        joined.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            var offset = 0
            var pointers: [UnsafePointer<CChar>?] = []
            for length in lengths {
                pointers.append(base.advanced(by: offset).assumingMemoryBound(to: CChar.self))
                offset += length
            }
            _ = redisAsyncCommandArgv(context, replied, nil, CInt(arguments.count), &pointers, lengths)
        }
    }
}

/// The link a context's callback is for, unless it was closed.
private func link(of context: UnsafePointer<redisAsyncContext>?) -> RedisLink? {
    guard let data = context?.pointee.data else { return nil }
    let link = Unmanaged<RedisLink>.fromOpaque(data).takeUnretainedValue()
    return link.context == nil ? nil : link
}

private func reason(of context: UnsafePointer<redisAsyncContext>?, otherwise: String) -> String {
    guard let context, let text = CHiredis_errstr(context) else { return otherwise }
    return String(cString: text)
}

private func linkConnected(_ context: UnsafePointer<redisAsyncContext>?, _ status: CInt) {
    guard let link = link(of: context) else { return }
    if status == REDIS_OK {
        link.isConnected = true
        link.session.linkConnected(link)
    } else {
        link.context = nil  // hiredis frees it after this callback
        link.session.linkFailed(link, reason: reason(of: context, otherwise: "connection failed"))
    }
}

private func linkDisconnected(_ context: UnsafePointer<redisAsyncContext>?, _ status: CInt) {
    guard let link = link(of: context) else { return }
    link.context = nil
    link.isConnected = false
    link.session.linkFailed(link, reason: reason(of: context, otherwise: "Redis closed the connection"))
}

/// A `PUBLISH`'s reply: none means the connection went before Redis took it (lost).
func publishReplied(_ context: UnsafeMutablePointer<redisAsyncContext>?, _ reply: UnsafeMutableRawPointer?,
                    _ privdata: UnsafeMutableRawPointer?) {
    guard reply == nil, let data = context?.pointee.data else { return }
    Unmanaged<RedisLink>.fromOpaque(data).takeUnretainedValue().session.countLost()
}

/// Every reply of the subscriber connection: confirmations and messages.
func subscriberReplied(_ context: UnsafeMutablePointer<redisAsyncContext>?, _ reply: UnsafeMutableRawPointer?,
                       _ privdata: UnsafeMutableRawPointer?) {
    guard let reply, let link = link(of: context) else { return }
    link.session.subscriberReply(reply.assumingMemoryBound(to: redisReply.self))
}
