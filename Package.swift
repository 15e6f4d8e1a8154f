// swift-tools-version:6.0
import PackageDescription

/// Settings shared by every Swift target: Swift 6 language mode (strict concurrency) and explicit `any`.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "EvServer",
    products: [
        .library(name: "EvServer", targets: ["EvServer"]),
        .library(name: "EvServerRedis", targets: ["EvServerRedis"]),
        .executable(name: "evserved", targets: ["evserved"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Metrics: the library records through swift-metrics; evserved serves them in Prometheus' text format.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Only for `make docs` (the `generate-documentation` command); nothing links it.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // MARK: - C
        // libev has no pkg-config file on Debian; the module map links `ev` itself.
        .systemLibrary(name: "CLibEv", providers: [.apt(["libev-dev"])]),

        // MARK: - Library
        .target(
            name: "EvServer",
            dependencies: [
                "CLibEv",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: - Redis backplane (its own product: a library user who does not want Redis does not link it)
        // hiredis has a pkg-config file, but its libev adapter header needs ev.h, which has none; the module
        // map links `hiredis` itself, like CLibEv.
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        .target(
            name: "EvServerRedis",
            dependencies: ["EvServer", "CHiredis", "CLibEv", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),

        // MARK: - Daemon
        // What the daemon serves and how its command line reads, apart from the process itself, so that
        // tests and the fuzzer can use it.
        .target(
            name: "EvservedKit",
            dependencies: ["EvServer", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "evserved",
            dependencies: [
                "EvServer",
                "EvservedKit",
                "EvServerRedis",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: - Fuzzing
        // Fuzz targets for every parser of client or command-line input. A normal build replays a corpus
        // (`evserver-fuzz TARGET FILE|DIR...`); built with `--sanitize=fuzzer -Xswiftc -DFUZZING` (see the
        // Makefile's `fuzz` target) libFuzzer drives it.
        .executableTarget(
            name: "evserver-fuzz",
            dependencies: ["EvServer", "EvservedKit"],
            swiftSettings: swiftSettings
        ),

        // MARK: - Examples
        .executableTarget(
            name: "chat-example",
            dependencies: ["EvServer"],
            path: "Examples/Chat",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "upper-example",
            dependencies: ["EvServer"],
            path: "Examples/Upper",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "timestamp-example",
            dependencies: ["EvServer"],
            path: "Examples/Timestamp",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "threaded-example",
            dependencies: ["EvServer"],
            path: "Examples/Threaded",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "pool-example",
            dependencies: ["EvServer"],
            path: "Examples/Pool",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "udp-example",
            dependencies: ["EvServer"],
            path: "Examples/UDP",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "udp-client-example",
            dependencies: ["EvServer"],
            path: "Examples/UDPClient",
            swiftSettings: swiftSettings
        ),

        // MARK: - Tests
        .testTarget(
            name: "EvServerTests",
            dependencies: [
                "EvServer", "EvservedKit", "EvServerRedis",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
