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
    }

    /// Rows, NULLs, columns and status as the service reads them.
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
        return text
    }

    @Test func theLinkedLibpqIsPatched() {
        // scripts/test builds through scripts/libpq-static; without the patch every execution
        // would still work, with a Describe each: this keeps the fast path from going unnoticed.
        #expect(RowShape.libpqSendsShaped)
    }

    @Test func aShapedExecutionSendsNoDescribeAndAnswersAsADescribedOne() throws {
        let connection = try TracedConnection()
        connection.prepare("rows", "SELECT g AS n, CASE WHEN g % 2 = 0 THEN NULL ELSE 'odd' END AS label FROM generate_series(1, $1::int4) g")
        let first = connection.execute("rows", "3", shape: nil, shaped: false)
        defer { PQclear(first) }
        let shape = try #require(PQcopyResult(first, PG_COPYRES_ATTRS))
        defer { PQclear(shape) }
        #expect(connection.describesSent() == 1)

        for count in ["3", "0", "1", "0", "2"] {
            let described = connection.execute("rows", count, shape: nil, shaped: false)
            let shaped = connection.execute("rows", count, shape: shape, shaped: true)
            #expect(Self.contents(shaped) == Self.contents(described), "rows: \(count)")
            #expect(PQresultStatus(shaped) == PGRES_TUPLES_OK)
            if let shaped { #expect(String(cString: PQcmdStatus(shaped)) == "SELECT \(count)") }
            PQclear(described)
            PQclear(shaped)
        }
        #expect(connection.describesSent() == 1 + 5, "one Describe per described execution, none for the shaped ones")

        // An error in a shaped execution is the server's error, and the connection goes on.
        connection.prepare("divide", "SELECT 10 / $1::int4 AS q")
        let described = connection.execute("divide", "5", shape: nil, shaped: false)
        let divideShape = try #require(PQcopyResult(described, PG_COPYRES_ATTRS))
        defer { PQclear(divideShape) }
        PQclear(described)
        let failed = connection.execute("divide", "0", shape: divideShape, shaped: true)
        #expect(Self.contents(failed) == "PGRES_FATAL_ERROR 0x0 22012")
        PQclear(failed)
        // An error after some rows: the partial result gives way to the error, as described.
        connection.prepare("late", "SELECT 10 / (g - 2) AS q FROM generate_series(1, $1::int4) g")
        let lateFirst = connection.execute("late", "1", shape: nil, shaped: false)
        let lateShape = try #require(PQcopyResult(lateFirst, PG_COPYRES_ATTRS))
        defer { PQclear(lateShape) }
        PQclear(lateFirst)
        let lateDescribed = connection.execute("late", "3", shape: nil, shaped: false)
        let lateShaped = connection.execute("late", "3", shape: lateShape, shaped: true)
        #expect(Self.contents(lateShaped) == Self.contents(lateDescribed))
        #expect(Self.contents(lateShaped) == "PGRES_FATAL_ERROR 0x0 22012")
        PQclear(lateDescribed)
        PQclear(lateShaped)
        let after = connection.execute("divide", "2", shape: divideShape, shaped: true)
        #expect(Self.contents(after) == "PGRES_TUPLES_OK 1x1 q:23/1 0.0.0.5")
        PQclear(after)
    }

    @Test func aStatementWithoutRowsGoesWithoutAShape() throws {
        let connection = try TracedConnection()
        let created = PQexec(connection.pg, "CREATE TEMP TABLE shaped_writes (x int4)")
        #expect(PQresultStatus(created) == PGRES_COMMAND_OK)
        PQclear(created)
        connection.prepare("insert", "INSERT INTO shaped_writes VALUES ($1::int4)")
        for value in ["1", "2"] {
            let result = connection.execute("insert", value, shape: nil, shaped: true)
            #expect(Self.contents(result) == "PGRES_COMMAND_OK 0x0")
            if let result { #expect(String(cString: PQcmdTuples(result)) == "1") }
            PQclear(result)
        }
        #expect(connection.describesSent() == 0)
    }

    @Test func aShapeThatDoesNotFitTheRowsIsAnErrorNotACrash() throws {
        let connection = try TracedConnection()
        connection.prepare("two", "SELECT $1::int4 AS a, 2 AS b")
        connection.prepare("one", "SELECT $1::int4 AS a")
        let two = connection.execute("two", "1", shape: nil, shaped: false)
        let shape = try #require(PQcopyResult(two, PG_COPYRES_ATTRS))
        defer { PQclear(shape) }
        PQclear(two)
        let misfit = connection.execute("one", "1", shape: shape, shaped: true)
        #expect(PQresultStatus(misfit) == PGRES_FATAL_ERROR)
        PQclear(misfit)
        let fine = connection.execute("two", "7", shape: shape, shaped: true)
        #expect(Self.contents(fine) == "PGRES_TUPLES_OK 1x2 a:23/1 b:23/1 0.0.0.7 0.0.0.2")
        PQclear(fine)
    }
}
