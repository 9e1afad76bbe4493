/// Answers one request of a `.callback` route. Call it once, on the connection's loop (where the
/// handler and every completion it registers run). A responder dropped without an answer — a
/// handler bug — answers 500 itself, so the client is never left waiting on a kept-alive connection.
public final class HTTPResponder {
    private let connection: HTTPConnection
    private let head: HTTPRequestHead
    private let omitBody: Bool
    private let requestID: String
    private var answered = false
    /// Who made the request, once the application has authenticated it: the access log's
    /// `userId` for whatever answer follows (a response that names its own wins).
    public var userID: String?

    init(connection: HTTPConnection, head: HTTPRequestHead, omitBody: Bool, requestID: String) {
        self.connection = connection
        self.head = head
        self.omitBody = omitBody
        self.requestID = requestID
    }

    public func callAsFunction(_ response: HTTPResponse) {
        guard !answered else {
            assertionFailure("a request was answered twice")
            return
        }
        answered = true
        guard let userID, response.userID == nil else {
            return connection.asyncResponseReady(response, head: head, omitBody: omitBody)
        }
        var attributed = response
        attributed.userID = userID
        connection.asyncResponseReady(attributed, head: head, omitBody: omitBody)
    }

    deinit {
        if !answered {
            connection.asyncResponseReady(.problem(.internalServerError, detail: "The request was not answered.", requestID: requestID),
                                          head: head, omitBody: omitBody)
        }
    }
}
