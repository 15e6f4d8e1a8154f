import EvServer
import EvservedKit
import Logging

/// One listener's servers (one per loop), with its URL and its logger.
struct ServingListener {
    let servers: [any SocketServer]
    let transport: ListenerSpec.Transport
    let logger: Logger
    /// The program this listener runs per connection (`--exec`), if it does.
    let exec: ExecService?
    var url: String { ListenerSpec.url(for: servers[0].localAddress, transport: transport) }
    /// Whether closing the listener removes its Unix socket file: it bound it, or took it over in a reload.
    var ownsSocketFile: Bool {
        let configuration = servers[0].configuration
        return configuration.address.isUnix && (configuration.boundSocket == nil || configuration.ownsBoundSocketFile)
    }

    /// Makes the servers of `spec` as the flags say; `boundSocket` serves a socket handed down by a
    /// supervisor instead of binding. `worker` is the worker's number, for the log lines. `backplane`:
    /// `--registry`'s, shared by every stream listener.
    init(
        _ spec: ListenerSpec, command: Evserved, boundSocket: CInt?, worker: String?,
        backplane: (any ConnectionBackplane)?
    ) throws(ServerError) {
        let (service, mode) = command.listeners.serving(spec)
        var configuration = command.configuration(for: spec)
        configuration.boundSocket = boundSocket
        // A reload's new process takes over the socket files its predecessor would have removed.
        configuration.ownsBoundSocketFile = boundSocket.map(Reload.ownedDescriptors.contains) ?? false
        // Every line about this listener names its bound address (the real port once bound, not the 0
        // asked).
        let name = ListenerName(spec.address)
        var logger = Logger(
            label: "evserved",
            metadataProvider: Logger.MetadataProvider { ["evserver.listener": "\(name.value)"] }
        )
        if let worker { logger[metadataKey: "worker"] = "\(worker)" }
        exec = ExecService(for: spec, options: command.exec, logger: logger)
        logger[metadataKey: "evserver.service"] = "\(exec == nil ? service.rawValue : "exec")"
        let loops = command.listeners.loops(for: mode)
        var hooks = Self.hooks(logger, command: command, worker: worker)
        hooks.configureConnection = command.exec.banner.map(Self.sendBanner)
        switch spec.transport {
        case .stream:
            servers = try ServerGroup.streamServers(
                loops: loops, configuration: configuration,
                handler: exec?.handler(for: mode) ?? service.handler(for: mode), hooks: hooks, logger: logger,
                backplane: backplane
            )
        case .datagram:
            servers = try ServerGroup.datagramServers(
                loops: loops, configuration: configuration, handler: service.datagramHandler(for: mode),
                hooks: hooks, logger: logger
            )
        }
        name.value = servers[0].localAddress
        transport = spec.transport
        self.logger = logger
    }

    /// Handler errors: a client that goes away or idles out is routine (debug); anything else a warning.
    /// `--log-connections` adds the line per closed connection.
    private static func hooks(_ logger: Logger, command: Evserved, worker: String?) -> ServerHooks {
        ServerHooks(handleError: { error, client in
            let routine = (error as? ConnectionError).map {
                [.peerClosed, .timedOut, .replyDropped].contains($0.code)
            } ?? false
            logger.log(
                level: routine ? .debug : .warning,
                "handler failed",
                metadata: ["connection.peer": "\(client)", "error": "\(error)"]
            )
        }, connectionClosed: Observability.connectionLog(options: command.observability, worker: worker))
    }

    /// The one notice a listener gets once it serves: what it serves and how.
    func logStarted() {
        let configuration = servers[0].configuration
        logger.notice(
            "listening",
            metadata: [
                "listener": "\(url)",
                "evserver.mode": "\(configuration.mode)",
                "loops": "\(servers.count)",
                "idle-timeout": "\(configuration.idleTimeout.map { "\($0)" } ?? "none")",
                "send-buffer": "\(configuration.sendBufferSize.map { "\($0)" } ?? "system")",
            ]
        )
    }

    /// SIGUSR1: one line with the listener's figures so far.
    func logFigures() {
        var figures: Logger.Metadata = ["listener": "\(url)"]
        let configuration = servers[0].configuration
        let streams = servers.compactMap { $0 as? StreamServer }
        let datagrams = servers.compactMap { $0 as? DatagramServer }.map(\.statistics)
        if !streams.isEmpty {
            figures["connections-accepted"] = "\(streams.map(\.connectionsAccepted).reduce(0, +))"
            figures["connections-open"] = "\(streams[0].connectionsOpen)"  // counted across the group
            if let exec { figures["exec-children"] = "\(exec.liveChildren)" }
            if configuration.proxyProtocol != nil { figures.merge(ProxyFigures(streams).metadata) { $1 } }
        }
        if !datagrams.isEmpty {
            figures["datagrams-handled"] = "\(datagrams.map(\.handled).reduce(0, +))"
            let dropped = datagrams.map { $0.oversized + $0.rejected + $0.droppedPoolFull + $0.droppedNoThread }
            figures["datagrams-dropped"] = "\(dropped.reduce(0, +))"
        }
        logger.notice("figures", metadata: figures)
    }

    /// With several loops, the share each served (connections or datagrams), for the log at exit.
    func logShares() {
        guard servers.count > 1 else { return }
        let shares = servers.map { server -> String in
            switch server {
            case let stream as StreamServer: return String(stream.connectionsAccepted)
            case let datagram as DatagramServer: return String(datagram.statistics.handled)
            default: return "0"
            }
        }
        logger.notice(
            "served per loop",
            metadata: ["listener": "\(url)", "per-loop": "\(shares.joined(separator: " "))"]
        )
    }
}
