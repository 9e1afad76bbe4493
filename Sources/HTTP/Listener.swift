import Glibc
import Logging
import Net

/// A listening socket on one loop (one per loop with SO_REUSEPORT: the kernel balances accepts).
final class Listener: Selectable {
    let fd: Int32
    unowned let context: HTTPLoopContext
    var generation: UInt32 = 0
    private var paused = false
    private lazy var resumeTimer = LoopTimer { [unowned self] in self.resume() }

    init(fd: Int32, context: HTTPLoopContext) {
        self.fd = fd
        self.context = context
    }

    func handleEvents(_ events: UInt32) {
        // Bounded batch: accepting is fair to the loop's existing connections.
        for _ in 0..<64 {
            do {
                let (client, peer) = try Socket.accept(fd)
                context.accepted(fd: client, peer: peer)
            } catch .wouldBlock {
                return
            } catch .disconnected {
                continue  // the client gave up while queued (ECONNABORTED)
            } catch {
                if case .failed(_, let code) = error, code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM {
                    // Out of descriptors or memory: accepting again at once would spin the loop.
                    // Pause 100 ms (nginx disables accept similarly) and say so.
                    context.logger.error("accept paused: out of resources", metadata: ["error": "\(error)"])
                    pause()
                } else {
                    context.logger.error("accept failed", metadata: ["error": "\(error)"])
                }
                return
            }
        }
    }

    private func pause() {
        guard !paused else { return }
        paused = true
        try? context.loop.reregister(fd: fd, generation: generation, interest: [])
        context.loop.schedule(resumeTimer, at: context.loop.now + .milliseconds(100))
    }

    private func resume() {
        paused = false
        try? context.loop.reregister(fd: fd, generation: generation, interest: .read)
    }

    func close() {
        context.loop.cancel(resumeTimer)
        context.loop.deregister(fd: fd)
        Socket.close(fd)
    }
}
