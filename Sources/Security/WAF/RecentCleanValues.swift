import Glibc
import Net

/// The last header value each thread found clean at each place, byte for byte: in front of
/// `CleanValueCache`, it answers "seen and clean" with one comparison instead of a keyed hash.
/// A service behind a load balancer sees one Host on every request and the same few User-Agents
/// and Content-Types; hashing Host and User-Agent was ~700 instructions of a `GET /health`'s
/// 12.8k (callgrind), comparing them is ~60.
///
/// Exact bytes, so a value is found only if that very value was accepted at that place: after the
/// full rules found nothing in it, or the shared cache knew it (whose seeded 63-bit key already
/// accepted it; the configuration never changes while the process runs). Credentials and cookies
/// are not kept here (`RequestInspector.unlessKnownClean`). Per thread (a pthread key, like `LineScratch`): each loop
/// reads and writes its own slots, with no atomics. Bounded: values over `maxBytes` are not
/// remembered, so a thread holds at most `slotCount × 2 × maxBytes` bytes.
final class RecentCleanValues {
    static let maxBytes = 256
    /// Places 0–7 (`CleanValueCache` places) take one slot each; a named header (places 3 and 4,
    /// whose key includes the name) takes one of eight by its name's length modulo 8, so Content-Type,
    /// Accept and the like do not push each other out.
    static let slotCount = 16

    private var names: [[UInt8]]
    private var values: [[UInt8]]
    private var used: [Bool]
    /// The inspector whose findings the slots hold (`RequestInspector.identity`): another
    /// inspector, with another configuration, finds nothing here.
    private var inspector = 0

    private init() {
        names = Array(repeating: [], count: Self.slotCount)
        values = Array(repeating: [], count: Self.slotCount)
        used = Array(repeating: false, count: Self.slotCount)
    }

    static func slot(place: UInt8, name: ArraySlice<UInt8>?) -> Int {
        guard let name else {
            // Unnamed slots do not store their place: one place a slot.
            precondition(place < 8, "an unnamed clean-value place is below 8")
            return Int(place)
        }
        return 8 + (name.count & 7)
    }

    /// Whether `value` (under `name`, for a named header) is this thread's remembered clean
    /// value at `place`.
    func holds(place: UInt8, name: ArraySlice<UInt8>?, _ value: ArraySlice<UInt8>) -> Bool {
        let slot = Self.slot(place: place, name: name)
        guard used[slot], values[slot].count == value.count else { return false }
        if let name {
            // Stored as the place, then the name.
            let stored = names[slot]
            guard stored.count == name.count + 1, stored[0] == place,
                  Self.same(stored[1...], name) else { return false }
        }
        return Self.same(values[slot][...], value)
    }

    func remember(place: UInt8, name: ArraySlice<UInt8>?, _ value: ArraySlice<UInt8>) {
        guard value.count <= Self.maxBytes, (name?.count ?? 0) <= Self.maxBytes else { return }
        let slot = Self.slot(place: place, name: name)
        // Named slots hold one place each: a Referer (3) and another header (4) of the same name
        // length alternate in the slot, and the place is part of what is compared.
        used[slot] = true
        values[slot].removeAll(keepingCapacity: true)
        values[slot].append(contentsOf: value)
        names[slot].removeAll(keepingCapacity: true)
        if let name {
            names[slot].append(place)
            names[slot].append(contentsOf: name)
        }
    }

    private static func same(_ stored: ArraySlice<UInt8>, _ value: ArraySlice<UInt8>) -> Bool {
        stored.withUnsafeBytes { a in value.withUnsafeBytes { b in a.count == b.count && (a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0) } }
    }

    /// This thread's values for `inspector` (emptied when they were another inspector's);
    /// created on first use, released when the thread exits.
    static func ofThisThread(inspector: Int) -> RecentCleanValues {
        let values = perThread.value
        if values.inspector != inspector {
            values.inspector = inspector
            for slot in 0..<slotCount { values.used[slot] = false }
        }
        return values
    }

    private static let perThread = ThreadSpecific { RecentCleanValues() }
}
