import Net

/// The deadlines and closing rules of one client connection, as a pure state machine: events in,
/// actions out, time passed in (`now`), no socket. `HTTPConnection` owns one, tells it what
/// happened and carries out what it returns; `ConnectionLifecycleTests` drive it with a manual
/// clock. (Hummingbird's `HTTPConnectionStateHandler` and swift-nio's `IdleStateHandler` split
/// the same way.)
///
/// Two sides, as on the wire:
/// - **input**: between requests, receiving a head, receiving a body, or handling a request;
/// - **output**: a response being written, or nothing queued;
/// and a closing stage: open, close after the queued output, lingering half-close, closed.
struct ConnectionLifecycle {
    enum Input: Equatable {
        /// Nothing of the next request has arrived.
        case betweenRequests(since: MonotonicTime)
        /// The first byte of a request line arrived at `since` (slowloris: the head deadline counts
        /// from here, whatever trickles after it).
        case head(since: MonotonicTime)
        /// `received` body bytes since `since`, the last at `lastByte`.
        case body(since: MonotonicTime, received: Int, lastByte: MonotonicTime)
        /// A complete request is with its handler; its own deadlines (DB_REQUEST_TIMEOUT) bound it.
        case handling
    }

    struct Output: Equatable {
        var since: MonotonicTime
        var written: Int
        var lastProgress: MonotonicTime
    }

    enum Closing: Equatable {
        case open
        /// The response being written is the last one (`Connection: close`, an error, a drain, or
        /// the client half-closed after its request).
        case afterOutput
        /// Write side shut, reading and discarding until the client closes (nginx's lingering_close).
        case lingering(since: MonotonicTime)
        case closed
    }

    /// What the deadline that fired asks for.
    enum Expiry: Equatable {
        /// Close without an answer (idle keep-alive, linger over, drain grace over). The
        /// connection reads once more first: a request that reached the socket is answered.
        case closeIdle
        /// The client did not send its request in time: answer 408 and close.
        case requestTimeout
        /// The client does not read its response fast enough: close with a reset.
        case sendTimeout
        /// A lingering close ran out: close.
        case lingerOver
    }

    enum Interest: Equatable { case read, write, none }

    let timeouts: ConnectionTimeouts
    private(set) var input: Input
    private(set) var output: Output?
    private(set) var closing = Closing.open
    /// Set by `drain`: an idle connection then closes after `drainGrace`.
    private(set) var drainingSince: MonotonicTime?

    init(timeouts: ConnectionTimeouts, now: MonotonicTime) {
        self.timeouts = timeouts
        input = .betweenRequests(since: now)
    }

    // MARK: Input events

    /// Bytes of a request are about to be parsed: a head starts if none was under way.
    mutating func requestBytesArrived(now: MonotonicTime) {
        if case .betweenRequests = input { input = .head(since: now) }
    }

    /// The head is complete; a body follows when `hasBody` (else `requestReceived` comes next).
    mutating func headReceived(hasBody: Bool, now: MonotonicTime) {
        if hasBody { input = .body(since: now, received: 0, lastByte: now) }
    }

    mutating func bodyReceived(_ count: Int, now: MonotonicTime) {
        guard case .body(let since, let received, _) = input else { return }
        input = .body(since: since, received: received + count, lastByte: now)
    }

    /// The request is complete and dispatched.
    mutating func requestReceived() {
        input = .handling
    }

    /// The response (or an error answer) is queued for writing. `keepOpen` false: it is the last.
    mutating func responseQueued(keepOpen: Bool, now: MonotonicTime) {
        input = .betweenRequests(since: now)
        if !keepOpen, closing == .open { closing = .afterOutput }
        outputQueued(now: now)
    }

    /// The client closed its side (read returned 0). Returns whether to close now. A response
    /// already being written is finished first (then the lingering close), unless a pipelined
    /// request is with its handler too. A request still with its handler is abandoned: its answer is dropped and it is logged as 499, as nginx does
    /// (read() cannot tell a half-close from a client that is gone, and one that is gone is the
    /// common case).
    mutating func peerFinishedSending() -> Bool {
        guard output != nil, input != .handling, closing == .open || closing == .afterOutput else { return true }
        closing = .afterOutput
        return false
    }

    // MARK: Output events

    mutating func outputQueued(now: MonotonicTime) {
        if output == nil { output = Output(since: now, written: 0, lastProgress: now) }
    }

    mutating func outputWritten(_ count: Int, now: MonotonicTime) {
        output?.written += count
        output?.lastProgress = now
    }

    /// Everything queued is written. Returns true when the write side should now shut (the last
    /// response is out): the lingering close begins.
    mutating func outputFlushed(now: MonotonicTime) -> Bool {
        output = nil
        if closing == .afterOutput {
            closing = .lingering(since: now)
            return true
        }
        if case .betweenRequests = input { input = .betweenRequests(since: now) }
        return false
    }

    // MARK: Drain and close

    /// Graceful shutdown. Every response from now on says `Connection: close`; an idle connection
    /// waits `drainGrace` for a request already on its way (a client that sent just before it
    /// could see our FIN would otherwise get a reset), then closes.
    mutating func drain(now: MonotonicTime) {
        if drainingSince == nil { drainingSince = now }
    }

    var isDraining: Bool { drainingSince != nil }

    var isBetweenRequests: Bool { if case .betweenRequests = input { true } else { false } }

    mutating func closed() {
        closing = .closed
        output = nil
    }

    var isClosed: Bool { closing == .closed }
    var isLingering: Bool { if case .lingering = closing { true } else { false } }
    /// No more requests are read: the queued response is the last.
    var isClosingAfterOutput: Bool { closing == .afterOutput }

    /// Nothing under way and nothing owed: closing now loses nothing the server has seen.
    var isIdle: Bool {
        if case .betweenRequests = input, output == nil, closing == .open { return true }
        return false
    }

    /// Since when the connection has been idle (nil while it is not): the longest-idle ones make
    /// room at the connection limit.
    var idleSince: MonotonicTime? {
        if case .betweenRequests(let since) = input, output == nil, closing == .open { return since }
        return nil
    }

    // MARK: Interest

    /// What to wait for. `pendingBytes`: input buffered but not yet parsed (pipelined requests
    /// behind the one being handled).
    func interest(pendingBytes: Int, pendingLimit: Int) -> Interest {
        switch closing {
        case .closed: return .none
        case .lingering: return .read
        case .afterOutput: return output != nil ? .write : .none
        case .open: break
        }
        // Back-pressure: while a response is unwritten nothing more is read, so a client that
        // pipelines without reading holds at most one response and `pendingLimit` of input.
        if output != nil { return .write }
        // While a handler runs we keep reading (no epoll_ctl per request): clients that do not
        // pipeline send nothing meanwhile; one that does fills the pending input up to the
        // limit, then is not read until its response is out.
        if input == .handling && pendingBytes >= pendingLimit { return .none }
        return .read
    }

    // MARK: Deadlines

    /// The one deadline that matters now, and what happens when it passes; nil when none runs
    /// (a handler is answering: its own deadlines bound it).
    func deadline() -> (at: MonotonicTime, expiry: Expiry)? {
        switch closing {
        case .closed: return nil
        case .lingering(let since): return (since + timeouts.linger, .lingerOver)
        case .open, .afterOutput: break
        }
        if let output {
            // nginx's send_timeout bounds each stall; the minimum rate bounds the whole response,
            // so a client reading a few bytes per stall cannot hold it for hours.
            let stall = output.lastProgress + timeouts.write
            let rate = output.since + Self.allowance(output.written, rate: timeouts.sendMinRate, grace: timeouts.sendGrace)
            return (min(stall, rate), .sendTimeout)
        }
        switch input {
        case .handling:
            return nil
        case .betweenRequests(let since):
            if closing == .afterOutput { return nil }  // closes as soon as the output is flushed
            var at = since + timeouts.idle
            if let drainingSince { at = min(at, max(drainingSince, since) + timeouts.drainGrace) }
            return (at, .closeIdle)
        case .head(let since):
            return (since + timeouts.header, .requestTimeout)
        case .body(let since, let received, let lastByte):
            // Apache mod_reqtimeout's MinRate: after the grace period the body must have kept an
            // average rate, so one byte per pause cannot hold the connection (BODY_TIMEOUT alone
            // bounds only pauses).
            let pause = lastByte + timeouts.body
            let rate = since + Self.allowance(received, rate: timeouts.bodyMinRate, grace: timeouts.bodyGrace)
            return (min(pause, rate), .requestTimeout)
        }
    }

    /// Time `bytes` may take at `rate` bytes/s, and never less than `grace`. A rate of 0 turns the
    /// rule off.
    static func allowance(_ bytes: Int, rate: Int, grace: TimeSpan) -> TimeSpan {
        guard rate > 0 else { return TimeSpan(nanoseconds: Int64.max / 4) }
        let earned = TimeSpan(nanoseconds: Int64(bytes) * (1_000_000_000 / Int64(rate)))
        return max(grace, earned)
    }
}

/// The connection deadlines (see `HTTPServerConfiguration` for each one's reason).
struct ConnectionTimeouts: Equatable {
    var header: TimeSpan
    var body: TimeSpan
    var bodyMinRate: Int
    var bodyGrace: TimeSpan
    var write: TimeSpan
    var sendMinRate: Int
    var sendGrace: TimeSpan
    var idle: TimeSpan
    var linger: TimeSpan
    var drainGrace: TimeSpan
}
