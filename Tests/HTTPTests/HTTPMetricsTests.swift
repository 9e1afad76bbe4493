@testable import HTTP
import Testing

/// The per-loop metrics keep their series in scanned arrays, then a dictionary past 32 series:
/// both must count exactly what a plain dictionary counts, and merging must add them up.
@Suite struct HTTPMetricsTests {
    @Test func countsMatchAPlainDictionaryBelowAndAboveTheScanLimit() {
        var metrics = HTTPMetrics()
        var expected: [HTTPMetrics.RequestKey: Int] = [:]
        var perRoute: [String: Int] = [:]
        // 3 methods × 4 routes × 5 statuses = 60 series, past the scan limit, in a mixed order.
        var state: UInt64 = 42
        for _ in 0..<5_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let method = ["GET", "POST", "OTHER"][Int(state >> 33) % 3]
            let route = ["/health", "/todos", "/todos/:id", "unmatched"][Int(state >> 40) % 4]
            let status = [200, 201, 404, 429, 503][Int(state >> 50) % 5]
            metrics.record(method: method, route: route, status: status, seconds: Double(state >> 60) / 1000)
            expected[HTTPMetrics.RequestKey(method: method, route: route, status: status), default: 0] += 1
            perRoute[route, default: 0] += 1
        }
        #expect(metrics.requests == expected)
        #expect(metrics.durations.mapValues(\.count) == perRoute)
        #expect(metrics.durations.values.allSatisfy { $0.counts.reduce(0, +) == $0.count })

        var total = HTTPMetrics()
        total.merge(metrics)
        total.merge(metrics)
        #expect(total.requests == expected.mapValues { $0 * 2 })
        #expect(total.durations.mapValues(\.count) == perRoute.mapValues { $0 * 2 })
    }

    @Test func bucketsAreUpperBounds() {
        var metrics = HTTPMetrics()
        metrics.record(method: "GET", route: "/health", status: 200, seconds: 0.0005)  // ≤ 0.5 ms
        metrics.record(method: "GET", route: "/health", status: 200, seconds: 0.0006)  // ≤ 1 ms
        metrics.record(method: "GET", route: "/health", status: 200, seconds: 60)      // +Inf
        let histogram = metrics.durations["/health"]
        #expect(histogram?.counts[0] == 1)
        #expect(histogram?.counts[1] == 1)
        #expect(histogram?.counts.last == 1)
        #expect(histogram?.count == 3)
    }
}
