import Testing
@testable import TodoAPI

/// Strong entity tags are written digit by digit: the same text as interpolation, at every width.
struct EntityTagTests {
    @Test func strongTagsAreTheVersionInQuotes() {
        var versions = [0, 1, -1, 9, 10, 99, 100, 12_345, Int.max, Int.min, Int.min + 1]
        var power = 1
        for _ in 0..<18 { power *= 10; versions += [power - 1, power, power + 1, -power] }
        for version in versions {
            #expect(EntityTags.strong(version) == "\"\(version)\"", "\(version)")
        }
    }
}
