import Net
import Observability

/// One client connection on one loop: reads, parses, dispatches, writes. When to read, write,
/// time out and close is decided by its `ConnectionLifecycle` (pure, unit-tested with a manual
/// clock); this class carries those decisions out on the socket.
///
/// Loop-owned: every method runs on `context.loop`'s thread. Requests are answered strictly in
/// order (pipelining, RFC 9112 §9.3.2): the next request is not parsed until the current one has
/// its response in `output`. Back-pressure: while output is unflushed the connection does not read.
final class HTTPConnection: Selectable {
    let fd: Int32
    let peer: PeerAddress
    /// Strong: the context outlives its connections, and holds them only until they close (the
    /// cycle ends there). `unowned` cost a checked retain and a release on each of the dozen
    /// uses per request (`swift_unownedRetainStrong` alone: 1.6 % of a `GET /todos/{id}`, perf).
    let context: HTTPLoopContext
    var generation: UInt32 = 0
    /// Counted against `maxConnectionsPerAddress` (released at close).
    var countedAgainstAddress = false

    private var parser: HTTPParser
    /// Input received but not yet consumed by the parser (a partial head, or pipelined requests
    /// waiting for the current response). Empty in the common case: whole requests are parsed
    /// straight out of the loop's shared read buffer.
    private var pending: [UInt8] = []
    /// Responses not yet written. A `ByteWriter`: the encoder copies each piece into room
    /// already there (see `ResponseEncoder.encode`). Its room is made by the first response.
    private var output = ByteWriter(capacity: 0)
    private var outputOffset = 0
    private var interest = ConnectionLifecycle.Interest.read
    private var lifecycle: ConnectionLifecycle

    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    /// The exchange being answered (one at a time: responses go out in request order).
    private var exchange: Exchange?

    private struct Exchange {
        /// Nil for a request that never had a whole head (refused while reading it, timed out).
        var head: HTTPRequestHead?
        /// For a request without a head: its method and path as the request line showed them.
        /// Not copied from the head otherwise (each copy was a retain and a release more a
        /// request, callgrind).
        var requestLine: (method: HTTPMethod, path: Substring)?
        var route: String?
        var requestID: String
        var startedAt: MonotonicTime
        var bytesIn: Int
        var clientIP: String?
        /// Fields the request filter adds to the response (rate-limit state).
        var responseFields: [UInt8] = []

        var method: HTTPMethod { head?.method ?? requestLine?.method ?? .other("-") }
        var path: Substring { head?.path ?? requestLine?.path ?? "-" }
    }
    /// True while a callback handler's start runs inside `dispatch`.
    private var dispatching = false
    var closed: Bool { lifecycle.isClosed }
    private lazy var timer = LoopTimer { [unowned self] in self.timerFired() }
    /// The peer's address as text, made once per connection (not once per access line).
    private lazy var peerText = peer.description

    init(fd: Int32, peer: PeerAddress, context: HTTPLoopContext) {
        self.fd = fd
        self.peer = peer
        self.context = context
        self.parser = HTTPParser(limits: context.configuration.limits)
        self.lifecycle = ConnectionLifecycle(timeouts: context.timeouts, now: context.loop.now)
    }

    /// Called once registered.
    func start() {
        updateDeadline()
    }

    /// Edge-triggered both ways (`Interest.edgeTriggered`): `flush` writes until the socket would
    /// block; reading stops when the socket is drained (a short read or EAGAIN), and otherwise
    /// (back-pressure, the fairness bound of four reads) `inputMayRemain` records that bytes may
    /// be waiting, which `setInterest` turns into an EPOLL_CTL_MOD once reading is wanted again:
    /// the kernel polls the socket then and queues an event if it is readable.
    static let readInterest: Interest = [.read, .edgeTriggered]
    static let writeInterest: Interest = [.write, .edgeTriggered]
    private var inputMayRemain = false

    private var outputPending: Bool { outputOffset < output.count }
    private var handling: Bool { lifecycle.input == .handling }

    /// Since when the connection has been idle (nil while it is not): the longest-idle ones make
    /// room at the connection limit.
    var idleSince: MonotonicTime? { pending.isEmpty ? lifecycle.idleSince : nil }

    // MARK: Events

    func handleEvents(_ events: UInt32) {
        if events & EventBits.error != 0 {
            close(reset: true)
            return
        }
        if events & EventBits.writable != 0 && outputPending {
            flush()
        }
        if !closed && events & (EventBits.readable | EventBits.hangup) != 0 {
            if interest == .read {
                readAvailable(peerHungUp: events & EventBits.hangup != 0)
            } else if events & EventBits.hangup != 0 && !outputPending {
                // The peer is gone while we were not reading (awaiting a handler): nobody is left
                // to read the answer.
                close(reset: true)
                return
            }
        }
        if !closed { afterEvent() }
    }

    /// `peerHungUp`: the event said the peer finished sending (EPOLLRDHUP). Its end of stream is
    /// then read too, past a short read: edge-triggered, no further event would report it.
    private func readAvailable(peerHungUp: Bool = false) {
        context.loop.withReadBuffer { buffer in
            // A few reads per wake-up at most, so one fast sender cannot starve the loop's other sockets.
            for _ in 0..<4 {
                let count: Int
                do throws(SocketError) {
                    count = try Socket.read(fd, into: buffer)
                } catch .wouldBlock {
                    inputMayRemain = false
                    return
                } catch {
                    close(reset: true)
                    return
                }
                if count == 0 {
                    inputMayRemain = false  // nothing can follow the end of stream
                    peerFinishedSending()
                    return
                }
                // While lingering, what arrives is discarded: the answer is already out.
                if !lifecycle.isLingering {
                    consume(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
                }
                if closed { return }
                // A short read drained the socket, unless the peer's end of stream is still to be
                // read; after a full one more may be waiting, and no new edge comes for it
                // (`setInterest` re-arms).
                let drained = count < buffer.count && !peerHungUp
                inputMayRemain = !drained
                if interest != .read || drained { return }
                // `interest` is updated after this batch: check what it will be (back-pressure:
                // nothing more is read while a response is unwritten or the pending input is full).
                if outputPending && !lifecycle.isClosingAfterOutput { return }
                if handling && pending.count >= context.configuration.limits.maxHeaderBytes { return }
            }
        }
    }

    private func peerFinishedSending() {
        if lifecycle.peerFinishedSending() {
            close(reset: false)
            return
        }
        // A response is still being written: finish it, then close (`afterEvent`, which runs
        // after every read, picks the interest).
        pending.removeAll()
    }

    private func consume(_ bytes: UnsafeRawBufferPointer) {
        if pending.isEmpty {
            let used = process(bytes)
            if used < bytes.count && !closed && !lifecycle.isClosingAfterOutput {
                pending.append(contentsOf: bytes[used...])
            }
        } else {
            pending.append(contentsOf: bytes)
            processPending()
        }
    }

    private func processPending() {
        guard !pending.isEmpty else { return }
        let used = pending.withUnsafeBytes { process($0) }
        if closed { return }
        if lifecycle.isClosingAfterOutput {
            pending.removeAll()
        } else {
            pending.removeFirst(used)
        }
    }

    private var canProcess: Bool {
        lifecycle.closing == .open && !handling && output.count - outputOffset < context.configuration.outputHighWater
    }

    /// Parses and answers as many requests as `bytes` holds; returns the bytes consumed.
    private func process(_ bytes: UnsafeRawBufferPointer) -> Int {
        var offset = 0
        while canProcess {
            if parser.isAtRequestBoundary {
                guard offset < bytes.count else { return offset }
            }
            // A head starts with its first byte that is not an empty line's CR or LF (RFC 9112
            // §2.2 lets a client send CRLF after a body): a stray CRLF must not turn an idle
            // keep-alive connection into one with a head deadline (and an unasked-for 408).
            if lifecycle.isBetweenRequests, bytes[offset...].contains(where: { $0 != 13 && $0 != 10 }) {
                lifecycle.requestBytesArrived(now: context.loop.now)
            }
            let base = offset
            let (event, used) = parser.parse(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
            offset += used
            switch event {
            case .needMore:
                return offset
            case .head(let requestHead):
                head = requestHead
                lifecycle.headReceived(hasBody: requestHead.hasBody, now: context.loop.now)
                if requestHead.expectsContinue && requestHead.hasBody {
                    // RFC 9110 §10.1.1: tell the client to send the body it is holding back.
                    output.append(ResponseEncoder.continueResponse)
                    lifecycle.outputQueued(now: context.loop.now)
                }
            case .body(let range):
                body.append(contentsOf: bytes[(base + range.lowerBound)..<(base + range.upperBound)])
                lifecycle.bodyReceived(range.count, now: context.loop.now)
            case .end:
                let request = HTTPRequest(head: head!, body: body)
                head = nil
                body = []
                lifecycle.requestReceived()
                dispatch(request)
            case .error(let error):
                // Method and path for the access line: from the head when it was parsed (a body
                // error), else from the request line when it is readable (a 413 by Content-Length).
                let requestLine = head == nil ? RequestLinePeek.methodAndPath(UnsafeRawBufferPointer(rebasing: bytes[base...])) : nil
                let requestID = RequestID.make()
                exchange = Exchange(head: head, requestLine: requestLine, route: nil,
                                    requestID: requestID, startedAt: requestStartedAt, bytesIn: offset)
                context.metrics.inFlight += 1
                // Broken framing is how request smuggling and scanners look: a security event.
                context.securityLog.warning("malformed request refused", metadata: [
                    "reason": .string("\(error)"), "status": .stringConvertible(error.status.code),
                    "clientIp": .string(peerText), "requestId": .string(requestID),
                ])
                respond(.problem(error.status, detail: error.detail, requestID: requestID), version: .http1_1, keepAlive: false, omitBody: false)
                return offset
            }
        }
        return offset
    }

    // MARK: Requests and responses

    /// Takes the request (`consuming`): the filter and the router fill in its fields in place, where
    /// a copy retained each of its references again (perf: retains were a third of a `GET /health`).
    private func dispatch(_ request: consuming HTTPRequest) {
        let head = request.head
        let omitBody = head.method == .head
        let path = head.path
        exchange = Exchange(head: head, requestLine: nil, route: nil, requestID: request.requestID,
                            startedAt: context.loop.now, bytesIn: head.fields.byteCount + request.body.count)
        context.metrics.inFlight += 1
        let requestID = request.requestID
        request.peer = peer
        if let filter = context.configuration.requestFilter {
            let refusal = filter.inspect(&request, peer)
            exchange?.clientIP = request.clientIP
            exchange?.responseFields = request.responseFields
            if let refusal {
                respond(refusal, version: head.version, keepAlive: head.keepAlive, omitBody: omitBody)
                return
            }
        }
        switch context.router.match(head.method, path: path) {
        case .handler(let handler, let route, let parameters):
            request.parameters = parameters
            request.route = route
            exchange?.route = route
            switch handler {
            case .sync(let respond):
                self.respond(respond(request), version: head.version, keepAlive: head.keepAlive, omitBody: omitBody)
            case .async(let respond):
                startAsync(respond, request: request, omitBody: omitBody)
            case .callback(let start):
                dispatching = true
                start(request, HTTPResponder(connection: self, head: head, omitBody: omitBody, requestID: requestID))
                dispatching = false
            }
        case .methodNotAllowed(let allow, let route):
            exchange?.route = route
            respond(.problem(.methodNotAllowed, detail: "\(head.method) is not allowed on this resource.",
                             requestID: requestID, headers: [("Allow", allow)]),
                    version: head.version, keepAlive: head.keepAlive, omitBody: omitBody)
        case .options(let allow, let route):
            exchange?.route = route
            respond(HTTPResponse(status: .noContent, headers: [("Allow", allow)]),
                    version: head.version, keepAlive: head.keepAlive, omitBody: true)
        case .notFound:
            if head.method == .options && head.target == "*" {
                respond(HTTPResponse(status: .noContent, headers: [("Allow", context.router.allMethods)]),
                        version: head.version, keepAlive: head.keepAlive, omitBody: true)
            } else {
                respond(.problem(.notFound, detail: "No resource at this path.", requestID: requestID),
                        version: head.version, keepAlive: head.keepAlive, omitBody: omitBody)
            }
        }
    }

    private func startAsync(_ handler: @escaping @Sendable (HTTPRequest) async -> HTTPResponse,
                            request: HTTPRequest, omitBody: Bool) {
        let me = LoopBound(self, loop: context.loop)
        let loop = context.loop
        Task(executorPreference: loop) {
            let response = await handler(request)
            loop.assertInLoop()
            me.value.asyncResponseReady(response, head: request.head, omitBody: omitBody)
        }
    }

    func asyncResponseReady(_ response: HTTPResponse, head: HTTPRequestHead, omitBody: Bool) {
        context.loop.assertInLoop()
        guard !closed else { return }  // the client left; nothing to answer
        respond(response, version: head.version, keepAlive: head.keepAlive, omitBody: omitBody)
        // Answered inside `dispatch` (a callback handler that answers at once, or drops its
        // responder): the `process` loop that dispatched it goes on, as after a sync handler.
        // Processing `pending` from here would parse the request being dispatched a second time.
        if dispatching { return }
        // Pipelined requests that arrived meanwhile.
        processPending()
        if !closed { afterEvent() }
    }

    private func respond(_ response: HTTPResponse, version: HTTPVersion, keepAlive: Bool, omitBody: Bool) {
        // While draining, finish this exchange and close (RFC 9112 §9.6).
        let keepOpen = keepAlive && !lifecycle.isDraining && lifecycle.closing == .open
        let connectionHeader: StaticString? = !keepOpen ? "close" : (version == .http1_0 ? "keep-alive" : nil)
        context.dateCache.refresh()
        let before = output.count
        // Moved out, not copied (a copy retained each of its references once more).
        let exchange = self.exchange.take()
        ResponseEncoder.encode(response, into: &output, date: context.dateCache.headerLine,
                               connectionHeader: connectionHeader, omitBody: omitBody,
                               extraHeaders: context.configuration.responseHeaders.bytes,
                               exchangeHeaders: exchange?.responseFields ?? [], requestID: exchange?.requestID)
        if let exchange {
            finished(exchange, status: response.status.code, bytesOut: output.count - before, userID: response.userID)
        }
        // Not keeping the connection open: whatever follows this request is never read
        // (`canProcess` is now false); the caller of `process` drops it.
        lifecycle.responseQueued(keepOpen: keepOpen, now: context.loop.now)
    }

    /// When the request being read began: the first byte of its request line.
    private var requestStartedAt: MonotonicTime {
        switch lifecycle.input {
        case .head(let since), .body(let since, _, _): since
        default: context.loop.now
        }
    }

    /// Metrics and the access-log line of an exchange whose response is now in `output`.
    private func finished(_ exchange: Exchange, status: Int, bytesOut: Int, userID: String?) {
        let duration = context.loop.now - exchange.startedAt
        // Labels never carry raw client input: unknown methods become OTHER, paths become their
        // route template (or "unmatched"), so the number of series stays bounded.
        let method: String
        let requestMethod = exchange.method
        if case .other = requestMethod { method = requestMethod.description == "-" ? "-" : "OTHER" } else { method = requestMethod.description }
        let route = exchange.route ?? "unmatched"
        context.metrics.inFlight -= 1
        if context.configuration.recordMetrics {
            context.metrics.record(method: method, route: route, status: status, seconds: duration.seconds)
        }
        guard let accessLog = context.configuration.accessLog, accessLog.records(method: method, route: exchange.route, status: status) else { return }
        let traceID = exchange.head?.fields.rawValue(.traceID).flatMap { Self.traceRoot(String(decoding: $0, as: UTF8.self)) }
        accessLog.record(AccessRecord(
            method: method, path: exchange.path, route: exchange.route, status: status,
            durationNanoseconds: duration.nanoseconds, bytesIn: exchange.bytesIn, bytesOut: bytesOut,
            clientIP: exchange.clientIP ?? peerText, userAgent: nil, userAgentBytes: exchange.head?.fields.rawValue(.userAgent),
            requestID: exchange.requestID, traceID: traceID, userID: userID), scratch: &context.accessLine)
    }

    /// `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=...;Sampled=1` → `1-5759e988-bd862e3fe1be46a994272793`
    static func traceRoot(_ header: String) -> String? {
        for part in header.split(separator: ";") {
            let field = part.drop { $0 == " " }
            if field.hasPrefix("Root=") { return String(field.dropFirst(5).prefix(64)) }
        }
        return nil
    }

    // MARK: Writing

    /// Runs after each batch of work: write what is waiting, pick the interest and the deadline.
    private func afterEvent() {
        if outputPending { flush() }
        if closed { return }
        setInterest(lifecycle.interest(pendingBytes: pending.count, pendingLimit: context.configuration.limits.maxHeaderBytes))
        updateDeadline()
    }

    private func flush() {
        while outputPending {
            let result = output.withUnsafeBytes { bytes -> Result<Int, SocketError> in
                Result { () throws(SocketError) -> Int in
                    try Socket.write(fd, UnsafeRawBufferPointer(rebasing: bytes[outputOffset...]))
                }
            }
            switch result {
            case .success(let written):
                outputOffset += written
                lifecycle.outputWritten(written, now: context.loop.now)
            case .failure(.wouldBlock):
                return
            case .failure:
                close(reset: true)
                return
            }
        }
        // Keep the buffer for the next response unless it outgrew a typical one (a todo, an
        // error: under 2 KiB): 64 kept-alive connections each keeping a list page's 8 KiB held
        // half a megabyte at peak (docs/BENCHMARKS.md, "Memory"); a list pays one allocation.
        if output.capacity > 4096 {
            output = ByteWriter(capacity: 0)
        } else {
            output.reset()
        }
        outputOffset = 0
        if lifecycle.outputFlushed(now: context.loop.now) {
            // The last response is out. Stop writing, keep reading until the client closes or
            // the linger ends: the client then reads our response instead of a reset caused by
            // its unread request bytes.
            Socket.shutdownWrite(fd)
            return
        }
        // Back-pressure released: handle pipelined requests that were held back.
        if !handling && !pending.isEmpty {
            processPending()
            if outputPending && !closed { flush() }
        }
    }

    private func setInterest(_ wanted: ConnectionLifecycle.Interest) {
        guard !closed, wanted != interest || (wanted == .read && inputMayRemain) else { return }
        interest = wanted
        if wanted == .read { inputMayRemain = false }
        let events: Interest = switch wanted {
        case .read: Self.readInterest
        case .write: Self.writeInterest
        case .none: []
        }
        do {
            try context.loop.reregister(fd: fd, generation: generation, interest: events)
        } catch {
            close(reset: true)
        }
    }

    // MARK: Deadlines

    /// One timer per connection. Its deadline only moves in the heap when it gets earlier; a later
    /// deadline is left to `timerFired`, which re-arms for whatever the lifecycle says then (so a
    /// keep-alive request costs no heap operation).
    private func updateDeadline() {
        if let (at, _) = lifecycle.deadline(), at < timer.deadline {
            context.loop.schedule(timer, at: at)
        }
    }

    private func timerFired() {
        guard !closed, let (at, expiry) = lifecycle.deadline() else { return }
        if context.loop.now < at {
            context.loop.schedule(timer, at: at)
            return
        }
        switch expiry {
        case .closeIdle:
            // Read once more before closing: a request that reached the socket after the last
            // wake-up is answered (with `Connection: close` when draining), not reset.
            readAvailable()
            if closed { return }
            if lifecycle.isIdle && pending.isEmpty {
                close(reset: false)
            } else {
                afterEvent()
            }
        case .lingerOver:
            close(reset: false)
        case .sendTimeout:
            close(reset: true)
        case .requestTimeout:
            // RFC 9110 §15.5.9: 408 tells the client we gave up waiting, then close. Accounted as
            // any response: a request id, an access line (with method and path once the head
            // arrived), a count in http_requests_total.
            if exchange == nil {
                exchange = Exchange(head: head, requestLine: nil, route: nil,
                                    requestID: RequestID.make(), startedAt: requestStartedAt, bytesIn: body.count)
                context.metrics.inFlight += 1
            }
            pending.removeAll()
            respond(.problem(.requestTimeout, detail: "The request was not received in time.", requestID: exchange?.requestID),
                    version: .http1_1, keepAlive: false, omitBody: false)
            afterEvent()
        }
    }

    // MARK: Closing

    /// Graceful shutdown: every response from now on closes its connection; an idle one closes
    /// after the drain grace (see `ConnectionLifecycle.drain`).
    func drain() {
        guard !closed else { return }
        lifecycle.drain(now: context.loop.now)
        updateDeadline()
    }

    func close(reset: Bool) {
        guard !closed else { return }
        lifecycle.closed()
        if let exchange = exchange.take() {
            // The client left before its answer: an access line and a count with status 499, as
            // nginx logs it (no response is sent).
            finished(exchange, status: 499, bytesOut: 0, userID: nil)
        }
        context.loop.deregister(fd: fd)
        context.loop.cancel(timer)
        Socket.close(fd, reset: reset)
        context.connectionClosed(self)
    }
}
