import AWS
import HTTPClient
import JSON
import Logging
import Net
import Synchronization

/// The signing keys of `AUTH=jwt`: a JWKS (RFC 7517 §5) given inline, in a file, or at an https
/// URL. A file or URL is read at start, hourly, and — when a token names an unknown `kid` — again
/// at most once per 30 s (aws-jwt-verify's rate limit; an issuer rotating its keys publishes the
/// new one before using it, so the hourly read usually has it already). Reads run on a queue of
/// their own; a failed read keeps the keys in hand and is logged once.
public final class JWKSKeyStore: VerificationKeys {
    public enum Source: Sendable, CustomStringConvertible {
        case inline([UInt8])
        case file(String)
        case url(HTTPClientURL)

        public var description: String {
            switch self {
            case .inline: "AUTH_JWKS"
            case .file(let path): path
            case .url(let url): url.description
            }
        }
    }

    public static let refreshInterval = TimeSpan.seconds(3600)
    public static let unknownKeyGap = TimeSpan.seconds(30)
    /// Requests waiting for a read at most; more are refused at once (unknown_key).
    static let maxWaiters = 1024

    public let source: Source
    private let client: HTTPClient
    private let logger: Logger
    private let keys = Mutex<[String: VerificationKey]>([:])
    private struct Waiters {
        var next = 0
        var list: [(id: Int, wake: @Sendable () -> Void)] = []
    }

    private let waiters = Mutex(Waiters())
    private let refresher = Mutex<BackgroundRefresher?>(nil)

    public init(source: Source, client: HTTPClient = HTTPClient(), logger: Logger = Logger(label: "security")) {
        self.source = source
        self.client = client
        self.logger = logger
    }

    public func key(for kid: String) -> VerificationKey? {
        keys.withLock { $0[kid] }
    }

    /// The first read (blocking; at start-up). A JWKS that cannot be read or holds no usable key
    /// throws: the service cannot accept any token without one.
    public func start() throws(JWKSError) {
        let loaded = try read()
        keys.withLock { $0 = loaded }
        logger.info("token signing keys loaded", metadata: ["source": "\(source)", "keys": "\(loaded.count)"])
    }

    /// Starts the periodic and on-demand reads (file and URL sources).
    public func startRefreshing() {
        if case .inline = source { return }
        var settings = RefreshPolicy.Settings()
        settings.demandGap = Self.unknownKeyGap
        let refresher = BackgroundRefresher(label: "todo-api.jwks", settings: settings, afterFetch: { [self] in wakeWaiters() }) { [self] reason, failureIsFirst in
            do {
                let loaded = try read()
                let added = keys.withLock { current -> Int in
                    let added = loaded.keys.filter { current[$0] == nil }.count
                    current = loaded
                    return added
                }
                if added > 0 || reason == .rejected {
                    logger.info("token signing keys read again", metadata: ["source": "\(source)", "keys": "\(loaded.count)",
                                                                           "added": "\(added)", "reason": "\(reason.rawValue)"])
                }
                return .success(next: Self.refreshInterval)
            } catch {
                if failureIsFirst() {
                    logger.warning("token signing keys not read again: keeping the current ones", metadata: [
                        "source": "\(source)", "error": "\(error)", "reason": "\(reason.rawValue)"])
                }
                return .failure(latest: nil)
            }
        }
        self.refresher.withLock { $0 = refresher }
        refresher.started(.success(next: Self.refreshInterval))
    }

    /// A token named a kid we lack: read the keys again if allowed now (or already under way),
    /// and call `then` when that read ends (on the reader's queue). False when no read can come
    /// soon (inside the 30 s gap, an inline source, too many waiting): refuse at once.
    public func refresh(then: @escaping @Sendable () -> Void) -> Bool {
        guard let refresher = refresher.withLock({ $0 }) else { return false }
        let id = waiters.withLock { waiters -> Int? in
            guard waiters.list.count < Self.maxWaiters else { return nil }
            waiters.next += 1
            waiters.list.append((waiters.next, then))
            return waiters.next
        }
        guard let id else { return false }
        switch refresher.demand() {
        case .started, .inFlight:
            return true
        case .deferred:
            // No read now: take the waiter back, unless a read that ended meanwhile woke it
            // already (then it answers, and the caller must not).
            let removed = waiters.withLock { waiters -> Bool in
                guard let index = waiters.list.firstIndex(where: { $0.id == id }) else { return false }
                waiters.list.remove(at: index)
                return true
            }
            return !removed
        }
    }

    private func wakeWaiters() {
        let woken = waiters.withLock { waiters -> [(id: Int, wake: @Sendable () -> Void)] in
            defer { waiters.list.removeAll() }
            return waiters.list
        }
        for waiter in woken { waiter.wake() }
    }

    private func read() throws(JWKSError) -> [String: VerificationKey] {
        let bytes: [UInt8]
        switch source {
        case .inline(let json):
            bytes = json
        case .file(let path):
            do { bytes = try FileBytes.contents(path, limit: 1 << 20) } catch { throw JWKSError("cannot read \(path): \(error)") }
        case .url(let url):
            let response: HTTPClientResponse
            do {
                response = try client.perform(HTTPClientRequest(method: "GET", url: url, headers: [("Accept", "application/json"), ("User-Agent", "todo-api")]))
            } catch {
                throw JWKSError("\(url.hostField): \(error.message)")
            }
            guard response.status == 200 else { throw JWKSError("\(url.hostField) answered \(response.status)") }
            bytes = response.body
        }
        guard let parsed = JWKS.parse(bytes) else { throw JWKSError("\(source) is not a JWKS ({\"keys\": [...]})") }
        guard !parsed.isEmpty else { throw JWKSError("\(source) has no usable signing key (RSA ≥ 2048 bits, EC P-256 or P-384, with a kid)") }
        return parsed
    }
}

public struct JWKSError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// A JWK Set's signing keys by `kid` (RFC 7517 §4, §5). Keys for encryption (`use` other than
/// `sig`), without a kid, of another type, or too weak are left out.
public enum JWKS {
    public static func parse(_ bytes: [UInt8]) -> [String: VerificationKey]? {
        guard case .object(let root)? = try? JSONParser.parse(bytes),
              case .array(let entries)? = root.first(where: { $0.key == "keys" })?.value else { return nil }
        var keys: [String: VerificationKey] = [:]
        for case .object(let members) in entries {
            guard let kid = members.string("kid"), !kid.isEmpty, let kty = members.string("kty") else { continue }
            if let use = members.string("use"), use != "sig" { continue }
            guard let key = PublicKey.fromJWK(kty: kty, members: members) else { continue }
            let name = members.string("alg")
            let algorithm = name.flatMap(SignatureAlgorithm.init(rawValue:))
            keys[kid] = VerificationKey(key: key, algorithm: algorithm, algorithmUnsupported: name != nil && algorithm == nil)
        }
        return keys
    }
}
