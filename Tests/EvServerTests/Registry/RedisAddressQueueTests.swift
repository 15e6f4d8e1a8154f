@testable import EvServerRedis
import Testing

@Suite("the Redis backplane's addresses for one connect attempt")
struct RedisAddressQueueTests {
    @Test("addresses come in the lookup's order, each once; the attempt fails only when none is left")
    func order() {
        var queue = RedisAddressQueue(["::1", "127.0.0.1", "::1", "10.0.0.5"])
        #expect(queue.current == nil)
        #expect(queue.next() == "::1")
        queue.failCurrent("Connection refused")
        #expect(queue.next() == "127.0.0.1")
        #expect(queue.current == "127.0.0.1")
        queue.failCurrent("Connection refused")
        #expect(queue.next() == "10.0.0.5")
        queue.failCurrent("timed out")
        #expect(queue.next() == nil)
        #expect(queue.current == nil)
        #expect(queue.reason == "::1: Connection refused; 127.0.0.1: Connection refused; 10.0.0.5: timed out")
    }

    @Test("a lookup without addresses fails the attempt at once, and says so")
    func empty() {
        var queue = RedisAddressQueue([])
        #expect(queue.next() == nil)
        #expect(queue.reason == "the host name has no address")
    }

    @Test("numeric hosts skip the resolver; names do not")
    func numeric() {
        #expect(RedisResolver.numeric("127.0.0.1") == "127.0.0.1")
        #expect(RedisResolver.numeric("::1") == "::1")
        #expect(RedisResolver.numeric("fe80::1") == "fe80::1")
        #expect(RedisResolver.numeric("localhost") == nil)
        #expect(RedisResolver.numeric("10.0.0") == nil)
    }

    @Test("a lookup gives numeric addresses; a bounded one answers a literal without a thread")
    func lookup() throws {
        let found = try RedisResolver.lookup(RedisURL(host: "localhost", port: 6379)).get()
        #expect(!found.isEmpty && found.allSatisfy { RedisResolver.numeric($0) != nil })
        let literal = try RedisResolver.resolve(RedisURL(host: "::1", port: 6379), within: 0).get()
        #expect(literal == ["::1"])
        let bounded = try RedisResolver.resolve(RedisURL(host: "localhost", port: 6379), within: 5).get()
        #expect(bounded == found)
    }
}
