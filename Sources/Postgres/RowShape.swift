import CLibPQ

/// The columns of a prepared statement's rows on one connection, copied (attributes only) from
/// its first result. Later executions of the statement go without Describe Portal
/// (`PQsendQueryPreparedShaped`, scripts/libpq-patches): the server sends no RowDescription, and
/// libpq gives their results these column descriptions, shared rather than parsed again
/// (`getRowDescriptions` was ~4,800 instructions a `GET /todos/{id}`, 8.5 % of it, callgrind).
/// A prepared statement's shape cannot change under it: PostgreSQL refuses to run it if its
/// result type would change (0A000).
///
/// A class: a result made with a shape points into it, so every `PostgresResult` of a shaped
/// query keeps its shape alive, and so does the query while it is in flight.
final class RowShape {
    let handle: OpaquePointer

    /// The columns of `result` (a result with rows' columns, `PGRES_TUPLES_OK`).
    init?(copying result: OpaquePointer) {
        guard let copy = PQcopyResult(result, PG_COPYRES_ATTRS) else { return nil }
        handle = copy
    }

    deinit { PQclear(handle) }

    /// Whether the linked libpq has the patch (scripts/libpq-static's build does; Debian's
    /// libpq-dev does not, and then every execution sends Describe, as before).
    static let libpqSendsShaped = todo_libpq_sends_shaped() != 0
}

/// What a prepared statement's executions carry on a connection.
enum StatementShape {
    /// Not learned yet: executions send Describe.
    case unknown
    /// Rows with these columns.
    case rows(RowShape)
    /// A statement without rows (an UPDATE without RETURNING): nothing to describe.
    case noRows
}
