@testable import EvServer
import Testing

/// A stand-in for a connection: the index only reads its id.
private final class Entry: IdentifiedConnection {
    let id: ConnectionID
    init(_ id: ConnectionID) { self.id = id }
}

@Suite("the connection table's id index")
struct ConnectionIndexTests {
    @Test("lookups agree with a dictionary through adds, removes and growth, ids colliding in their low bits")
    func agreesWithDictionary() {
        let index = ConnectionIndex<Entry>()
        var model: [ConnectionID: Entry] = [:]
        var generator = SystemRandomNumberGenerator()
        let base = ConnectionIDSpace.firstID(node: 5, member: 2, blocking: false)
        // Ids 64 apart share their low bits at every table size up to 64: long probe runs, and removals
        // in the middle of them (the backward shift), which a dictionary never sees.
        let candidates = (0..<300).map { base + ConnectionID($0 % 20) + 64 * ConnectionID($0 / 20) }
        for _ in 0..<20_000 {
            let id = candidates.randomElement(using: &generator)!
            if model[id] == nil, Bool.random(using: &generator) {
                let entry = Entry(id)
                index.insert(entry)
                model[id] = entry
            } else {
                index.remove(id)
                model[id] = nil
            }
            let probe = candidates.randomElement(using: &generator)!
            #expect(index[probe] === model[probe])
        }
        #expect(index.count == model.count)
        for id in candidates { #expect(index[id] === model[id]) }
        #expect(Set(index.all.map(\.id)) == Set(model.keys))
        index.removeAll()
        #expect(index.count == 0 && index.all.isEmpty && index[candidates[0]] == nil)
    }

    @Test("removing an id that is not there changes nothing")
    func removingAbsent() {
        let index = ConnectionIndex<Entry>()
        let entries = (1...5).map { Entry(ConnectionID($0 * 16)) }  // one bucket, a run of five
        for entry in entries { index.insert(entry) }
        index.remove(1000 * 16)
        index.remove(3)
        #expect(index.count == 5)
        for entry in entries { #expect(index[entry.id] === entry) }
    }
}
