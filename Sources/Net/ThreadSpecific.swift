import Glibc

/// One object per thread, created on the thread's first use and released when the thread exits
/// (a pthread key): for scratch state a loop thread reuses from request to request without
/// atomics (`LineScratch`'s event-line writer, the filter's `RecentCleanValues`). For `static let`s:
/// the key is never deleted (a process has 1,024 keys), so one made per instance would leak one.
public final class ThreadSpecific<Value: AnyObject>: @unchecked Sendable {
    // @unchecked Sendable: the key is set once in `init`; each thread only ever reads and writes
    // its own value.
    // Inlinable access (`value`): called across modules on every request, the generic getter
    // would otherwise run unspecialized.
    @usableFromInline var key = pthread_key_t()
    @usableFromInline let make: @Sendable () -> Value

    public init(_ make: @escaping @Sendable () -> Value) {
        self.make = make
        let created = pthread_key_create(&key) { value in
            if let value { Unmanaged<AnyObject>.fromOpaque(value).release() }
        }
        precondition(created == 0, "pthread_key_create failed: \(created)")
    }

    /// This thread's value.
    @inlinable
    public var value: Value {
        if let stored = pthread_getspecific(key) { return Unmanaged<Value>.fromOpaque(stored).takeUnretainedValue() }
        let value = make()
        pthread_setspecific(key, Unmanaged.passRetained(value).toOpaque())
        return value
    }
}
