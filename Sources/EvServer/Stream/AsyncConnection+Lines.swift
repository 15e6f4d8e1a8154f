extension AsyncConnection {
    /// The lines of the input (each with its `\n`, the last maybe without), until it ends.
    public var lines: Lines { Lines(connection: self) }

    /// An async sequence of the connection's input lines (`for try await line in connection.lines`).
    public struct Lines: AsyncSequence {
        /// One line, with its `\n` (the last maybe without).
        public typealias Element = [UInt8]
        let connection: AsyncConnection

        /// Reads the lines one `readLine()` at a time.
        public struct AsyncIterator: AsyncIteratorProtocol {
            let connection: AsyncConnection
            /// The next line, or `nil` at end of input.
            public mutating func next() async throws -> [UInt8]? { try await connection.readLine() }
        }

        /// An iterator over the connection's remaining lines.
        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(connection: connection) }
    }
}
