#if canImport(Glibc)
import Glibc
#endif

/// The target a run fuzzes: `EVSERVER_FUZZ_TARGET` (libFuzzer owns the command line).
private let selectedTarget: FuzzTarget = {
    let name = getenv("EVSERVER_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        complain("evserver-fuzz: set EVSERVER_FUZZ_TARGET to one of: \(names)")
        exit(2)
    }
    return target
}()

/// Writes one line to standard error.
private func complain(_ message: String) {
    let line = Array((message + "\n").utf8)
    _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
}

/// libFuzzer's entry point: one input for the selected target.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selectedTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

#if !FUZZING
/// Without libFuzzer: `evserver-fuzz TARGET PATH...` replays every file under the paths (a corpus, or the
/// crash files a fuzzing run wrote) through the target, so a found bug stays a regression test.
@main
enum Replay {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name), arguments.count >= 2 else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")
            complain("usage: evserver-fuzz \(names) FILE|DIRECTORY...")
            exit(2)
        }
        var replayed = 0
        for path in arguments.dropFirst() {
            for file in files(under: path) {
                guard let bytes = contents(of: file) else {
                    complain("evserver-fuzz: cannot read \(file)")
                    exit(1)
                }
                bytes.withUnsafeBytes { target.run($0) }
                replayed += 1
            }
        }
        print("\(target.rawValue): \(replayed) inputs replayed, all properties held")
    }

    /// The regular files under `path` (itself when it is one), in name order.
    private static func files(under path: String) -> [String] {
        guard let directory = opendir(path) else { return [path] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if !name.hasPrefix(".") { names.append(name) }
        }
        return names.sorted().flatMap { files(under: path + "/" + $0) }
    }

    private static func contents(of path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count == 0 { break }
            bytes += chunk[..<count]
        }
        return bytes
    }
}
#endif
