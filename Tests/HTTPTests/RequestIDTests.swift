import Testing
@testable import HTTP

struct RequestIDTests {
    /// `<9 base-36 digits>-<base-36 counter>`: one prefix per process, the counter counting up.
    @Test func madeIdsArePrefixDashCounterAndWellFormed() {
        let ids = (0..<1_000).map { _ in RequestID.make() }
        let prefix = ids[0].split(separator: "-")[0]
        #expect(prefix.count == RequestID.prefixLength && prefix.allSatisfy { $0.isNumber || ("a"..."z").contains($0) })
        var last: UInt64 = 0
        for id in ids {
            let parts = id.split(separator: "-")
            #expect(parts.count == 2 && parts[0] == prefix)
            let number = UInt64(parts[1], radix: 36)
            #expect(number != nil && number! > last, "\(id)")
            last = number ?? last
            #expect(RequestID.isWellFormed(id))
            // Within 15 UTF-8 bytes Swift stores the string inline (no allocation per request).
            #expect(id.utf8.count <= 15, "\(id)")
        }
        #expect(Set(ids).count == ids.count)
    }
}
