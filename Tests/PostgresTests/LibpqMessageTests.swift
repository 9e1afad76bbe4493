@testable import Postgres
import Testing

/// libpq's connection messages as log text: one line, no source locations, the server's SQLSTATE.
@Suite struct LibpqMessageTests {
    @Test func serverSQLStateIsFoundInVerboseMessages() {
        #expect(PostgresConnection.sqlState(in: "connection to server at \"10.0.0.5\", port 5432 failed: FATAL:  28P01: password authentication failed for user \"todo\"") == "28P01")
        #expect(PostgresConnection.sqlState(in: "FATAL:  57P01: terminating connection due to administrator command; server closed the connection unexpectedly") == "57P01")
        #expect(PostgresConnection.sqlState(in: "connection to server at \"127.0.0.1\", port 1 failed: Connection refused") == nil)
        #expect(PostgresConnection.sqlState(in: "FATAL:  sorry") == nil)
    }

    @Test func messagesBecomeOneLineWithoutLocations() {
        let text = "FATAL:  57P01: terminating connection due to administrator command\nLOCATION:  ProcessInterrupts, postgres.c:3204\nserver closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n"
        let message = text.withCString { PostgresConnection.libpqMessage($0) }
        #expect(message == "FATAL:  57P01: terminating connection due to administrator command; server closed the connection unexpectedly; This probably means the server terminated abnormally")
        #expect("\n  \n".withCString { PostgresConnection.libpqMessage($0) } == "unknown libpq error")
    }
}
