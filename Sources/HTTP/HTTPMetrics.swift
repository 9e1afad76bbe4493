import Net
import Synchronization

/// Request metrics of one loop, owned by it: recording is an increment in arrays, no lock and no
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

    /// One counter per (method, route, status) and one histogram per route, in arrays found by a
    /// linear scan: the route is the router's own template string each time and the method a
    /// small string, so comparing them is comparing words, where the dictionaries this replaced
    /// hashed three strings per request (SipHash: a few % of a `GET /health`). Past
    /// `scanLimit` series (unusual traffic: many statuses), a dictionary finds the slot.
    private var keys: [RequestKey] = []
    private var counts: [Int] = []
    private var slotOfKey: [RequestKey: Int] = [:]
    private var routes: [String] = []
    private var histograms: [Histogram] = []
    private static let scanLimit = 32
    public var inFlight = 0

    public init() {}

    /// Requests by method, route and status (for `/metrics`).
    public var requests: [RequestKey: Int] { Dictionary(uniqueKeysWithValues: zip(keys, counts)) }
    /// Durations by route (for `/metrics`).
    public var durations: [String: Histogram] { Dictionary(uniqueKeysWithValues: zip(routes, histograms)) }

    mutating func record(method: String, route: String, status: Int, seconds: Double) {
        counts[slot(RequestKey(method: method, route: route, status: status))] += 1
        var index = 0
        while index < Self.buckets.count && seconds > Self.buckets[index] { index += 1 }
        histograms[histogramSlot(route)].add(bucket: index, seconds: seconds)
    }

    private mutating func slot(_ key: RequestKey) -> Int {
        if keys.count <= Self.scanLimit {
            for i in keys.indices where keys[i].status == key.status && keys[i].method == key.method && keys[i].route == key.route {
                return i
            }
        } else if let i = slotOfKey[key] {
            return i
        }
        keys.append(key)
        counts.append(0)
        if keys.count > Self.scanLimit {
            if slotOfKey.isEmpty {
                for (i, known) in keys.enumerated() { slotOfKey[known] = i }
            } else {
                slotOfKey[key] = keys.count - 1
            }
        }
        return keys.count - 1
    }

    /// Routes are bounded (the router's templates and "unmatched"): a scan is enough.
    private mutating func histogramSlot(_ route: String) -> Int {
        if let i = routes.firstIndex(of: route) { return i }
        routes.append(route)
        histograms.append(Histogram())
        return routes.count - 1
    }

    public mutating func merge(_ other: HTTPMetrics) {
        for (key, count) in zip(other.keys, other.counts) { counts[slot(key)] += count }
        for (route, histogram) in zip(other.routes, other.histograms) {
            let i = histogramSlot(route)
            for b in 0..<histograms[i].counts.count { histograms[i].counts[b] += histogram.counts[b] }
            histograms[i].sum += histogram.sum
            histograms[i].count += histogram.count
        }
        inFlight += other.inFlight
    }
}
