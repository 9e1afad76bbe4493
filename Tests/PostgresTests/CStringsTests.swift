@testable import Postgres
import Testing

/// `withCStrings`, which hands every bind parameter and connection keyword to libpq.
@Suite struct CStringsTests {
    private func roundTrip(_ values: [String?]) -> [String?] {
        withCStrings(values) { pointers in
            pointers.map { $0.map { String(cString: $0) } }
        }
    }

    @Test func valuesNilsAndEmptyStringsSurvive() {
        let values: [String?] = ["s1", nil, "", "2b7e1516-28ae-d2a6-abf7-158809cf4f3c", "ünïcødé ✓", nil]
        #expect(roundTrip(values) == values)
        #expect(roundTrip([]) == [])
        #expect(roundTrip([nil]) == [nil])
    }

    @Test func largeValuesAndManyOfThem() {
        // Beyond what fits on the stack: the temporary buffers then come from the heap.
        let values: [String?] = (0..<300).map { $0 % 7 == 0 ? nil : String(repeating: "x\($0)", count: $0) }
        #expect(roundTrip(values) == values)
    }

    @Test func theBufferIsNullTerminatedPerValue() {
        withCStrings(["ab", "c"]) { pointers in
            #expect(pointers.count == 2)
            #expect(pointers[0]![2] == 0)
            #expect(pointers[1]![1] == 0)
        }
    }
}
