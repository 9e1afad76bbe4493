import Testing
@testable import HTTP

struct RequestIDTests {
    /// `<16 hex digits>-<counter>`: one prefix per process, the counter counting up.
    @Test func madeIdsArePrefixDashCounterAndWellFormed() {
        let ids = (0..<1_000).map { _ in RequestID.make() }
        let prefix = ids[0].split(separator: "-")[0]
        #expect(prefix.count == 16 && prefix.allSatisfy(\.isHexDigit))
        var last: UInt64 = 0
        for id in ids {
            let parts = id.split(separator: "-")
            #expect(parts.count == 2 && parts[0] == prefix)
            let number = UInt64(parts[1])
            #expect(number != nil && number! > last, "\(id)")
            last = number ?? last
            #expect(RequestID.isWellFormed(id))
        }
        #expect(Set(ids).count == ids.count)
    }
}
