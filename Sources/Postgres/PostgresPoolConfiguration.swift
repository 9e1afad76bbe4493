import Net

/// Pool sizing and timing. Defaults are for a 1-vCPU Fargate task among up to 20 sharing one
/// Aurora db.t4g.medium writer (max_connections 405): 20 tasks × 8 = 160 connections at most,
/// leaving room for a second reader pool, migrations, operators and RDS's own reserved slots,
/// where 20 × 20 = 400 would not. Eight is plenty: with pipelining one connection carries many
/// concurrent queries, and a 1-vCPU task saturates its CPU long before 8 busy backends do.
public struct PostgresPoolConfiguration: Sendable {
    /// Connections opened at start and kept (per process; spread over the loops).
    public var minConnections = 2
    /// Connections at most (per process; spread over the loops, at least one each).
    public var maxConnections = 8
    /// How long a query may wait for a usable connection before failing (the API answers 503).
    public var acquireTimeout = TimeSpan.seconds(2)
    /// A request's database work ends by this long after the request began, whatever the
    /// connection is doing: the client gets 503 at once, a running statement is cancelled
    /// (`DB_REQUEST_TIMEOUT`). The acquire timeout bounds the wait for a connection within it.
    public var requestTimeout = TimeSpan.seconds(3) {
        didSet { pipelineRules.drainLimit = requestTimeout }
    }
    /// Connections are replaced after this (±10 % jitter so they do not all go at once): picks up
    /// a new writer after a failover, or a reader added to the cluster.
    public var maxLifetime = TimeSpan.seconds(30 * 60)
    /// Connections above the minimum close after this long unused.
    public var idleTimeout = TimeSpan.seconds(5 * 60)
    /// Queries in flight on one connection at most.
    public var maxPipelineDepth = 64 {
        didSet { pipelineRules.maxDepth = maxPipelineDepth }
    }
    /// The isolation rule's and the deadlines' constants (`PostgresPipeline.Rules`); the drain
    /// limit follows the request timeout.
    var pipelineRules = PostgresPipeline.Rules()
    /// New connections per process: at most `maxConnections` at once, refilled at that many per
    /// this period (`ConnectionBudget`).
    public var connectionRefillPeriod = TimeSpan.seconds(10)
    /// Queries waiting for a connection per loop; beyond it they fail at once (bounded queue).
    public var maxWaiting = 1024
    /// Reconnect backoff: base doubled per consecutive failure, capped, with full jitter.
    public var reconnectBase = TimeSpan.milliseconds(100)
    public var reconnectCap = TimeSpan.seconds(5)

    public init() {}

    func perLoop(loops: Int) -> (min: Int, max: Int) {
        let maximum = max(1, (maxConnections + loops - 1) / loops)
        let minimum = min(maximum, (minConnections + loops - 1) / loops)
        return (minimum, maximum)
    }
}
