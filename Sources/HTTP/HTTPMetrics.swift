import Net
import Synchronization

/// Request metrics of one loop, owned by it: recording is a dictionary increment, no lock and no
/// atomic shared with other loops; a scrape asks every loop for a copy and adds them up.
public struct HTTPMetrics: Sendable {
    /// Upper bounds (seconds) of `http_request_duration_seconds`: 0.5 ms to 5 s.
    public static let buckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

    public struct RequestKey: Hashable, Sendable {
        public let method: String
        public let route: String
        public let status: Int
    }

    public struct Histogram: Sendable {
        public var counts = [Int](repeating: 0, count: HTTPMetrics.buckets.count + 1)  // last: +Inf
        public var sum = 0.0
        public var count = 0

        mutating func add(bucket: Int, seconds: Double) {
            counts[bucket] += 1
            sum += seconds
            count += 1
        }
    }

    public var requests: [RequestKey: Int] = [:]
    public var durations: [String: Histogram] = [:]
    public var inFlight = 0

    public init() {}

    mutating func record(method: String, route: String, status: Int, seconds: Double) {
        requests[RequestKey(method: method, route: route, status: status), default: 0] += 1
        var index = 0
        while index < Self.buckets.count && seconds > Self.buckets[index] { index += 1 }
        // In place (`default:` subscript): no copy of the bucket array per request.
        durations[route, default: Histogram()].add(bucket: index, seconds: seconds)
    }

    public mutating func merge(_ other: HTTPMetrics) {
        for (key, count) in other.requests { requests[key, default: 0] += count }
        for (route, histogram) in other.durations {
            var mine = durations[route] ?? Histogram()
            for i in 0..<mine.counts.count { mine.counts[i] += histogram.counts[i] }
            mine.sum += histogram.sum
            mine.count += histogram.count
            durations[route] = mine
        }
        inFlight += other.inFlight
    }
}
