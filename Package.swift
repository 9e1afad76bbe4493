// swift-tools-version: 6.0
import PackageDescription

// Layers, top to bottom (each depends only on those below it):
//   todo-api (executable) → TodoAPI → Security → HTTP, Postgres → Observability → Net → CLinux
//   TodoAPI → AWS → HTTPClient → Net (AWS knows neither HTTP serving nor PostgreSQL; TodoAPI
//   joins AWS's credentials to Postgres's connections).
//   (HTTP and Postgres are siblings: neither knows the other; Security knows HTTP, not Postgres.)
//   JSON (the parser) has no dependencies; TodoAPI reads request bodies with it, Postgres DB_SECRET.
// No Foundation anywhere, and no command-line package: see Sources/TodoAPI/ServiceCommandLine.swift.
// See docs/ARCHITECTURE.md.
// Release builds put each function in its own section, and the linker places the functions the
// service runs (Sources/todo-api/link/symbol-order.txt, made by scripts/symbol-order) next to each other:
// the kernel maps a binary's code 64 KiB around each page fault, so scattered hot functions kept
// most of the 9 MB of code resident. docs/BENCHMARKS.md, "Memory".
// Release builds also skip the dynamic exclusivity checks (`swift_beginAccess` on every mutating
// access to a class's stored property: 13 % of the instructions of a `GET /health`, 7 % of a
// `GET /todos/{id}`, callgrind). Debug builds keep them, and the whole Swift test suite (unit,
// live and drill tests) runs in debug, so a violation on any tested path still traps there; the
// static checks stay on everywhere. docs/BENCHMARKS.md, "2026-12-06, afternoon".
let packedCode: [SwiftSetting] = [.unsafeFlags(["-function-sections", "-enforce-exclusivity=unchecked"], .when(platforms: [.linux], configuration: .release))]
let packageDirectory = String(#filePath.dropLast("/Package.swift".count))

let package = Package(
    name: "todo-api",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "todo-api", targets: ["todo-api"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .target(name: "CLinux"),
        .target(name: "JSON", swiftSettings: packedCode),
        // libpq and libcrypto through pkg-config. The scripts and the Dockerfile put
        // scripts/libpq-static's directory first on PKG_CONFIG_PATH: a static libpq without
        // GSSAPI/LDAP and static OpenSSL. A plain `swift build` links Debian's shared libraries.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .target(
            name: "Net",
            dependencies: ["CLinux", .product(name: "Logging", package: "swift-log")],
            swiftSettings: packedCode
        ),
        .target(
            name: "Observability",
            dependencies: ["Net", .product(name: "Logging", package: "swift-log")],
            swiftSettings: packedCode
        ),
        .target(
            name: "HTTP",
            dependencies: ["Net", "Observability", .product(name: "Logging", package: "swift-log")],
            swiftSettings: packedCode
        ),
        .target(
            name: "Postgres",
            dependencies: ["Net", "JSON", "CLibPQ", "COpenSSL", .product(name: "Logging", package: "swift-log")],
            swiftSettings: packedCode
        ),
        // A small HTTPS client (OpenSSL, our sockets) for calls to AWS and identity providers.
        .target(
            name: "HTTPClient",
            dependencies: ["Net", "COpenSSL"],
            swiftSettings: packedCode
        ),
        // SigV4, AWS credentials (environment, ECS container endpoint), Secrets Manager, RDS IAM tokens.
        .target(
            name: "AWS",
            dependencies: ["HTTPClient", "JSON", "Net", "Observability", "COpenSSL", .product(name: "Logging", package: "swift-log")],
            swiftSettings: packedCode
        ),
        // Bearer tokens (JWS, JWKS) and the ALB's x-amzn-oidc-data; knows no HTTP serving.
        .target(
            name: "Auth",
            dependencies: ["AWS", "HTTPClient", "JSON", "Net", "COpenSSL", .product(name: "Logging", package: "swift-log")],
            swiftSettings: packedCode
        ),
        .target(
            name: "Security",
            dependencies: ["HTTP", "Net", .product(name: "Logging", package: "swift-log")],
            swiftSettings: packedCode
        ),
        .target(
            name: "TodoAPI",
            dependencies: ["HTTP", "JSON", "Postgres", "Observability", "Security", "AWS", "Auth", .product(name: "Logging", package: "swift-log")],
            swiftSettings: packedCode
        ),
        .executableTarget(
            name: "todo-api",
            dependencies: [
                "TodoAPI", "HTTP", "Postgres", "Net", "Observability", "Security", "AWS", "CLinux",
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["link"],
            swiftSettings: packedCode,
            // lld with packed relative relocations (DT_RELR, glibc 2.36+: bookworm): the binary's
            // 58,800 RELATIVE relocations took 1.4 MB of .rela.dyn, read at every start and then
            // resident; as RELR they take 14 KB. The executable stays position-independent (ASLR).
            // The symbol order: see `packedCode`; a name it lists that no longer exists is skipped.
            // link/libstdc++.a (a link to GCC 12's, Debian 12's libstdc++-12-dev, which the
            // toolchain needs anyway): searched before the system directories, so the `-lstdc++` of
            // the Swift runtime links the few functions it uses into the binary instead of mapping
            // libstdc++.so, whose symbol tables the dynamic loader reads at every start (0.9 MB
            // resident). link/libgcc_s.a is GCC's static unwinder (libgcc_eh.a) under the name the
            // driver's `-lgcc_s` looks for: the same pair as `-static-libstdc++ -static-libgcc`,
            // which the Swift driver's own `-lstdc++ -lgcc_s` would otherwise override. Where those
            // files do not exist, the link takes the shared libraries as before.
            // docs/BENCHMARKS.md, "Memory". `--no-export-dynamic` (after the driver's
            // `-export-dynamic`, so it wins): the executable's 3,269 public Swift symbols stay out
            // of its dynamic symbol table; the loader read .dynsym/.dynstr (244 KB, resident from
            // start), and nothing looks the service's symbols up at run time (no dlsym; the
            // backtracer reads .symtab). Start-up RSS 8.5 → 8.1 MB. `max-page-size=65536`: segments
            // aligned to 64 KiB, which the kernel also makes the load address's alignment. A fault
            // on the binary maps the 64 KiB around it (fault-around), and with a load address
            // random to the 4 KiB those windows fell differently at every start: the code's
            // resident size was 3.30-3.63 MB from run to run of the same binary, now 3.30 every
            // time (docs/BENCHMARKS.md, "Memory"). ASLR keeps 24 of its 28 bits for the executable.
            linkerSettings: [
                .unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"], .when(platforms: [.linux])),
                .unsafeFlags(["-Xlinker", "--symbol-ordering-file=\(packageDirectory)/Sources/todo-api/link/symbol-order.txt",
                              "-Xlinker", "--no-warn-symbol-ordering", "-L\(packageDirectory)/Sources/todo-api/link",
                              "-Xlinker", "--no-export-dynamic", "-Xlinker", "-z", "-Xlinker", "max-page-size=65536"],
                             .when(platforms: [.linux], configuration: .release)),
            ]
        ),
        // Benchmark driver for scripts/bench (not shipped in the image).
        .executableTarget(
            name: "pool-bench",
            dependencies: ["Postgres", "Net", .product(name: "Logging", package: "swift-log")]
        ),
        // Real-socket client and server for the live tests of several modules.
        .target(
            name: "TestSupport",
            dependencies: ["HTTP", "Net", "Postgres", .product(name: "Logging", package: "swift-log")],
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "NetTests", dependencies: ["Net"]),
        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "ObservabilityTests", dependencies: ["Observability"]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP", "Net", "TestSupport"]),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "Net", "CLibPQ", "TestSupport"]),
        .testTarget(name: "SecurityTests", dependencies: ["Security", "HTTP", "Net", "TestSupport"], exclude: ["Corpus"]),
        .testTarget(name: "HTTPClientTests", dependencies: ["HTTPClient", "Net"]),
        .testTarget(name: "AWSTests", dependencies: ["AWS", "HTTPClient", "Net", "Observability"], exclude: ["Fixtures"]),
        .testTarget(name: "AuthTests", dependencies: ["Auth", "JSON", "Net", "COpenSSL"]),
        .testTarget(name: "TodoAPITests", dependencies: ["TodoAPI", "HTTP", "Postgres", "Net", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
