#!/usr/bin/env python3
"""Connection drills against the real binary over real sockets and a real PostgreSQL (issue
"HTTP connections as a state machine"): SIGTERM under 64 keep-alive clients, slowloris on the
request line, a body at 1 byte/s, 200 clients that never read beside a normal client; and that
`serve` runs with its allocator setting under the pid its caller started.

usage: connection_drills.py BINARY DATABASE_URL  (the database must be migrated)
Prints one line per check and `drills: N passed` at the end; exits 1 on any failure.
Durations are checked against the deadline rules they drill (with the slack each names), never
against speed.
"""
import atexit
import itertools
import json
import os
import random
import resource
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from checks import Checks, free_port

BINARY, DATABASE_URL = sys.argv[1], sys.argv[2]
check = Checks()


servers = []


@atexit.register
def stop_servers():
    """A drill that fails half-way must not leave its server running (it would hold its port)."""
    for proc in servers:
        if proc.poll() is None:
            proc.kill()


def start(port, **env):
    environment = dict(os.environ, DATABASE_URL=DATABASE_URL, RATE_LIMIT="off", LOG_LEVEL="warning",
                       METRICS_PORT="0", **env)
    proc = subprocess.Popen([BINARY, "serve", "--host", "127.0.0.1", "--port", str(port)], env=environment,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    servers.append(proc)
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the server did not start")


def read_response(sock, buffer=b""):
    """One response from `sock`: (status, headers, body, leftover). Raises on EOF or reset."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a response")
        rest += chunk
    return status, headers, rest[:length], rest[length:]


# ---------------------------------------------------------------------------------------------
def sigterm_drill(rounds=5, clients=64):
    """Mixed GET/POST on 64 keep-alive connections, SIGTERM while they run. A request counts as
    failed when it was sent and no complete response came back; a refused reconnect after the
    listener closed sent nothing and is not a failure."""
    seed_id = None
    total_failed = total_done = 0
    exits = []
    for round_number in range(rounds):
        port = free_port()
        proc = start(port)
        if seed_id is None:
            with socket.create_connection(("127.0.0.1", port)) as s:
                body = b'{"title":"drill seed"}'
                s.sendall(b"POST /todos HTTP/1.1\r\nHost: d\r\nUser-Agent: drill\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                seed_id = json.loads(read_response(s)[2])["todo"]["id"]
        stop = threading.Event()
        counts = {"done": 0, "failed": 0}
        lock = threading.Lock()
        errors = []

        def client(number):
            rng = random.Random(number)
            sock = None
            while True:
                if sock is None:
                    if stop.is_set():
                        return
                    try:
                        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                    except OSError:
                        return  # the listener is closed: nothing was sent
                if rng.random() < 0.5:
                    body = b'{"title":"drill %d"}' % number
                    request = b"POST /todos HTTP/1.1\r\nHost: d\r\nUser-Agent: drill\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                else:
                    request = b"GET /todos/%s HTTP/1.1\r\nHost: d\r\nUser-Agent: drill\r\n\r\n" % seed_id.encode()
                try:
                    sock.sendall(request)
                    status, headers, _, _ = read_response(sock)
                    ok = status in (200, 201)
                    with lock:
                        counts["done" if ok else "failed"] += 1
                        if not ok:
                            errors.append(status)
                    if headers.get("connection") == "close":
                        sock.close()
                        sock = None
                except OSError as error:
                    with lock:
                        counts["failed"] += 1
                        errors.append(repr(error))
                    sock.close()
                    sock = None

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for t in threads:
            t.start()
        time.sleep(1.0 + 0.1 * round_number)
        proc.send_signal(signal.SIGTERM)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        exits.append(proc.wait(timeout=60))
        total_failed += counts["failed"]
        total_done += counts["done"]
        if counts["failed"]:
            print(f"     round {round_number}: {counts['failed']} failed, e.g. {errors[:3]}")
    check(f"SIGTERM x{rounds} under {clients} keep-alive clients: {total_failed} of {total_done + total_failed} requests failed",
          total_failed == 0, total_failed)
    check("each SIGTERM exits 0", exits == [0] * rounds, exits)


# ---------------------------------------------------------------------------------------------
def slowloris_drill(header_timeout=4, connections=1000):
    """1,000 connections each trickle a request line at one byte per 2 s: each must be closed (408)
    by HEADER_TIMEOUT + 1 s after its first byte."""
    port = free_port()
    proc = start(port, HEADER_TIMEOUT=f"{header_timeout}s", MAX_CONNECTIONS="4000")
    line = b"GET /todos?limit=100&padding=" + b"a" * 64 + b" HTTP/1.1\r\n"
    selector = selectors.DefaultSelector()
    state = {}
    for n in range(connections):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        state[sock] = {"sent": 0, "first": None, "next": 0.0, "closed": None, "status": None}
        selector.register(sock, selectors.EVENT_READ)
    body_result = {}
    body_thread = threading.Thread(target=slow_body, args=(port, body_result))
    body_thread.start()
    deadline = time.monotonic() + header_timeout + 20
    open_count = connections
    while open_count and time.monotonic() < deadline:
        now = time.monotonic()
        for sock, s in state.items():
            if s["closed"] is None and now >= s["next"] and s["sent"] < len(line):
                try:
                    sock.send(line[s["sent"]:s["sent"] + 1])
                    if s["first"] is None:
                        s["first"] = now
                    s["sent"] += 1
                    s["next"] = now + 2.0
                except OSError:
                    pass
        for key, _ in selector.select(timeout=0.05):
            sock = key.fileobj
            s = state[sock]
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if data.startswith(b"HTTP/1.1 "):
                s["status"] = int(data[9:12])
            if not data or s["status"] is not None:
                s["closed"] = time.monotonic()
                selector.unregister(sock)
                open_count -= 1
    held = [s["closed"] - s["first"] for s in state.values() if s["closed"] is not None and s["first"] is not None]
    statuses = {s["status"] for s in state.values()}
    longest = max(held) if held else float("inf")
    check(f"slowloris: {connections} request lines at 1 byte/2 s all closed (longest held {longest:.2f} s, "
          f"HEADER_TIMEOUT {header_timeout} s + 1 s)", open_count == 0 and longest <= header_timeout + 1, (open_count, longest))
    check("slowloris: each got a 408", statuses == {408}, statuses)
    for sock in state:
        sock.close()
    body_thread.join()
    check(f"a body at 1 byte/s is cut by the minimum rate (408 after {body_result.get('after', 0):.1f} s; "
          "BODY_MIN_RATE 500 B/s after 10 s)", body_result.get("status") == 408 and body_result["after"] < 12, body_result)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def slow_body(port, result):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /todos HTTP/1.1\r\nHost: d\r\nUser-Agent: drill\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
    started = time.monotonic()
    sock.settimeout(1.0)
    for _ in range(60):
        try:
            sock.send(b" ")
            data = sock.recv(65536)
            if data:
                result["status"] = int(data[9:12])
            result["after"] = time.monotonic() - started
            break
        except socket.timeout:
            continue
        except OSError:
            result["after"] = time.monotonic() - started
            break
    sock.close()


# ---------------------------------------------------------------------------------------------
def send_queue_bytes(port):
    """Bytes in the server's kernel send queues (tx_queue of its sockets in /proc/net/tcp)."""
    total = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local_port = int(fields[1].split(":")[1], 16)
            if local_port == port:
                total += int(fields[4].split(":")[0], 16)
    return total


def connections_of(port):
    with open("/proc/net/tcp") as f:
        next(f)
        return sum(1 for line in f if int(line.split()[1].split(":")[1], 16) == port and line.split()[3] == "01")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def slow_readers_drill(readers=200, write_timeout=5):
    """200 clients ask for the largest list page (100 todos of 2,000 characters) many times over
    and never read. Their memory in the server (RSS growth) and in its kernel send queues stays
    bounded, they are closed by the write rule, and a normal client is served meanwhile."""
    port = free_port()
    proc = start(port, WRITE_TIMEOUT=f"{write_timeout}s")
    # 100 todos whose descriptions fill the limit with 3-byte characters: ~600 KB per list page.
    with socket.create_connection(("127.0.0.1", port)) as s:
        buffer = b""
        for n in range(100):
            body = json.dumps({"title": f"big {n}", "description": "\u3042" * 2000}).encode()
            s.sendall(b"POST /todos HTTP/1.1\r\nHost: d\r\nUser-Agent: drill\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            status, _, _, buffer = read_response(s, buffer)
            assert status == 201, status
        s.sendall(b"GET /todos?limit=100 HTTP/1.1\r\nHost: d\r\nUser-Agent: drill\r\n\r\n")
        page = len(read_response(s, buffer)[2])
    baseline = rss_kib(proc.pid)
    request = b"GET /todos?limit=100 HTTP/1.1\r\nHost: d\r\nUser-Agent: drill\r\n\r\n" * 20
    sockets = []
    for _ in range(readers):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(request)
        sockets.append(sock)
    started = time.monotonic()
    latencies = []
    peak_rss = peak_queue = 0
    normal = socket.create_connection(("127.0.0.1", port))
    leftover = b""
    while time.monotonic() - started < write_timeout + 6:
        t0 = time.monotonic()
        normal.sendall(b"GET /health HTTP/1.1\r\nHost: d\r\nUser-Agent: drill\r\n\r\n")
        status, _, _, leftover = read_response(normal, leftover)
        latencies.append(time.monotonic() - t0)
        peak_rss = max(peak_rss, rss_kib(proc.pid))
        peak_queue = max(peak_queue, send_queue_bytes(port))
        time.sleep(0.01)
    remaining = connections_of(port) - 1  # the normal client's
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    growth = (peak_rss - baseline) / 1024
    queue = peak_queue / 1024 / 1024
    # The bound: per connection one list page in the process (its output is not refilled while
    # it is unwritten: pipelined requests wait unread), plus glibc malloc's slack on those
    # buffers (25 %), and the kernel's send buffer (2 x SEND_BUFFER_SIZE = 128 KiB).
    bound = readers * (page * 1.25 + 128 * 1024) / 1024 / 1024
    check(f"{readers} readers that never read: RSS +{growth:.1f} MB, kernel send queues {queue:.1f} MB, "
          f"together within the bound {bound:.0f} MB ({readers} x (one {page // 1024} KiB page + 25 % + 128 KiB))",
          growth + queue <= bound, (growth, queue, bound))
    check(f"they are closed by the write rule (WRITE_TIMEOUT {write_timeout} s): {remaining} left after {write_timeout + 6} s",
          remaining == 0, remaining)
    check(f"a normal client is served meanwhile ({len(latencies)} requests, p99 {p99:.1f} ms)",
          all(latency < 5 for latency in latencies), p99)
    for sock in sockets:
        sock.close()
    normal.close()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def tunables_of(pid):
    """The process's GLIBC_TUNABLES as it was executed with. glibc up to 2.38 (Debian 12 has
    2.36), parsing it at start, ends each tunable in place with a NUL where the `:` was, so
    /proc/PID/environ shows the later ones as entries of their own: they are joined back."""
    with open(f"/proc/{pid}/environ", "rb") as f:
        items = f.read().split(b"\0")
    for index, item in enumerate(items):
        if item.startswith(b"GLIBC_TUNABLES="):
            parts = [item[len(b"GLIBC_TUNABLES="):]]
            parts += list(itertools.takewhile(lambda rest: rest.startswith(b"glibc."), items[index + 1:]))
            return b":".join(parts)
    return None


def allocator_tuning_drill():
    """`serve` executes itself again with glibc's tcache at 128 chunks per size class (see
    AllocatorTuning.swift): the process the caller started (same pid, what ECS and these drills
    signal) must end up serving with the setting, an operator's other tunables kept; one that
    already names tcache_count is left as it is. SIGTERM still ends it with 0."""
    cases = [
        ("no GLIBC_TUNABLES", None, b"glibc.malloc.tcache_count=128", True),
        ("other tunables", "glibc.malloc.arena_max=2", b"glibc.malloc.arena_max=2:glibc.malloc.tcache_count=128", True),
        ("the operator's own count", "glibc.malloc.tcache_count=7", b"glibc.malloc.tcache_count=7", False),
    ]
    for label, given, expected, executed_again in cases:
        port = free_port()
        extra = {} if given is None else {"GLIBC_TUNABLES": given}
        saved = os.environ.pop("GLIBC_TUNABLES", None)
        try:
            proc = start(port, **extra)
        finally:
            if saved is not None:
                os.environ["GLIBC_TUNABLES"] = saved
        seen = tunables_of(proc.pid)
        # The one exec carries a marker (the image it started sees it and drops it from its own
        # environment; /proc shows what the image was executed with).
        with open(f"/proc/{proc.pid}/environ", "rb") as f:
            marked = b"TODO_API_ALLOCATOR_EXEC=1" in f.read().split(b"\0")
        check(f"allocator tuning ({label}): pid {proc.pid}, the one started, serves with GLIBC_TUNABLES={seen!r}, "
              f"{'executed again once' if marked else 'not executed again'}",
              seen == expected and marked == executed_again, (seen, expected, marked))
        proc.send_signal(signal.SIGTERM)
        check(f"allocator tuning ({label}): SIGTERM to that pid exits 0", proc.wait(timeout=30) == 0, proc.returncode)


allocator_tuning_drill()
sigterm_drill()
slowloris_drill()
slow_readers_drill()
print(f"drills: {check.passed} passed, {check.failed} failed")
sys.exit(1 if check.failed else 0)
