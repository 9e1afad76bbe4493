import Synchronization

/// Header values the rules found nothing in, remembered by a keyed 64-bit hash: real traffic
/// repeats the same few User-Agents, Accept-Languages and cookies on every request, and checking
/// a browser's User-Agent costs more than everything else the filter does for a `GET /todos/{id}`.
/// Direct-mapped, fixed size (4,096 slots, 32 KiB), lock-free: a slot is one atomic word, a newer
/// value simply replaces an older one. Only values with no match at all (not even count mode) are
/// stored; the configuration never changes while the process runs, so a clean value stays clean.
/// `Hasher` is seeded randomly per process, so a client cannot aim for a collision with a value it
/// knows to be cached.
/// The slots are one allocation of atomics (32 KiB), not an object each (4,096 objects were 160 KiB
/// of resident heap). `@unchecked Sendable`: every access to the slots is atomic.
final class CleanValueCache: @unchecked Sendable {
    private static let size = 4096
    private let slots: UnsafeMutablePointer<Atomic<UInt64>>

    init() {
        slots = .allocate(capacity: Self.size)
        for i in 0..<Self.size { (slots + i).initialize(to: Atomic(0)) }
    }

    deinit {
        slots.deinitialize(count: Self.size)
        slots.deallocate()
    }

    /// A value's key at `place`, under its header's `name` for the places whose key includes it
    /// (empty otherwise). One `combine(bytes:)` for the whole value (byte-by-byte combining cost a
    /// third of the filter's time on a User-Agent) and one `Hasher` for name and value (two
    /// combined cost a second set-up and finalization per header). The name's length goes first,
    /// so no two (name, value) pairs hash the same bytes. Names are hashed as sent, so
    /// `user-agent` and `User-Agent` are two keys — a miss, never a wrong hit.
    static func key(name: ArraySlice<UInt8> = [], value: ArraySlice<UInt8>, place: UInt8) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(place)
        hasher.combine(name.count)
        name.withUnsafeBytes { hasher.combine(bytes: $0) }
        value.withUnsafeBytes { hasher.combine(bytes: $0) }
        return UInt64(bitPattern: Int64(hasher.finalize())) | 1  // never 0, the empty slot
    }

    func contains(_ key: UInt64) -> Bool {
        slots[Int(key >> 52) & (Self.size - 1)].load(ordering: .relaxed) == key
    }

    func insert(_ key: UInt64) {
        slots[Int(key >> 52) & (Self.size - 1)].store(key, ordering: .relaxed)
    }
}
