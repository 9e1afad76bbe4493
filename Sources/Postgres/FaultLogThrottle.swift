import Net

/// One log line per cause, not per request: the first occurrence of a cause at once, then while
/// it lasts one summary every `interval` with how many requests it affected meanwhile.
///
/// A 5–10 s outage used to write 1,100–2,050 ERROR lines (one per waiting client) and no line
/// naming the cause. Causes are keyed by event and SQLSTATE, a small fixed set, so the table is
/// bounded. Pure: the caller passes the time and holds the lock (`PostgresFaultLog`).
struct FaultLogThrottle {
    struct Cause: Hashable {
        let event: String
        let sqlState: String?
    }

    /// A line to write.
    struct Line: Equatable {
        let cause: Cause
        /// Requests affected since the previous line of this cause (the first line: 1 or the count given).
        let affected: Int
        /// The latest server or libpq message and host for this cause.
        let message: String
        let host: String
        /// False for the first line of an episode, true for the summaries that follow.
        let isSummary: Bool
    }

    private struct Episode {
        var lastLine: MonotonicTime
        var pending = 0
        var message: String
        var host: String
    }

    let interval: TimeSpan
    private var episodes: [Cause: Episode] = [:]

    init(interval: TimeSpan = .seconds(10)) {
        self.interval = interval
    }

    /// Records `affected` occurrences; returns the line to write now, if any.
    mutating func report(_ cause: Cause, message: String, host: String, affected: Int = 1, now: MonotonicTime) -> Line? {
        guard var episode = episodes[cause] else {
            episodes[cause] = Episode(lastLine: now, message: message, host: host)
            return Line(cause: cause, affected: affected, message: message, host: host, isSummary: false)
        }
        episode.pending += affected
        episode.message = message
        episode.host = host
        episodes[cause] = episode
        return nil
    }

    /// The summaries due at `now`; an episode quiet for a whole interval ends, so that the cause's
    /// next occurrence is logged at once again.
    mutating func due(now: MonotonicTime) -> [Line] {
        var lines: [Line] = []
        for (cause, episode) in episodes where now - episode.lastLine >= interval {
            if episode.pending > 0 {
                lines.append(Line(cause: cause, affected: episode.pending, message: episode.message, host: episode.host, isSummary: true))
                episodes[cause] = Episode(lastLine: now, message: episode.message, host: episode.host)
            } else {
                episodes[cause] = nil
            }
        }
        return lines
    }
}
