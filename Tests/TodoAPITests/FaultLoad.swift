import Glibc
import Net
import Synchronization
import TestSupport

/// Concurrent keep-alive clients over real sockets, each sending requests in a loop until
/// stopped, recording every exchange: what outside drills do, as a test.
final class FaultLoad: @unchecked Sendable {
    struct Exchange {
        let kind: String
        let start: MonotonicTime
        let end: MonotonicTime
        /// 0: no response (the connection failed or the client's 30 s receive timeout passed).
        let status: Int
        var latency: TimeSpan { end - start }
    }

    struct Request {
        let kind: String
        let method: String
        let path: String
        var json: String? = nil
    }

    private let running = Atomic<Bool>(true)
    private let active = Atomic<Int>(0)
    private let exchanges = Mutex<[Exchange]>([])

    /// `next(client, iteration)` says what client `client` sends next.
    init(server: TodoServer, clients: Int, next: @escaping @Sendable (Int, Int) -> Request) {
        for client in 0..<clients {
            active.add(1, ordering: .relaxed)
            spawnThread { [self] in
                defer { active.subtract(1, ordering: .relaxed) }
                var connection: TestClient?
                var iteration = 0
                while running.load(ordering: .relaxed) {
                    let request = next(client, iteration)
                    iteration += 1
                    let start = MonotonicTime.now()
                    var status = 0
                    do {
                        if connection == nil { connection = try TestClient(port: server.port, receiveTimeout: .seconds(30)) }
                        let response = try server.send(request.method, request.path, json: request.json, on: connection!)
                        status = response.status
                        if response.header("Connection") == "close" { connection = nil }
                    } catch {
                        connection = nil
                    }
                    let exchange = Exchange(kind: request.kind, start: start, end: MonotonicTime.now(), status: status)
                    exchanges.withLock { $0.append(exchange) }
                    if status == 0 { usleep(10_000) }
                }
            }
        }
    }

    /// Stops the clients, waits for their last exchanges, and returns every exchange.
    func stop() -> [Exchange] {
        running.store(false, ordering: .relaxed)
        while active.load(ordering: .relaxed) > 0 { usleep(10_000) }
        return exchanges.withLock { $0 }
    }

    static func percentile(_ exchanges: [Exchange], _ p: Double) -> TimeSpan {
        let sorted = exchanges.map(\.latency).sorted()
        guard !sorted.isEmpty else { return TimeSpan(nanoseconds: 0) }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    static func summary(_ exchanges: [Exchange]) -> String {
        var statuses: [Int: Int] = [:]
        for exchange in exchanges { statuses[exchange.status, default: 0] += 1 }
        let counts = statuses.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ")
        let worst = exchanges.map(\.latency).max() ?? TimeSpan(nanoseconds: 0)
        return "\(exchanges.count) requests [\(counts)], p50 \(percentile(exchanges, 0.5).milliseconds) ms, "
            + "p99 \(percentile(exchanges, 0.99).milliseconds) ms, worst \(worst.milliseconds) ms"
    }
}
