#!/usr/bin/env python3
"""Process-level checks of the built `todo-api` binary: command line, exit codes, signals,
threads idle in epoll_wait. Real process, real sockets. Usage: smoke_test.py path/to/todo-api"""
import os
import signal
import socket
import subprocess
import sys
import time

from checks import Checks, free_port

binary = sys.argv[1]
check = Checks(indent="  ")


def request(port, raw, timeout=5):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk


def start(port, *args, env=None):
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.Popen([binary, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


def run(*args, env=None):
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=20,
                          env=dict(os.environ, **(env or {})))


print("smoke: command line and configuration")
result = run("--version")
check("--version prints the version and the linked libraries", result.returncode == 0
      and result.stdout.startswith("todo-api ") and "libpq" in result.stdout, (result.returncode, result.stdout))
result = run("healthcheck", env={"PORT": "abc"})
check("healthcheck refuses a bad PORT (exit 2, named)", result.returncode == 2 and "PORT" in result.stderr, (result.returncode, result.stderr))
result = run("serve", "--port", "eighty")
check("invalid flag value exits 2", result.returncode == 2, result.returncode)
check("the message names the flag", "--port" in result.stderr, result.stderr)
result = run(env={"PORT": "99999"})
check("invalid env value exits 2", result.returncode == 2, result.returncode)
check("the message names the variable", "PORT" in result.stderr, result.stderr)
result = run(env={"IDLE_TIMEOUT": "forever"})
check("invalid timeout exits 2", result.returncode == 2 and "IDLE_TIMEOUT" in result.stderr, result.stderr)
result = run("serve", "--no-such-flag")
check("unknown flag exits 2", result.returncode == 2, result.returncode)
result = run("--help")
check("--help exits 0 and lists serve", result.returncode == 0 and "serve" in result.stdout, result.returncode)
busy = socket.socket()
busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
busy.bind(("127.0.0.1", 0))
busy.listen()
result = run("serve", "--host", "127.0.0.1", "--port", str(busy.getsockname()[1]))
check("port in use exits 1 with a message", result.returncode == 1 and "bind" in result.stderr, (result.returncode, result.stderr))
busy.close()
# Held with SO_REUSEPORT, as a second todo-api would hold it: the kernel would let both share the
# port and split the connections between them; the service must refuse instead.
shared = socket.socket()
shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
shared.bind(("127.0.0.1", 0))
shared.listen()
result = run("serve", "--host", "127.0.0.1", "--port", str(shared.getsockname()[1]))
check("port held with SO_REUSEPORT by another process exits 1", result.returncode == 1 and "in use" in result.stderr,
      (result.returncode, result.stderr))
shared.close()
result = run(env={"DRAIN_TIMEOUT": "3000000h"})
check("a duration that overflows exits 2 naming the setting", result.returncode == 2 and "DRAIN_TIMEOUT" in result.stderr,
      (result.returncode, result.stderr))

print("smoke: database")
no_db = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_SECRET") and not k.startswith("PG")}
result = subprocess.run([binary, "migrate"], capture_output=True, text=True, timeout=20, env=no_db)
check("migrate without a database exits 2", result.returncode == 2 and "DATABASE_URL" in result.stderr, (result.returncode, result.stderr))
database_url = os.environ.get("TEST_DATABASE_URL")
check("the test database is configured (scripts/test starts it)", bool(database_url))
if database_url:
    migrations = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Migrations")
    result = run("migrate", "--migrations-dir", migrations, env={"DATABASE_URL": database_url})
    check("migrate exits 0", result.returncode == 0, result.stderr + result.stdout)
    result = run("migrate", "--migrations-dir", migrations, env={"DATABASE_URL": database_url})
    check("migrate again applies nothing", result.returncode == 0 and '"applied":"0"' in result.stdout, result.stdout)
    result = run("migrate", "--migrations-dir", migrations, env={"DATABASE_URL": database_url, "PORT": "abc"})
    check("migrate ignores a PORT it does not use", result.returncode == 0, (result.returncode, result.stderr))
    result = run("migrate", env={"DATABASE_URL": "postgres://todo:secret-pw@127.0.0.1:1/todo"})
    check("unreachable database: exit 1, reason given, password not shown",
          result.returncode == 1 and "refused" in result.stderr and "secret-pw" not in result.stderr + result.stdout,
          (result.returncode, result.stderr))
    result = run("serve", "--port", "1", env={"DATABASE_URL": "postgres://u@h/db?nosuchparameter=1"})
    check("invalid DATABASE_URL exits 2", result.returncode == 2 and "DATABASE_URL" in result.stderr, result.stderr)
    port = free_port()
    proc = start(port, env={"DATABASE_URL": database_url})
    response = request(port, b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    out = proc.stdout.read().decode()
    check("serves with a database configured", response.startswith(b"HTTP/1.1 200"), response)
    check("logs the database without its password", '"database":"' in out and "%40" not in out and "p@ss" not in out, out)

print("smoke: serving")
port = free_port()
proc = start(port, "--threads", "2")
response = request(port, b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
check("GET /health is 200 JSON", response.startswith(b"HTTP/1.1 200 OK\r\n")
      and b"Content-Type: application/json" in response and response.endswith(b'{"status":"ok"}'), response)

# Idle: every thread waits in the kernel in epoll_wait (loops) or sigtimedwait (main thread).
time.sleep(0.3)
waits = {}
for tid in os.listdir(f"/proc/{proc.pid}/task"):
    with open(f"/proc/{proc.pid}/task/{tid}/wchan") as f:
        waits[tid] = f.read().strip()
loops = [w for w in waits.values() if w == "do_epoll_wait"]
# ... and the one log-writer thread sleeps on a futex until a line is queued.
writers = [w for w in waits.values() if w.startswith("futex")]
others = [w for w in waits.values() if not (w == "do_epoll_wait" or w.startswith("do_sigtimedwait") or w.startswith("futex"))]
check("2 loop threads idle in epoll_wait", len(loops) == 2, waits)
# Named (the process re-executes itself for its allocator tuning; /proc/self/exe would name it "exe").
names = sorted(open(f"/proc/{proc.pid}/task/{tid}/comm").read().strip() for tid in os.listdir(f"/proc/{proc.pid}/task"))
check("the process and its threads are named", open(f"/proc/{proc.pid}/comm").read().strip() == "todo-api"
      and names == ["todo-api", "todo-log", "todo-loop-0", "todo-loop-1"], names)
check("one log writer waits on a futex, no thread idles anywhere else", len(writers) == 1 and not others, waits)

# Graceful shutdown: an idle keep-alive connection is closed, a request in progress is finished.
idle = socket.create_connection(("127.0.0.1", port))
idle.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
idle.recv(65536)
partial = socket.create_connection(("127.0.0.1", port))
partial.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n")  # head not finished yet
time.sleep(0.1)
proc.send_signal(signal.SIGTERM)
time.sleep(0.2)
idle.settimeout(2)
check("SIGTERM closes idle keep-alive connections", idle.recv(65536) == b"")
check("the process waits for the request in progress", proc.poll() is None)
partial.sendall(b"\r\n")
partial.settimeout(5)
answer = b""
while True:
    chunk = partial.recv(65536)
    if not chunk:
        break
    answer += chunk
check("the request in progress is answered with Connection: close",
      answer.startswith(b"HTTP/1.1 200") and b"Connection: close" in answer, answer)
try:
    code = proc.wait(timeout=10)
except subprocess.TimeoutExpired:
    proc.kill()
    code = None
check("then the process exits 0", code == 0, code)
out = proc.stdout.read().decode()
check("start-up and shutdown are logged as JSON lines", '"message":"listening"' in out and '"message":"stopped"' in out, out)
import json
bad = []
for line in out.splitlines():
    try:
        entry = json.loads(line)
        if not all(k in entry for k in ("timestamp", "level", "service", "component", "message")) or entry["level"] != entry["level"].upper():
            bad.append(line)
    except ValueError:
        bad.append(line)
check("every log line is a JSON object with timestamp, level, service, component, message", not bad and out, bad[:3])

print("smoke: request filter, rate limit, healthcheck")
port = free_port()
metrics_port = free_port()
proc = start(port, "--threads", "2", "--log-level", "info", "--metrics-port", str(metrics_port), env={"RATE_LIMIT": "3/1m"})
attack = b"GET /todos?q=%27%20or%20%271%27%3D%271%22%5C%01 HTTP/1.1\r\nHost: t\r\nUser-Agent: smoke\r\nX-Request-ID: smoke-waf-1\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n"
response = request(port, attack)
check("an injection is answered 403 problem+json with the request id and no rule",
      response.startswith(b"HTTP/1.1 403") and b"application/problem+json" in response and b"smoke-waf-1" in response
      and b"SQLi" not in response, response)
check("every response carries the security headers, HSTS when a trusted proxy says HTTPS (here 127.0.0.1)",
      all(h in response for h in (b"X-Content-Type-Options: nosniff", b"X-Frame-Options: DENY", b"Referrer-Policy: no-referrer",
                                  b"Content-Security-Policy: default-src 'none'; frame-ancestors 'none'", b"Strict-Transport-Security: max-age=")), response)
plain = request(port, b"GET /health HTTP/1.1\r\nHost: t\r\nUser-Agent: smoke\r\nConnection: close\r\n\r\n")
check("no Strict-Transport-Security over plain HTTP (RFC 6797 7.2)",
      plain.startswith(b"HTTP/1.1 200") and b"Strict-Transport-Security" not in plain and b"X-Frame-Options: DENY" in plain, plain)
statuses = []
last = b""
for n in range(4):
    last = request(port, b"GET /nowhere HTTP/1.1\r\nHost: t\r\nUser-Agent: smoke\r\nX-Forwarded-For: 198.51.100.9\r\nConnection: close\r\n\r\n")
    statuses.append(int(last.split(b" ")[1]))
check("the fourth request of a client over RATE_LIMIT=3/1m is 429", statuses == [404, 404, 404, 429], statuses)
check("429 carries Retry-After and the RateLimit fields",
      b"Retry-After: " in last and b'RateLimit-Policy: "default";q=3;w=60' in last and b'RateLimit: "default";r=0;t=' in last, last)
check("GET /health is never rate limited",
      all(request(port, b"GET /health HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 198.51.100.9\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 200") for _ in range(3)))
exposition = request(metrics_port, b"GET /metrics HTTP/1.1\r\nHost: t\r\nUser-Agent: smoke\r\nConnection: close\r\n\r\n").decode()
check("/metrics counts the match and the refusal",
      'waf_matches_total{rule="SQLi",action="block"} 1' in exposition and "rate_limited_total 1" in exposition
      and 'waf_matches_total{rule="CrossSiteScripting",action="block"} 0' in exposition, exposition[-600:])
result = run("healthcheck", "--url", f"http://127.0.0.1:{port}/health")
check("healthcheck exits 0 with one line against a healthy server", result.returncode == 0 and len(result.stdout.splitlines()) == 1, (result.returncode, result.stdout))
result = run("healthcheck", "--url", f"http://127.0.0.1:{free_port()}/health", "--timeout", "1s")
check("healthcheck exits 1 with one line against a closed port", result.returncode == 1 and len(result.stdout.splitlines()) == 1, (result.returncode, result.stdout))
result = run("healthcheck", env={"PORT": str(port)})
check("healthcheck defaults to 127.0.0.1:$PORT", result.returncode == 0, (result.returncode, result.stdout))
proc.send_signal(signal.SIGTERM)
proc.wait(timeout=30)
events = []
access = []
for line in proc.stdout.read().decode().splitlines():
    entry = json.loads(line)
    if entry.get("component") == "security" and entry.get("event") == "waf_match":
        events.append(entry)
    if entry.get("component") == "access":
        access.append(entry)
event = events[0] if events else {}
check("a match writes one WARN security event with rule, location, escaped excerpt, client and request id",
      len(events) == 1 and event.get("level") == "WARN" and event.get("rule") == "SQLi" and event.get("location") == "query:q"
      and event.get("requestId") == "smoke-waf-1" and event.get("clientIp") == "127.0.0.1" and "\\" in event.get("excerpt", "")
      and '"' in event.get("excerpt", ""), events)
check("behind a trusted proxy the access log names the X-Forwarded-For client",
      any(a.get("clientIp") == "198.51.100.9" for a in access), access[:2])

print("smoke: second signal")
port = free_port()
proc = start(port, "--drain-timeout", "20s")
stuck = socket.create_connection(("127.0.0.1", port))
stuck.sendall(b"GET /health HTTP/1.1\r\n")
time.sleep(0.1)
proc.send_signal(signal.SIGTERM)
time.sleep(0.3)
check("draining waits for the unfinished request", proc.poll() is None)
proc.send_signal(signal.SIGINT)
try:
    code = proc.wait(timeout=3)
except subprocess.TimeoutExpired:
    proc.kill()
    code = None
check("a second signal exits at once (128 + SIGINT)", code == 128 + signal.SIGINT, code)
stuck.close()

print(f"smoke: {check.passed} passed, {check.failed} failed")
sys.exit(1 if check.failed else 0)
