@testable import TodoAPI
import Testing

/// The byte-level `application/json` check must accept what the general rule accepts for that
/// type and leave everything else to it (which answers 415 or accepts `application/*+json`).
@Suite struct MediaTypeTests {
    @Test(arguments: ["application/json", "Application/JSON", "application/json; charset=utf-8", "application/json ;v=1",
                      "application/json\t"])
    func plainJSONIsRecognised(_ value: String) {
        #expect(TodoRoutes.isApplicationJSON(value))
    }

    @Test(arguments: ["application/jsonp", "application/json-seq", "text/json", "application/jso", "", " application/json",
                      "application/merge-patch+json", "application/jsön"])
    func everythingElseGoesToTheGeneralRule(_ value: String) {
        #expect(!TodoRoutes.isApplicationJSON(value))
    }
}
