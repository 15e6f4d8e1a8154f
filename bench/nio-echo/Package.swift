// swift-tools-version:6.0
// The best Swift peer for the benchmark: a SwiftNIO echo server (TCP and UDP on one port), one event loop.
import PackageDescription

let package = Package(
    name: "nio-echo",
    dependencies: [.package(url: "https://github.com/apple/swift-nio", from: "2.101.2")],
    targets: [
        .executableTarget(
            name: "nio-echo",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")]
        )
    ]
)
