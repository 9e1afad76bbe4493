// pool-bench: drives the connection pool the way the API will (primary-key SELECTs of todos from
// many concurrent tasks on one event loop) for scripts/bench. Not part of the service image.
//
//   pool-bench <database-url> <connections> <concurrency> <seconds>
//
// Seeds 10,000 todos whose ids are md5(n)::uuid (so pgbench can name the same rows), then prints
// one line: `queries=<n> seconds=<s> cpu_seconds=<s>`.
import Glibc
import Logging
import Net
import Postgres
import Synchronization

let arguments = CommandLine.arguments
guard arguments.count == 5, let connections = Int(arguments[2]), let concurrency = Int(arguments[3]),
      let seconds = Int64(arguments[4]) else {
    print("usage: pool-bench <database-url> <connections> <concurrency> <seconds>")
    exit(2)
}
let settings = try PostgresConnectionSettings.resolve(url: arguments[1], environment: [:])

// Seed once, off the loop.
let seed = try BlockingPostgresConnection(settings)
try seed.execute(script: """
    INSERT INTO todos (id, title, description, priority)
    SELECT md5(n::text)::uuid, 'todo ' || n, 'description of todo ' || n, 'medium'
    FROM generate_series(1, 10000) AS n
    ON CONFLICT (id) DO NOTHING
    """)
let idRows = try seed.query("SELECT md5(n::text)::uuid FROM generate_series(1, 10000) AS n")
let ids = (0..<idRows.rowCount).map { idRows.uuid($0, 0)! }

var configuration = PostgresPoolConfiguration()
configuration.minConnections = connections
configuration.maxConnections = connections
let group = try EventLoopGroup(count: 1)
let database = PostgresDatabase(loops: group.loops, writer: settings, reader: nil, configuration: configuration,
                                logger: Logger(label: "pool-bench"))
try group.start()
database.start()

final class Totals: Sendable {
    let queries = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
}
let totals = Totals()

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

let loop = group.loops[0]
// Warm-up: every connection open and the statement prepared.
_ = await Task(executorPreference: loop) {
    for _ in 0..<(connections * 4) { _ = try? await database.query("SELECT 1") }
}.value
let cpuBefore = cpuSeconds()
let start = MonotonicTime.now()
let deadline = start + .seconds(seconds)
await Task(executorPreference: loop) {
    await withTaskGroup(of: Void.self) { tasks in
        for worker in 0..<concurrency {
            tasks.addTask {
                var state = UInt64(worker + 1) &* 0x9E37_79B9_7F4A_7C15
                while MonotonicTime.now() < deadline {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    let id = ids[Int(state >> 33) % ids.count]
                    do {
                        let row = try await database.query("""
                            SELECT id, title, description, priority, completed, completed_at, created_at, updated_at, version \
                            FROM todos WHERE id = \(id)
                            """)
                        // Decode the row as the API will.
                        _ = (row.uuid(0, 0), row.string(0, 1), row.string(0, 2), row.string(0, 3), row.bool(0, 4),
                             row.timestampMilliseconds(0, 5), row.timestampMilliseconds(0, 6), row.timestampMilliseconds(0, 7), row.int(0, 8))
                        totals.queries.add(1, ordering: .relaxed)
                    } catch {
                        totals.errors.add(1, ordering: .relaxed)
                    }
                }
            }
        }
    }
}.value
let elapsed = (MonotonicTime.now() - start).seconds
print("queries=\(totals.queries.load(ordering: .relaxed)) errors=\(totals.errors.load(ordering: .relaxed)) seconds=\(elapsed) cpu_seconds=\(cpuSeconds() - cpuBefore)")
database.shutdown()
usleep(50_000)
group.shutdown()
