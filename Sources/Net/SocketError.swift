import Glibc

/// What a socket call can end in, reduced to the cases callers act on differently.
public enum SocketError: Error, Equatable, CustomStringConvertible {
    /// The operation would block (EAGAIN/EWOULDBLOCK): wait for readiness.
    case wouldBlock
    /// The peer is gone (ECONNRESET, EPIPE, ...).
    case disconnected
    /// Any other failure, with the call that failed.
    case failed(call: String, errno: Int32)

    static func fromErrno(_ call: String, _ code: Int32 = errno) -> SocketError {
        switch code {
        case EAGAIN, EWOULDBLOCK: return .wouldBlock
        case ECONNRESET, EPIPE, ENOTCONN, ECONNABORTED, ETIMEDOUT, EHOSTUNREACH, ENETUNREACH: return .disconnected
        default: return .failed(call: call, errno: code)
        }
    }

    public var description: String {
        switch self {
        case .wouldBlock: return "operation would block"
        case .disconnected: return "peer disconnected"
        case .failed(let call, let code): return "\(call) failed: \(String(cString: strerror(code))) (errno \(code))"
        }
    }
}
