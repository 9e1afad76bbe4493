import Auth
import HTTP
import Logging
import Net
import Synchronization

/// The `/todos` routes' gate when `AUTH` is on: runs the `Authenticator` on the loop, answers a
/// refusal with 401 (RFC 6750 §3) and a security event, or hands the handler the caller's owner.
/// A token naming a key not in hand waits for one read of the keys (rate-limited by the key
/// store), then is checked once more.
public final class RouteAuthentication: Sendable {
    let authenticator: Authenticator
    /// The TCP peer may vouch for `x-amzn-oidc-data` (TRUSTED_PROXIES).
    let isTrustedPeer: @Sendable (PeerAddress) -> Bool
    private let logger = Logger(label: "security")
    private let failures = Mutex<[AuthFailure.Reason: Int]>([:])

    public init(authenticator: Authenticator, isTrustedPeer: @escaping @Sendable (PeerAddress) -> Bool) {
        self.authenticator = authenticator
        self.isTrustedPeer = isTrustedPeer
    }

    /// Refusals since start, by reason (`auth_failures_total`).
    public var failureCounts: [(reason: String, count: Int)] {
        let counts = failures.withLock { $0 }
        return AuthFailure.Reason.allCases.map { ($0.rawValue, counts[$0] ?? 0) }
    }

    /// On the connection's loop: `next(owner, respond)` for an accepted caller (the responder then
    /// attributes its answer to the owner in the access log), or a 401 sent.
    func authenticate(_ request: HTTPRequest, respond: HTTPResponder, next: @escaping (String, HTTPResponder) -> Void) {
        let outcome = check(request)
        if case .failure(let failure) = outcome, let kid = failure.kid {
            // Nothing is allocated for this on the common paths: only an unknown key waits.
            let loop = EventLoop.current!  // handlers run on their connection's loop
            let pending = LoopBound((respond, next), loop: loop)
            let waiting = authenticator.awaitKey(kid) { [self] in
                // The keys were read again (off the loop): once more, on the loop, without waiting again.
                loop.execute {
                    let (respond, next) = pending.value
                    self.finish(self.check(request), request: request, respond: respond, next: next)
                }
            }
            if waiting { return }
        }
        finish(outcome, request: request, respond: respond, next: next)
    }

    private func check(_ request: HTTPRequest) -> Result<Caller, AuthFailure> {
        let fields = request.head.fields
        return authenticator.authenticate(authorization: fields[.authorization], albData: fields[.oidcData],
                                          trustedPeer: request.peer.map(isTrustedPeer) ?? false)
    }

    private func finish(_ outcome: Result<Caller, AuthFailure>, request: HTTPRequest, respond: HTTPResponder,
                        next: (String, HTTPResponder) -> Void) {
        switch outcome {
        case .success(let caller):
            respond.userID = caller.owner
            next(caller.owner, respond)
        case .failure(let failure): refuse(failure, request: request, respond: respond)
        }
    }

    private func refuse(_ failure: AuthFailure, request: HTTPRequest, respond: HTTPResponder) {
        failures.withLock { $0[failure.reason, default: 0] += 1 }
        // Never the token: the reason and what the request was.
        logger.warning("unauthorized access", metadata: [
            "event": "unauthorized_access", "reason": .string(failure.reason.rawValue), "detail": .string(failure.description),
            "clientIp": .string(request.clientIP ?? request.peer?.description ?? "-"), "requestId": .string(request.requestID),
            "method": .string(request.head.method.description), "path": .string(String(request.head.path.prefix(256))),
        ])
        respond(Problem.response(.unauthorized, detail: Self.detail(failure), requestID: request.requestID,
                                 type: "urn:todo-api:problem:unauthorized", headers: [("WWW-Authenticate", failure.wwwAuthenticate)]))
    }

    static func detail(_ failure: AuthFailure) -> String {
        failure.reason == .missing ? "This endpoint needs credentials: Authorization: Bearer <token>." : "The credentials were refused: \(failure.description)."
    }
}
