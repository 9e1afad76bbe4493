import CLinux
import Glibc

/// glibc's per-thread cache of freed chunks (tcache) keeps 7 per size class by default; past
/// that a `free` goes to the arena's bins and the next `malloc` of that size takes the slow path
/// (`_int_malloc`). With 64 requests in flight, more than 7 objects of one size (request heads,
/// queries, closure contexts) are freed in a row: 8.8 of the 32 `malloc`s of a `GET /todos/{id}`
/// missed the cache (callgrind), and with 128 per class 1.2 did. Measured on the same binary,
/// same run: instructions per `GET /todos/{id}` 47.5k → 44.8k, server CPU per request −3 %
/// (`GET /todos/{id}`) and −2.4 % (`POST /todos`); peak RSS unchanged (the chunks it keeps were
/// live at the peak anyway; docs/BENCHMARKS.md).
///
/// The memory it may keep is bounded per thread: 128 chunks in each of tcache's 64 size classes
/// (up to 1,032 bytes), some 4 MB in the worst case for a thread whose traffic filled every
/// class at once; the service has one loop thread per core. Under the benchmark's loads no class
/// came near it.
///
/// glibc reads its tunables once, when a process starts, and has no `mallopt` for this one. So
/// `serve` sets `GLIBC_TUNABLES` and executes itself again — same pid (what ECS, Docker and the
/// drills signal), same arguments, same environment otherwise — unless the variable already
/// names `tcache_count` (an operator's own choice wins; `...tcache_count=7` is glibc's default).
/// Never twice: a marker variable goes with the exec and is removed after it, since glibc may
/// drop the setting (a secure-execution process, setuid or with file capabilities, has its
/// malloc tunables erased; such a process is not executed again at all).
enum AllocatorTuning {
    static let name = "glibc.malloc.tcache_count"
    static let setting = "glibc.malloc.tcache_count=128"
    /// Set for the one exec; its presence at start means "already executed again".
    static let marker = "TODO_API_ALLOCATOR_EXEC"

    /// The `GLIBC_TUNABLES` value to execute with, or nil when `current` already sets the count.
    static func tunables(adding current: String?) -> String? {
        guard let current, !current.isEmpty else { return setting }
        if current.contains(name) { return nil }
        return current + ":" + setting
    }

    /// Returns only when the tuning is already in effect, or when executing again failed (the
    /// service then runs with glibc's default: slower, never wrong).
    static func executeAgainIfNeeded() {
        if getenv(marker) != nil {
            unsetenv(marker)
            // Executed as /proc/self/exe, the process is named "exe" (the kernel names it after
            // the file executed): `ps`, `top`, `pidof todo-api` and the threads it starts (they
            // inherit the name) would show that.
            _ = clinux_set_thread_name("todo-api")
            return
        }
        guard clinux_secure_execution() == 0 else { return }
        let current = getenv("GLIBC_TUNABLES").map { String(cString: $0) }
        guard let tunables = tunables(adding: current) else { return }
        guard setenv("GLIBC_TUNABLES", tunables, 1) == 0, setenv(marker, "1", 1) == 0 else { return }
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Still here: no /proc (an unusual sandbox). Carry on untuned, with the variable as it
        // was (children such as a shell must not be told of a setting this process lacks).
        unsetenv(marker)
        if let current { setenv("GLIBC_TUNABLES", current, 1) } else { unsetenv("GLIBC_TUNABLES") }
    }
}
