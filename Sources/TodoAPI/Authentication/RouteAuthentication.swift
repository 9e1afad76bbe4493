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

    /// On the connection's loop: `next(owner, respond)` for an accepted caller, or a 401 sent.
    func authenticate(_ request: HTTPRequest, respond: HTTPResponder, next: @escaping (String, HTTPResponder) -> Void) {
        let fields = request.head.fields
        let trusted = request.peer.map(isTrustedPeer) ?? false
        let loop = EventLoop.current!  // handlers run on their connection's loop
        let pending = LoopBound((respond, next), loop: loop)
        let outcome = authenticator.authenticate(authorization: fields["Authorization"], albData: fields["x-amzn-oidc-data"],
                                                 trustedPeer: trusted) { [self] in
            // The keys were read again (on the key store's queue): once more, on the loop, without waiting again.
            loop.execute {
                let (respond, next) = pending.value
                let retried = self.authenticator.authenticate(authorization: fields["Authorization"], albData: fields["x-amzn-oidc-data"],
                                                              trustedPeer: trusted, mayWait: false)
                self.finish(retried, request: request, respond: respond, next: next)
            }
        }
        if case .awaitingKeys = outcome { return }
        finish(outcome, request: request, respond: respond, next: next)
    }

    private func finish(_ outcome: Authenticator.Outcome, request: HTTPRequest, respond: HTTPResponder, next: (String, HTTPResponder) -> Void) {
        switch outcome {
        case .accepted(let caller):
            next(caller.owner, respond)
        case .refused(let failure):
            refuse(failure, request: request, respond: respond)
        case .awaitingKeys:
            refuse(AuthFailure(.unknownKey, "no key with the token's kid"), request: request, respond: respond)
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

extension HTTPResponse {
    /// This response as the access log should attribute it (`userId`).
    func attributed(to owner: String?) -> HTTPResponse {
        guard let owner else { return self }
        var response = self
        response.userID = owner
        return response
    }
}
