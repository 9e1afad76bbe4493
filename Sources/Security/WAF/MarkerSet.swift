/// Many literal markers searched in one pass: the text is scanned once, and only at positions
/// whose first two bytes start some marker are the markers compared. Built once per list; the
/// per-list loops of `containsBytes` it replaced cost 20 µs per request (measured with perf on
/// `GET /todos/{id}`: traversal, exploitable paths, command markers, bad bots, SSRF names).
struct MarkerSet: Sendable {
    private let markers: [[UInt8]]
    /// Bit per (first byte, second byte) pair that starts a marker.
    private let bigrams: [UInt64]
    /// Marker indices by their first two bytes.
    private let byBigram: [UInt16: [Int]]

    init(_ list: [String]) {
        markers = list.map { Array($0.utf8) }
        var bits = [UInt64](repeating: 0, count: 1024)
        var index: [UInt16: [Int]] = [:]
        for (i, marker) in markers.enumerated() {
            precondition(marker.count >= 2, "markers have at least two bytes")
            let key = UInt16(marker[0]) << 8 | UInt16(marker[1])
            bits[Int(key >> 6)] |= 1 << UInt64(key & 63)
            index[key, default: []].append(i)
        }
        bigrams = bits
        byBigram = index
    }

    /// The first marker found (by position), or nil.
    func firstMatch(in s: [UInt8]) -> String? {
        var found: String?
        forEachMatch(in: s) { marker, _ in
            found = String(decoding: markers[marker], as: UTF8.self)
            return false
        }
        return found
    }

    func contains(in s: [UInt8]) -> Bool { firstMatch(in: s) != nil }

    /// Calls `visit(markerIndex, position)` for every occurrence until it returns false.
    func forEachMatch(in s: [UInt8], _ visit: (Int, Int) -> Bool) {
        guard s.count >= 2 else { return }
        s.withUnsafeBufferPointer { text in
            var i = 0
            let last = text.count - 1
            while i < last {
                let key = UInt16(text[i]) << 8 | UInt16(text[i + 1])
                if bigrams[Int(key >> 6)] & (1 << UInt64(key & 63)) != 0, let candidates = byBigram[key] {
                    for m in candidates {
                        let marker = markers[m]
                        guard i + marker.count <= text.count else { continue }
                        var j = 2
                        while j < marker.count && text[i + j] == marker[j] { j += 1 }
                        if j == marker.count && !visit(m, i) { return }
                    }
                }
                i += 1
            }
        }
    }

    func marker(_ index: Int) -> [UInt8] { markers[index] }
}
