import CLinux

/// Names the calling thread, as `top -H`, perf and /proc/PID/task/*/comm show it. At most 15
/// bytes: a longer name is refused, and the thread keeps the one it inherited.
public func nameCurrentThread(_ name: String) {
    _ = clinux_set_thread_name(name)
}
