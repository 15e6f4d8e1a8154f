import ArgumentParser
import EvServer
import EvservedKit

#if canImport(Glibc)
import Glibc
#endif

/// One listener to serve with its socket settled: to bind, inherited (`systemd://`, `fd://N`: adopted, its
/// kind and address read from the socket) or handed down by a supervisor (`EVSERVED_LISTEN_FDS`).
struct ResolvedListener {
    let spec: ListenerSpec
    /// The socket to serve instead of binding `spec.address`; `nil`: this process binds it (and removes
    /// its Unix socket file at exit).
    let socket: CInt?
    /// The argument's `?service=...&mode=...` part, for a worker's `--listen`.
    let query: String
    /// The Unix socket file this process binds, and removes at exit (never an inherited socket's).
    var ownSocketFile: String? { socket == nil ? spec.address.unixPath : nil }

    /// The listeners of `arguments`, in order; a `systemd://` stands for every socket it adopts. Reads (and
    /// removes) `LISTEN_*` whether or not a listener inherits. Refuses with a `FlagValueError` (exit 1):
    /// `systemd://` with no socket passed or none left, an unknown name, a descriptor adopted twice, or
    /// one evserved cannot serve (`InheritedSocket.inspect`).
    static func resolve(_ arguments: [ListenerArgument]) throws(FlagValueError) -> [ResolvedListener] {
        let handedDown = WorkerSupervisor.handedDownSockets()
        let passed = SystemdSockets.take()
        var claimed: [Int: [CInt]] = [:]  // argument index: descriptors
        // Names and numbers first; then an unnamed systemd:// takes the rest.
        for (index, argument) in arguments.enumerated() {
            switch argument.inherited?.origin {
            case .systemd(let name?)?:
                let named = passed.sockets.filter { $0.name == name }.map(\.descriptor)
                guard !named.isEmpty else { throw Self.noSocket(named: name, argument.text, passed) }
                claimed[index] = named
            case .descriptor(let descriptor)?:
                claimed[index] = [descriptor]
            default:
                break
            }
        }
        for (index, argument) in arguments.enumerated() where argument.inherited?.origin == .systemd(name: nil) {
            let taken = Set(claimed.values.joined())
            let rest = passed.sockets.map(\.descriptor).filter { !taken.contains($0) }
            guard !rest.isEmpty else { throw Self.noSocket(named: nil, argument.text, passed) }
            claimed[index] = rest
        }
        try checkNoneTwice(claimed, arguments)
        var listeners: [ResolvedListener] = []
        for (index, argument) in arguments.enumerated() {
            let query = argument.text.firstIndex(of: "?").map { String(argument.text[$0...]) } ?? ""
            guard let inherited = argument.inherited else {
                let socket = index < handedDown.count ? handedDown[index] : nil
                listeners.append(ResolvedListener(spec: argument.spec!, socket: socket, query: query))
                continue
            }
            for descriptor in claimed[index] ?? [] {
                let (transport, address) = try InheritedSocket.inspect(descriptor, origin: argument.text)
                let spec = inherited.spec(transport: transport, address: address)
                listeners.append(ResolvedListener(spec: spec, socket: descriptor, query: query))
            }
        }
        return listeners
    }

    private static func checkNoneTwice(
        _ claimed: [Int: [CInt]], _ arguments: [ListenerArgument]
    ) throws(FlagValueError) {
        var owner: [CInt: Int] = [:]
        for (index, descriptors) in claimed.sorted(by: { $0.key < $1.key }) {
            for descriptor in descriptors {
                if let first = owner[descriptor] {
                    throw FlagValueError(
                        """
                        --listen '\(arguments[index].text)': descriptor \(descriptor) is already adopted by \
                        --listen '\(arguments[first].text)': give each socket to one listener
                        """
                    )
                }
                owner[descriptor] = index
            }
        }
    }

    private static func noSocket(named name: String?, _ text: String, _ passed: SystemdSockets) -> FlagValueError {
        if let absence = passed.absence {
            return FlagValueError(
                """
                --listen '\(text)': systemd passed no sockets (\(absence)): start evserved from a .socket unit \
                (or systemd-socket-activate), or listen on an address
                """
            )
        }
        let names = passed.sockets.map(\.name).joined(separator: ", ")
        guard let name else {
            return FlagValueError("--listen '\(text)': every socket systemd passed is taken by another --listen")
        }
        return FlagValueError(
            """
            --listen '\(text)': no socket named '\(name)' among those systemd passed (names: \(names)): set \
            FileDescriptorName=\(name) in the .socket unit, or use systemd:// for all
            """
        )
    }
}

extension Evserved {
    /// The listeners to serve, checked before anything is bound: inherited sockets adopted, and with
    /// `--user`, the files the daemon removes at exit removable by that user. On a problem: one line, exit 1.
    func resolvedListeners() throws -> [ResolvedListener] {
        let resolved: [ResolvedListener]
        do {
            resolved = try ResolvedListener.resolve(listeners.listen)
        } catch {
            Self.printError("evserved: error: \(error)")
            throw ExitCode.failure
        }
        try privileges.checkRemovable(resolved.compactMap(\.ownSocketFile) + [pidFile].compactMap { $0 })
        return resolved
    }
}
