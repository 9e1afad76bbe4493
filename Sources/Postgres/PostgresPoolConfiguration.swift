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
    /// Connections are replaced after this (±10 % jitter so they do not all go at once): picks up
    /// a new writer after a failover, or a reader added to the cluster.
    public var maxLifetime = TimeSpan.seconds(30 * 60)
    /// Connections above the minimum close after this long unused.
    public var idleTimeout = TimeSpan.seconds(5 * 60)
    /// Queries in flight on one connection before another connection is preferred.
    public var maxPipelineDepth = 64
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
