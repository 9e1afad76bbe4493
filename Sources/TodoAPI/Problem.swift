import HTTP
import Postgres
import Observability

/// RFC 9457 problem documents of the API: `type`, `title`, `status`, `detail`, the request id, and
/// for validation failures `errors: [{"field","message"}]`. Never internals (SQL, hostnames, stack).
enum Problem {
    static func response(_ status: HTTPStatus, detail: String, requestID: String, type: StaticString = "about:blank",
                         errors: [TodoInput.FieldError] = [], headers: [(name: String, value: String)] = []) -> HTTPResponse {
        .problem(status, detail: detail, requestID: requestID, type: type, headers: headers) { json in
            guard !errors.isEmpty else { return }
            json.raw(",\"errors\":[")
            for (i, error) in errors.enumerated() {
                if i > 0 { json.raw(",") }
                json.raw("{\"field\":")
                json.string(error.field)
                json.raw(",\"message\":")
                json.string(error.message)
                json.raw("}")
            }
            json.raw("]")
        }
    }

    static func validation(_ errors: [TodoInput.FieldError], requestID: String) -> HTTPResponse {
        let names = errors.map { $0.field.isEmpty ? "body" : $0.field }
        let detail = errors.count == 1 && errors[0].field.isEmpty
            ? errors[0].message
            : "Invalid field\(names.count == 1 ? "" : "s"): \(names.joined(separator: ", "))."
        return response(.badRequest, detail: detail, requestID: requestID, type: "urn:todo-api:problem:validation", errors: errors)
    }

    /// A database failure: 503 + Retry-After when waiting may help (database down, pool saturated,
    /// timeouts, failover), 400 when PostgreSQL refused the data itself (classes 22, 23: a client
    /// mistake our validation did not catch), 500 otherwise. The detail never carries the driver's
    /// message.
    static func database(_ error: any Error, requestID: String) -> HTTPResponse {
        guard let error = error as? PostgresError else {
            return response(.internalServerError, detail: "An unexpected error occurred.", requestID: requestID)
        }
        if error.isTransient {
            return response(.serviceUnavailable, detail: "The database is unavailable; retry shortly.", requestID: requestID,
                            headers: [("Retry-After", "1")])
        }
        if let state = error.sqlState, state.hasPrefix("22") || state.hasPrefix("23") {
            return response(.badRequest, detail: "The database rejected a value of the request.", requestID: requestID)
        }
        return response(.internalServerError, detail: "An unexpected error occurred.", requestID: requestID)
    }
}
