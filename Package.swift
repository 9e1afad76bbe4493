// swift-tools-version: 6.0
import PackageDescription

// Layers, top to bottom (each depends only on those below it):
//   todo-api (executable) → TodoAPI → HTTP → Net → CLinux
// See docs/ARCHITECTURE.md.
let package = Package(
    name: "todo-api",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "todo-api", targets: ["todo-api"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .target(name: "CLinux"),
        .target(
            name: "Net",
            dependencies: ["CLinux", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "HTTP",
            dependencies: ["Net", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "TodoAPI",
            dependencies: ["HTTP", .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "todo-api",
            dependencies: [
                "TodoAPI", "HTTP", "Net",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "NetTests", dependencies: ["Net"]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP", "Net"]),
        .testTarget(name: "TodoAPITests", dependencies: ["TodoAPI", "HTTP", "Net"]),
    ],
    swiftLanguageModes: [.v6]
)
