import CLibPQ

/// A plain blocking libpq connection for command-line work off the event loops (`todo-api migrate`,
/// `serve --migrate` before listening). Never used on a loop thread.
public final class BlockingPostgresConnection {
    private let pg: OpaquePointer

    public init(_ settings: PostgresConnectionSettings) throws(PostgresError) {
        var settings = settings
        if settings["connect_timeout"] == nil {
            settings["connect_timeout"] = String(max(1, settings.connectTimeout / 1000))
        }
        let keywords = settings.parameters.map(\.keyword) + [nil]
        let values = settings.parameters.map { Optional($0.value) } + [nil]
        guard let pg = withCStrings(keywords, { k in withCStrings(values) { v in PQconnectdbParams(k.baseAddress, v.baseAddress, 0) } }) else {
            throw PostgresError(.unavailable, message: "out of memory")
        }
        guard PQstatus(pg) == CONNECTION_OK else {
            let message = PostgresConnection.errorMessage(pg)
            PQfinish(pg)
            throw PostgresError(.unavailable, message: message)
        }
        self.pg = pg
        PostgresConnection.silenceNotices(pg)
    }

    deinit { PQfinish(pg) }

    /// Runs one or more statements without parameters (simple query protocol: a migration file).
    public func execute(script: String) throws(PostgresError) {
        guard let result = PQexec(pg, script) else { throw PostgresError(.connectionLost, message: PostgresConnection.errorMessage(pg)) }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY else {
            throw PostgresConnection.serverError(result)
        }
    }

    /// Runs one statement with bound parameters; rows in binary format.
    @discardableResult
    public func query(_ query: PostgresQuery) throws(PostgresError) -> PostgresResult {
        let result = query.binds.withCStrings { values in
            PQexecParams(pg, query.sql, Int32(values.count), nil, values.baseAddress, nil, nil, 1)
        }
        guard let result else { throw PostgresError(.connectionLost, message: PostgresConnection.errorMessage(pg)) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            defer { PQclear(result) }
            throw PostgresConnection.serverError(result)
        }
        return PostgresResult(result)
    }
}
