import HTTP
import JSON
import Logging
import Net
import Observability
import Postgres
import Synchronization

/// `/todos` and `/todos/:id`: parse and validate on the loop, one statement per write, answer.
/// A class: every completion captures it, and a struct of a logger, a handler and a repository
/// was seven retains and seven releases a capture (callgrind), one as a reference.
final class TodoRoutes: Sendable {
    let repository: TodoRepository
    /// Business events (component `business`): a todo created or deleted, with the request id.
    let events = Logger(label: "business")
    /// `events`' handler when it is the service's own: its lines are then written without a
    /// metadata dictionary (nil when logging was bootstrapped otherwise, as in some tests).
    let directEvents: StructuredLogHandler?

    init(repository: TodoRepository) {
        self.repository = repository
        directEvents = events.handler as? StructuredLogHandler
    }

    /// `authentication` nil: AUTH=off, every handler gets owner nil and no check runs.
    static func register(in router: inout Router, database: PostgresDatabase, authentication: RouteAuthentication? = nil) {
        let routes = TodoRoutes(repository: TodoRepository(database: database))
        func onLoop(_ handler: @escaping @Sendable (HTTPRequest, String?, HTTPResponder) -> Void) -> RouteHandler {
            guard let authentication else { return .callback { handler($0, nil, $1) } }
            return .callback { request, respond in
                authentication.authenticate(request, respond: respond) { owner, respond in handler(request, owner, respond) }
            }
        }
        router.add(.get, "/todos", onLoop(routes.list))
        router.add(.post, "/todos", onLoop(routes.create))
        router.add(.get, "/todos/:id", onLoop(routes.get))
        router.add(.put, "/todos/:id", onLoop { routes.update($0, owner: $1, replace: true, respond: $2) })
        router.add(.patch, "/todos/:id", onLoop { routes.update($0, owner: $1, replace: false, respond: $2) })
        router.add(.delete, "/todos/:id", onLoop(routes.delete))
    }

    /// Business events name the todo, the request and, with AUTH on, the owner (`userId`).
    private func event(_ message: StaticString, todoID: String, requestID: String, owner: String?, idempotencyKey: Bool = false) {
        if directEvents != nil {
            // Keys in the order the handler sorts them. Called through the optional: binding the
            // handler copied it (its strings and arrays: five retains and releases).
            directEvents?.write(.info, message) { fields in
                fields.add("idempotencyKey", idempotencyKey ? "present" : nil)
                fields.add("requestId", requestID)
                fields.add("todoId", todoID)
                fields.add("userId", owner)
            }
            return
        }
        var metadata: Logger.Metadata = ["todoId": .string(todoID), "requestId": .string(requestID)]
        if idempotencyKey { metadata["idempotencyKey"] = "present" }
        if let owner { metadata["userId"] = .string(owner) }
        events.info("\(message)", metadata: metadata)
    }

    // MARK: Reads

    /// A callback handler, like `get`: the checks, then one read answered from its completion.
    func list(_ request: HTTPRequest, owner: String?, respond: HTTPResponder) {
        let requestID = request.requestID
        guard let parameters = QueryString.parse(request.head.query) else {
            return respond(Problem.response(.badRequest, detail: "The query string is malformed.", requestID: requestID))
        }
        func first(_ name: String) -> String? { parameters.first { $0.name == name }?.value }
        var errors: [TodoInput.FieldError] = []
        var limit = 20
        if let text = first("limit") {
            if let value = Int(text), (1...100).contains(value) { limit = value } else {
                errors.append(.init(field: "limit", message: "must be an integer from 1 to 100"))
            }
        }
        var cursor: TodoCursor?
        if let token = first("cursor") {
            cursor = TodoCursor(token: token)
            if cursor == nil { errors.append(.init(field: "cursor", message: "is not a cursor this API returned")) }
        }
        var completed: Bool?
        if let text = first("completed") {
            switch text {
            case "true": completed = true
            case "false": completed = false
            default: errors.append(.init(field: "completed", message: "must be true or false"))
            }
        }
        let query = first("q")
        if let query, let problem = TodoInput.checkText(query, max: TodoInput.maxTitle, allowEmpty: true) {
            errors.append(.init(field: "q", message: problem))
        }
        guard errors.isEmpty else {
            return respond(Problem.response(.badRequest, detail: "Invalid query parameter\(errors.count == 1 ? "" : "s"): \(errors.map(\.field).joined(separator: ", ")).",
                                            requestID: requestID, type: "urn:todo-api:problem:validation", errors: errors))
        }
        repository.list(limit: limit, after: cursor, completed: completed, titleContains: query?.isEmpty == true ? nil : query,
                        owner: owner) { result in
            switch result {
            case .success(let page): respond(Self.pageResponse(page))
            case .failure(let error): respond(Problem.database(error, requestID: requestID))
            }
        }
    }

    private static func pageResponse(_ page: TodoRepository.Page) -> HTTPResponse {
        var json = JSONWriter(capacity: 64 + min(page.result.rowCount, page.limit) * 300)
        json.raw("{\"todos\":[")
        var last: TodoRow?
        page.forEachRow { todo in
            if last != nil { json.raw(",") }
            todo.write(to: &json)
            last = todo
        }
        json.raw("],\"nextCursor\":")
        if page.hasMore, let last {
            json.string(TodoCursor(createdAtMicros: last.createdAtMicros, id: last.id).token)
        } else {
            json.raw("null")
        }
        json.raw("}")
        return .json(.ok, json.take(), headers: [])
    }

    /// The hottest route, so a callback handler: one read, answered from its completion (no task).
    func get(_ request: HTTPRequest, owner: String?, respond: HTTPResponder) {
        let requestID = request.requestID
        let id = request.parameters["id"] ?? ""
        guard TodoID.isValid(id) else { return respond(notFound(requestID)) }
        // The completion keeps the head alone: the whole request was ten retains to capture.
        let head = request.head
        repository.find(id: id, owner: owner) { [self] result in
            let response: HTTPResponse
            switch result {
            case .success(let todo?):
                let etag = todo.etag
                if let condition = head.fields[.ifNoneMatch], EntityTags.matchesWeakly(condition, etag) {
                    response = HTTPResponse(status: .notModified, entityTag: etag)
                } else {
                    response = .json(.ok, todo.envelope, entityTag: etag)
                }
            case .success(nil):
                response = notFound(requestID)
            case .failure(let error):
                response = Problem.database(error, requestID: requestID)
            }
            respond(response)
        }
    }

    // MARK: Writes

    /// Counts idempotent creates; every 1,000th also deletes expired keys (per process).
    private static let createsSinceCleanup = Atomic<Int>(0)

    /// A callback handler, like `get`: a create without `Idempotency-Key` is one statement,
    /// answered from its completion on the loop (no task: the task's hops were ~7 % of a POST's
    /// CPU, perf). A keyed create takes several statements, so it runs as a task with one
    /// deadline for all of them.
    func create(_ request: HTTPRequest, owner: String?, respond: HTTPResponder) {
        let requestID = request.requestID
        let input: TodoInput
        switch Self.body(request, mode: .create, requestID: requestID) {
        case .success(let parsed): input = parsed
        case .failure(let problem): return respond(problem.response)
        }
        guard request.head.fields[.idempotencyKey] == nil else {
            let loop = EventLoop.current!  // handlers run on their connection's loop
            let responder = LoopBound(respond, loop: loop)
            let database = repository.database
            Task(executorPreference: loop) {
                let response = await database.withRequestDeadline { () async -> HTTPResponse in
                    do {
                        return try await self.create(input, request: request, requestID: requestID, owner: owner)
                    } catch {
                        return Problem.database(error, requestID: requestID)
                    }
                }
                responder.value(response)
            }
            return
        }
        repository.create(input, owner: owner) { [self] result in
            switch result {
            case .success(let todo?):
                let id = todo.id
                event("todo created", todoID: id, requestID: requestID, owner: owner)
                respond(created(todo.envelope, id: id, version: todo.version, requestID: requestID))
            case .success(nil):
                respond(Problem.database(PostgresError(.server, message: "no row"), requestID: requestID))
            case .failure(let error):
                respond(Problem.database(error, requestID: requestID))
            }
        }
    }

    private func create(_ input: TodoInput, request: HTTPRequest, requestID: String, owner: String?) async throws(PostgresError) -> HTTPResponse {
        guard let key = request.head.fields[.idempotencyKey] else {
            guard let todo = try await repository.create(input, owner: owner) else { throw PostgresError(.server, message: "no row") }
            event("todo created", todoID: todo.id, requestID: requestID, owner: owner)
            return created(todo.envelope, id: todo.id, version: todo.version, requestID: requestID)
        }
        guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
            return Problem.validation([.init(field: "Idempotency-Key", message: "must be 1 to 255 visible ASCII characters")], requestID: requestID)
        }
        if Self.createsSinceCleanup.add(1, ordering: .relaxed).newValue % 1000 == 0 {
            await deleteExpiredKeys()
        }
        let outcome = try await repository.create(input, idempotencyKey: key, requestHash: Migrator.sha256Hex(request.body), owner: owner)
        switch outcome {
        case .created(let todo):
            let body = todo.envelope
            await storeResponse(key: key, todoID: todo.id, body: body, owner: owner)
            event("todo created", todoID: todo.id, requestID: requestID, owner: owner, idempotencyKey: true)
            return created(body, id: todo.id, version: todo.version, requestID: requestID)
        case .replay(let body?, let todoID):
            return created(Array(body.utf8), id: todoID, version: 1, requestID: requestID)
        case .replay(nil, let todoID):
            guard let todo = try await repository.find(id: todoID, owner: owner) else {
                return Problem.response(.conflict, detail: "The todo created with this Idempotency-Key has since been deleted.", requestID: requestID)
            }
            return created(todo.envelope, id: todo.id, version: todo.version, requestID: requestID)
        case .conflict:
            return Problem.response(.unprocessableContent, detail: "This Idempotency-Key was already used with a different request body.",
                                    requestID: requestID)
        }
    }

    /// Best effort: without the stored body a retry replays the todo as it is then; still one todo.
    private func storeResponse(key: String, todoID: String, body: [UInt8], owner: String?) async {
        do {
            try await repository.storeResponse(key: key, todoID: todoID, body: String(decoding: body, as: UTF8.self), owner: owner)
        } catch {}
    }

    /// Housekeeping; a failure only delays it to the next round.
    private func deleteExpiredKeys() async {
        do {
            try await repository.deleteExpiredKeys()
        } catch {}
    }

    private func created(_ body: [UInt8], id: String, version: Int, requestID: String) -> HTTPResponse {
        // Concatenated, not interpolated (interpolation's generic appends were ~1,000 instructions
        // a `POST` for these two headers, callgrind).
        .json(.created, body, entityTag: EntityTags.strong(version), location: "/todos/" + id)
    }

    /// PUT and PATCH: callback handlers, like `create`. The common case is one conditional UPDATE;
    /// when it matches no row, a second statement tells 404 from 412, within the same deadline.
    func update(_ request: HTTPRequest, owner: String?, replace: Bool, respond: HTTPResponder) {
        let requestID = request.requestID
        let id = request.parameters["id"] ?? ""
        guard TodoID.isValid(id) else { return respond(notFound(requestID)) }
        let input: TodoInput
        switch Self.body(request, mode: replace ? .replace : .patch, requestID: requestID) {
        case .success(let parsed): input = parsed
        case .failure(let problem): return respond(problem.response)
        }
        let versions = EntityTags.versions(ifMatch: request.head.fields[.ifMatch])
        let deadline = repository.database.requestDeadlineFromNow()
        repository.update(id: id, input, replace: replace, versions: versions, owner: owner, deadline: deadline) { [self] result in
            switch result {
            case .success(let todo?):
                respond(.json(.ok, todo.envelope, entityTag: todo.etag))
            case .success(nil):
                missingOrStale(id: id, requestID: requestID, owner: owner, deadline: deadline, respond: respond)
            case .failure(let error):
                respond(Problem.database(error, requestID: requestID))
            }
        }
    }

    func delete(_ request: HTTPRequest, owner: String?, respond: HTTPResponder) {
        let requestID = request.requestID
        let id = request.parameters["id"] ?? ""
        guard TodoID.isValid(id) else { return respond(notFound(requestID)) }
        let versions = EntityTags.versions(ifMatch: request.head.fields[.ifMatch])
        let deadline = repository.database.requestDeadlineFromNow()
        repository.delete(id: id, versions: versions, owner: owner, deadline: deadline) { [self] result in
            switch result {
            case .success(let todo?):
                event("todo deleted", todoID: todo.id, requestID: requestID, owner: owner)
                respond(.json(.ok, todo.envelope, headers: []))
            case .success(nil):
                missingOrStale(id: id, requestID: requestID, owner: owner, deadline: deadline, respond: respond)
            case .failure(let error):
                respond(Problem.database(error, requestID: requestID))
            }
        }
    }

    /// After a conditional write matched no row: gone (404) or changed (412).
    private func missingOrStale(id: String, requestID: String, owner: String?, deadline: MonotonicTime, respond: HTTPResponder) {
        repository.version(id: id, owner: owner, deadline: deadline) { [self] result in
            switch result {
            case .success(let current?):
                respond(Problem.response(.preconditionFailed, detail: "The todo has changed since the ETag in If-Match was issued.",
                                         requestID: requestID, headers: [("ETag", "\"\(current)\"")]))
            case .success(nil):
                respond(notFound(requestID))
            case .failure(let error):
                respond(Problem.database(error, requestID: requestID))
            }
        }
    }

    private func notFound(_ requestID: String) -> HTTPResponse {
        Problem.response(.notFound, detail: "No todo with this id.", requestID: requestID)
    }

    // MARK: Bodies

    struct BodyProblem: Error {
        let response: HTTPResponse
    }

    /// Content-Type first (415), then JSON syntax (400), then the fields (400 naming each).
    static func body(_ request: HTTPRequest, mode: TodoInput.Mode, requestID: String) -> Result<TodoInput, BodyProblem> {
        // Recognised on the head's bytes: looking it up as a string made one (an allocation:
        // "application/json" is longer than a small string) on every write.
        if let raw = request.head.fields.rawValue(.contentType), raw.withUnsafeBytes({ isApplicationJSON(bytes: $0) }) {
            return parse(request.body, mode: mode, requestID: requestID)
        }
        let contentType = request.head.fields[.contentType]
        let mediaType = contentType.map {
            String($0.split(separator: ";", maxSplits: 1).first ?? "").trimmingWhitespace.lowercased()
        }
        let acceptable = mediaType == "application/json" || (mediaType?.hasPrefix("application/") == true && mediaType?.hasSuffix("+json") == true)
        guard acceptable else {
            let detail = mediaType == nil ? "A request body needs Content-Type: application/json."
                : "Content-Type \(mediaType!) is not supported; send application/json."
            return .failure(BodyProblem(response: Problem.response(.unsupportedMediaType, detail: detail, requestID: requestID)))
        }
        return parse(request.body, mode: mode, requestID: requestID)
    }

    /// `application/json` as nearly every client sends it (any case; parameters such as
    /// `; charset=utf-8` after it), recognised on the bytes: the general rule above splits,
    /// trims and lowercases copies of the header (4 % of a POST's CPU, perf).
    static func isApplicationJSON(_ value: String) -> Bool {
        value.withBorrowedUTF8 { isApplicationJSON(bytes: UnsafeRawBufferPointer($0)) }
    }

    static func isApplicationJSON(bytes: UnsafeRawBufferPointer) -> Bool {
        let length = 16  // "application/json"
        guard bytes.count >= length, UnsafeRawBufferPointer(rebasing: bytes[..<length]).equalsIgnoringASCIICase("application/json") else { return false }
        let rest = bytes[length...].drop { $0 == 0x20 || $0 == 0x09 }
        return rest.isEmpty || rest.first == UInt8(ascii: ";")
    }

    private static func parse(_ body: [UInt8], mode: TodoInput.Mode, requestID: String) -> Result<TodoInput, BodyProblem> {
        let parsed: Result<TodoInput, TodoInput.Invalid>
        do {
            parsed = try TodoInput.parse(json: body, mode: mode)
        } catch {
            return .failure(BodyProblem(response: Problem.response(.badRequest, detail: "Malformed JSON: \(error).", requestID: requestID)))
        }
        switch parsed {
        case .success(let input): return .success(input)
        case .failure(let invalid): return .failure(BodyProblem(response: Problem.validation(invalid.errors, requestID: requestID)))
        }
    }
}

/// Entity-tag conditions (RFC 9110 §13.1.1, §13.1.2).
enum EntityTags {
    /// The strong tag of a version, `"7"`: its digits (`ASCIIDigits.withDecimal`) between quotes,
    /// a small string (no allocation up to 13 digits; interpolation took the generic
    /// description path).
    static func strong(_ version: Int) -> String {
        ASCIIDigits.withDecimal(version) { digits in
            String(unsafeUninitializedCapacity: digits.count + 2) { buffer in
                buffer[0] = UInt8(ascii: "\"")
                UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[1...])).copyMemory(from: digits)
                buffer[digits.count + 1] = UInt8(ascii: "\"")
                return digits.count + 2
            }
        }
    }

    /// If-Match: nil when absent or `*` (any current representation), else the versions named by
    /// strong tags; weak or foreign tags never match (strong comparison), so they yield [].
    static func versions(ifMatch header: String?) -> [Int]? {
        guard let header else { return nil }
        var versions: [Int] = []
        for part in header.split(separator: ",") {
            let tag = String(part).trimmingWhitespace
            if tag == "*" { return nil }
            if tag.hasPrefix("\""), tag.hasSuffix("\""), tag.count >= 2, let version = Int(tag.dropFirst().dropLast()) {
                versions.append(version)
            }
        }
        return versions
    }

    /// If-None-Match: weak comparison, `*` matches anything.
    static func matchesWeakly(_ header: String, _ etag: String) -> Bool {
        for part in header.split(separator: ",") {
            var tag = String(part).trimmingWhitespace
            if tag == "*" { return true }
            if tag.hasPrefix("W/") { tag.removeFirst(2) }
            if tag == etag { return true }
        }
        return false
    }
}
