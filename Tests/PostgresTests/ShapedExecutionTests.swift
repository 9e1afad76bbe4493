import CLibPQ
import Glibc
@testable import Postgres
import Testing
import TestSupport

/// scripts/libpq-patches/send-prepared-without-describe.patch against a real server: an execution
/// sent with a row shape sends no Describe (libpq's own trace of the wire says so) and gives the
/// result a described execution gives.
@Suite struct ShapedExecutionTests {
    /// One blocking libpq connection with its protocol trace in memory.
    final class TracedConnection {
        let pg: OpaquePointer
        private var buffer: UnsafeMutablePointer<CChar>?
        private var size = 0
        private let trace: UnsafeMutablePointer<FILE>

        init() throws {
            let url = try TestDatabase.url()
            guard let pg = PQconnectdb(url), PQstatus(pg) == CONNECTION_OK else {
                throw TestSetupError.missing("cannot connect to TEST_DATABASE_URL")
            }
            self.pg = pg
            trace = open_memstream(&buffer, &size)
            PQtrace(pg, trace)
            PQsetTraceFlags(pg, PQTRACE_SUPPRESS_TIMESTAMPS)
        }

        deinit {
            PQuntrace(pg)
            PQfinish(pg)
            fclose(trace)
            free(buffer)
        }

        /// Describe messages the client sent so far.
        func describesSent() -> Int {
            fflush(trace)
            guard let buffer else { return 0 }
            return String(cString: buffer).split(separator: "\n").filter { $0.hasPrefix("F\t") && $0.contains("\tDescribe\t") }.count
        }

        func prepare(_ name: String, _ sql: String) {
            let result = PQprepare(pg, name, sql, 1, nil)
            #expect(PQresultStatus(result) == PGRES_COMMAND_OK)
            PQclear(result)
        }

        /// One execution with text parameter `value` and binary results, shaped or described.
        func execute(_ name: String, _ value: String, shape: OpaquePointer?, shaped: Bool) -> OpaquePointer? {
            let sent = value.withCString { parameter in
                withUnsafePointer(to: Optional(parameter)) { values in
                    shaped ? PQsendQueryPreparedShaped(pg, name, 1, values, nil, nil, 1, shape)
                           : PQsendQueryPrepared(pg, name, 1, values, nil, nil, 1)
                }
            }
            #expect(sent == 1)
            var first: OpaquePointer?
            while let result = PQgetResult(pg) {
                if first == nil { first = result } else { PQclear(result) }
            }
            return first
        }

        /// One described execution, and the shape copied from its result (the caller clears it).
        func learnShape(_ name: String, _ value: String) throws -> OpaquePointer {
            let result = execute(name, value, shape: nil, shaped: false)
            defer { PQclear(result) }
            return try #require(PQcopyResult(result, PG_COPYRES_ATTRS))
        }

        /// The same execution described and shaped, each rendered by `contents`.
        func bothWays(_ name: String, _ value: String, shape: OpaquePointer) -> (described: String, shaped: String) {
            let described = execute(name, value, shape: nil, shaped: false)
            let shaped = execute(name, value, shape: shape, shaped: true)
            defer { PQclear(described); PQclear(shaped) }
            return (ShapedExecutionTests.contents(described), ShapedExecutionTests.contents(shaped))
        }

        /// A shaped execution rendered by `contents`.
        func shaped(_ name: String, _ value: String, shape: OpaquePointer?) -> String {
            let result = execute(name, value, shape: shape, shaped: true)
            defer { PQclear(result) }
            return ShapedExecutionTests.contents(result)
        }
    }

    /// Rows, NULLs, columns, status and command tag as the service reads them.
    static func contents(_ result: OpaquePointer?) -> String {
        guard let result else { return "no result" }
        var text = "\(String(cString: PQresStatus(PQresultStatus(result))!)) \(PQntuples(result))x\(PQnfields(result))"
        for column in 0..<PQnfields(result) {
            text += " \(String(cString: PQfname(result, column))):\(PQftype(result, column))/\(PQfformat(result, column))"
        }
        for row in 0..<PQntuples(result) {
            for column in 0..<PQnfields(result) {
                if PQgetisnull(result, row, column) != 0 { text += " NULL"; continue }
                let bytes = UnsafeRawBufferPointer(start: PQgetvalue(result, row, column), count: Int(PQgetlength(result, row, column)))
                text += " " + bytes.map { String($0, radix: 16) }.joined(separator: ".")
            }
        }
        if let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))) { text += " " + String(cString: state) }
        let tag = String(cString: PQcmdStatus(result))
        if !tag.isEmpty { text += " [\(tag)]" }
        return text
    }

    @Test func theLinkedLibpqIsPatched() {
        // scripts/test builds through scripts/libpq-static; without the patch every execution
        // would still work, with a Describe each: this keeps the fast path from going unnoticed.
        #expect(RowShape.libpqSendsShaped)
        // And the sync without a flush (scripts/libpq-patches/sync-without-flush.patch): without it
        // every sync would still work, each sent at once.
        #expect(todo_libpq_queues_sync() != 0)
        // And the one-call field access (value-access.patch).
        #expect(todo_libpq_gets_fields() != 0)
    }

    /// value-access.patch: rows whose values share one allocation read as before. PQgetfield
    /// agrees with PQgetisnull, PQgetlength and PQgetvalue on every cell (NULLs, empty strings,
    /// long values that need a block of their own), binary values start 8-aligned, every value
    /// ends in a NUL, and positions out of range are NULL.
    /// The bytes of cell (`g`, `column`) of `rowsInOneAllocationReadAsBefore`'s query.
    static func expectedCell(row g: Int, column: Int, binary: Bool) -> [UInt8] {
        switch column {
        case 0: return binary ? withUnsafeBytes(of: Int64(g).bigEndian) { Array($0) } : Array(String(g).utf8)
        case 1: return Array(repeating: UInt8(ascii: "x"), count: g % 5)
        case 2: return binary ? [g % 2 == 0 ? 1 : 0] : [g % 2 == 0 ? UInt8(ascii: "t") : UInt8(ascii: "f")]
        case 3: return Array(repeating: UInt8(ascii: "y"), count: g == 7 ? 40000 : g)
        default: return []
        }
    }

    @Test func rowsInOneAllocationReadAsBefore() throws {
        try #require(todo_libpq_gets_fields() != 0, "the linked libpq lacks value-access.patch")
        let connection = try TracedConnection()
        let sql = """
            SELECT g::int8 AS n, CASE WHEN g % 3 = 0 THEN NULL ELSE repeat('x', g % 5) END AS label,
                   (g % 2 = 0) AS even, repeat('y', CASE WHEN g = 7 THEN 40000 ELSE g END) AS long,
                   NULL::int4 AS nothing, ''::text AS empty
            FROM generate_series(1, 50) g
            """
        for format: Int32 in [0, 1] {
            let result = PQexecParams(connection.pg, sql, 0, nil, nil, nil, nil, format)
            defer { PQclear(result) }
            #expect(PQresultStatus(result) == PGRES_TUPLES_OK)
            #expect(PQntuples(result) == 50)
            for row in 0..<PQntuples(result) {
                for column in 0..<PQnfields(result) {
                    var length: Int32 = 0
                    let value = PQgetfield(result, row, column, &length)
                    if PQgetisnull(result, row, column) != 0 {
                        #expect(value == nil && length == -1)
                        continue
                    }
                    #expect(value != nil && value == UnsafePointer(PQgetvalue(result, row, column)))
                    #expect(length == PQgetlength(result, row, column))
                    #expect(value.map { $0[Int(length)] } == 0)
                    if format == 1, let value { #expect(UInt(bitPattern: value) % 8 == 0) }
                    // And the bytes are this cell's own (an offset wrong by one value would read
                    // a neighbour's).
                    if let value {
                        #expect(Array(UnsafeRawBufferPointer(start: value, count: Int(length))) == Self.expectedCell(row: Int(row) + 1, column: Int(column), binary: format == 1))
                    }
                }
            }
            var length: Int32 = 0
            #expect(PQgetfield(result, 50, 0, &length) == nil && length == -1)
            #expect(PQgetfield(result, 0, 6, &length) == nil && length == -1)
            #expect(PQgetfield(result, -1, 0, &length) == nil && length == -1)
        }
    }

    @Test func aShapedExecutionSendsNoDescribeAndAnswersAsADescribedOne() throws {
        let connection = try TracedConnection()
        connection.prepare("rows", "SELECT g AS n, CASE WHEN g % 2 = 0 THEN NULL ELSE 'odd' END AS label FROM generate_series(1, $1::int4) g")
        let shape = try connection.learnShape("rows", "3")
        defer { PQclear(shape) }
        #expect(connection.describesSent() == 1)

        for count in ["3", "0", "1", "0", "2"] {
            let (described, shaped) = connection.bothWays("rows", count, shape: shape)
            #expect(shaped == described, "rows: \(count)")
            #expect(shaped.hasPrefix("PGRES_TUPLES_OK \(count)x2 ") && shaped.hasSuffix(" [SELECT \(count)]"), "rows: \(count)")
        }
        #expect(connection.describesSent() == 1 + 5, "one Describe per described execution, none for the shaped ones")

        // An error in a shaped execution is the server's error, and the connection goes on.
        connection.prepare("divide", "SELECT 10 / $1::int4 AS q")
        let divideShape = try connection.learnShape("divide", "5")
        defer { PQclear(divideShape) }
        #expect(connection.shaped("divide", "0", shape: divideShape) == "PGRES_FATAL_ERROR 0x0 22012")
        // An error after some rows: the partial result gives way to the error, as described.
        connection.prepare("late", "SELECT 10 / (g - 2) AS q FROM generate_series(1, $1::int4) g")
        let lateShape = try connection.learnShape("late", "1")
        defer { PQclear(lateShape) }
        let (lateDescribed, lateShaped) = connection.bothWays("late", "3", shape: lateShape)
        #expect(lateShaped == lateDescribed)
        #expect(lateShaped == "PGRES_FATAL_ERROR 0x0 22012")
        #expect(connection.shaped("divide", "2", shape: divideShape) == "PGRES_TUPLES_OK 1x1 q:23/1 0.0.0.5 [SELECT 1]")
    }

    @Test func aStatementWithoutRowsGoesWithoutAShape() throws {
        let connection = try TracedConnection()
        let created = PQexec(connection.pg, "CREATE TEMP TABLE shaped_writes (x int4)")
        #expect(PQresultStatus(created) == PGRES_COMMAND_OK)
        PQclear(created)
        connection.prepare("insert", "INSERT INTO shaped_writes VALUES ($1::int4)")
        for value in ["1", "2"] {
            #expect(connection.shaped("insert", value, shape: nil) == "PGRES_COMMAND_OK 0x0 [INSERT 0 1]")
        }
        #expect(connection.describesSent() == 0)
    }

    @Test func aShapeThatDoesNotFitTheRowsIsAnErrorNotACrash() throws {
        let connection = try TracedConnection()
        connection.prepare("two", "SELECT $1::int4 AS a, 2 AS b")
        connection.prepare("one", "SELECT $1::int4 AS a")
        let shape = try connection.learnShape("two", "1")
        defer { PQclear(shape) }
        #expect(connection.shaped("one", "1", shape: shape).hasPrefix("PGRES_FATAL_ERROR "))
        #expect(connection.shaped("two", "7", shape: shape) == "PGRES_TUPLES_OK 1x2 a:23/1 b:23/1 0.0.0.7 0.0.0.2 [SELECT 1]")
    }
}
