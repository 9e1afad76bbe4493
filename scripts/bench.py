#!/usr/bin/env python3
"""Runs wrk against todo-api and a reference server, alternating, and reports the median round.

Per server: requests/s, p50 and p99 latency (wrk --latency), server CPU time per request
(utime+stime from /proc/PID/stat over the measured run), and peak RSS (VmHWM)."""
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

# What `todo-api serve` sets for itself before it serves (Sources/todo-api/AllocatorTuning.swift:
# it executes itself again with it). Given to a server run under valgrind, so that it does not
# execute itself again out of valgrind's sight, and is measured as it runs in production.
SERVE_TUNABLES = "glibc.malloc.tcache_count=128"

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = 64
TICKS = os.sysconf("SC_CLK_TCK")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, attempts=200):
    for _ in range(attempts):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port}")


def cpu_seconds(pid):
    return sum(cpu_split(pid))


def cpu_split(pid):
    """(user, system) CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def to_ms(text):
    match = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if not match:
        raise SystemExit(f"cannot read wrk latency {text!r}")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def wrk(url):
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} non-2xx responses\n{out}")
    return rps, requests, p50, p99


def measure(name, pid, url):
    wrk(url.replace("/health", "/health"))  # warm-up round, not counted
    before = cpu_seconds(pid)
    rps, requests, p50, p99 = wrk(url)
    cpu = cpu_seconds(pid) - before
    return {"name": name, "rps": rps, "p50": p50, "p99": p99, "cpu_us": cpu / requests * 1e6, "rss": peak_rss_mb(pid)}


class TodoAPI:
    def __init__(self):
        self.port = free_port()
        binary = os.path.join(ROOT, ".build/release/todo-api")
        self.proc = subprocess.Popen(["taskset", "-c", "0", binary, "serve", "--host", "127.0.0.1",
                                      "--port", str(self.port), "--log-level", "error"], stdout=subprocess.DEVNULL)
        wait_port(self.port)
        self.pid = self.proc.pid

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


class Nginx:
    """nginx from Debian, one worker pinned to CPU 0, answering /health from its config."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="bench-nginx-")
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""
worker_processes 1;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  # nginx's default closes a keep-alive connection after 1000 requests; lift it so that the
  # reference is not slowed by reconnects that our server does not make.
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{self.port};
    location = /health {{ default_type application/json; return 200 '{{"status":"ok"}}'; }}
  }}
}}
""")
        self.proc = subprocess.Popen(["taskset", "-c", "0", "nginx", "-c", conf], stderr=subprocess.DEVNULL)
        wait_port(self.port)
        children = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
        self.pid = int(children[0])  # the worker: it serves the requests

    def stop(self):
        self.proc.send_signal(signal.SIGQUIT)
        self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def health():
    rounds = {"todo-api": [], "nginx": []}
    ours, ref = TodoAPI(), Nginx()
    try:
        for i in range(ROUNDS):
            rounds["nginx"].append(measure("nginx", ref.pid, f"http://127.0.0.1:{ref.port}/health"))
            rounds["todo-api"].append(measure("todo-api", ours.pid, f"http://127.0.0.1:{ours.port}/health"))
            print(f"round {i + 1}: todo-api {rounds['todo-api'][-1]['rps']:.0f} req/s, nginx {rounds['nginx'][-1]['rps']:.0f} req/s",
                  file=sys.stderr)
    finally:
        ours.stop()
        ref.stop()
    return rounds


# The CPUs the benchmark's PostgreSQL runs on. "1" (the default) keeps it off the server's core, so
# that the server's CPU per request is its own; the anchors' harness (../shared/anchors/README.md)
# left it unpinned ("0,1"), where it shares both cores with the server and wrk, as the figures in
# issue 18 were measured. `scripts/bench anchors` reports which one a table was measured with.
PG_CPUS = os.environ.get("BENCH_PG_CPUS", "1")


class BenchCluster:
    """A throwaway PostgreSQL for benchmarks, on CPU 1 unless BENCH_PG_CPUS says otherwise."""

    def __init__(self, tls=False):
        """tls: a cluster with TLS (pg-local --tls), reached with sslmode=require."""
        self.dir = tempfile.mkdtemp(prefix="bench-pg-")
        out = subprocess.run(["taskset", "-c", PG_CPUS, os.path.join(ROOT, "scripts/pg-local"), "start", self.dir] + (["--tls"] if tls else []),
                             capture_output=True, text=True, check=True).stdout
        self.env = dict(re.findall(r"^(\w+)='(.*)'$", out, re.M))
        self.url = self.env["DATABASE_URL"] + ("?sslmode=require" if tls else "")
        subprocess.run([os.path.join(ROOT, ".build/release/todo-api"), "migrate", "--migrations-dir",
                        os.path.join(ROOT, "Migrations"), "--log-level", "error"],
                       env=dict(os.environ, DATABASE_URL=self.url), check=True)

    def stop(self):
        subprocess.run([os.path.join(ROOT, "scripts/pg-local"), "stop", self.dir], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


SELECT_BY_ID = ("SELECT id, title, description, priority, completed, completed_at, created_at, updated_at, version "
                "FROM todos WHERE id = md5(:n::text)::uuid;")


def pgbench(url, connections, script):
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        out = subprocess.run(["taskset", "-c", "0", "pgbench", "-n", "-M", "prepared", "-c", str(connections), "-j", "1",
                              "-T", str(SECONDS), "-f", path, url], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(path)
    return float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out).group(1))


def pool():
    """Primary-key SELECT through our pool (one loop on CPU 0) vs pgbench -M prepared (CPU 0),
    same statement and connection count, PostgreSQL on CPU 1."""
    connections = int(os.environ.get("BENCH_CONNECTIONS", "4"))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "64"))
    cluster = BenchCluster()
    rounds = {"todo-api pool": [], "pgbench -M prepared": []}
    try:
        binary = os.path.join(ROOT, ".build/release/pool-bench")
        subprocess.run([binary, cluster.url, "1", "1", "1"], check=True, capture_output=True)  # seeds the rows
        for i in range(ROUNDS):
            tps = pgbench(cluster.url, connections, "\\set n random(1, 10000)\n" + SELECT_BY_ID + "\n")
            rounds["pgbench -M prepared"].append({"rps": tps})
            out = subprocess.run(["taskset", "-c", "0", binary, cluster.url, str(connections), str(concurrency), str(SECONDS)],
                                 capture_output=True, text=True, check=True).stdout
            fields = dict(kv.split("=") for kv in out.split())
            queries = int(fields["queries"])
            if int(fields["errors"]):
                raise SystemExit(f"pool-bench reported errors: {out}")
            rounds["todo-api pool"].append({"rps": queries / float(fields["seconds"]),
                                            "cpu_us": float(fields["cpu_seconds"]) / queries * 1e6})
            print(f"round {i + 1}: pool {rounds['todo-api pool'][-1]['rps']:.0f}/s, pgbench {tps:.0f}/s", file=sys.stderr)
    finally:
        cluster.stop()
    ours, ref = median_round(rounds["todo-api pool"]), median_round(rounds["pgbench -M prepared"])
    print(f"| client | queries/s (median of {ROUNDS}) | × pgbench | client CPU µs/query |")
    print("|---|---|---|---|")
    print(f"| todo-api pool, 1 loop, {connections} connections, {concurrency} concurrent tasks | {ours['rps']:.0f} | "
          f"{ours['rps'] / ref['rps']:.2f} | {ours['cpu_us']:.1f} |")
    print(f"| pgbench -M prepared -c {connections} -j 1 | {ref['rps']:.0f} | 1.00 | |")
    per_client = ["%s: %s" % (name, ", ".join("%.0f" % r["rps"] for r in results)) for name, results in rounds.items()]
    print("\nall rounds (queries/s): " + "; ".join(per_client))


SEED_SQL = """INSERT INTO todos (id, title, description, priority)
SELECT md5(n::text)::uuid, 'todo ' || n, 'description of todo ' || n, 'medium' FROM generate_series(1, 10000) AS n
ON CONFLICT (id) DO NOTHING"""

TODO_COLUMNS = "id, title, description, priority, completed, completed_at, created_at, updated_at, version"

# The statements the API issues for each endpoint, in pgbench form (md5(:n) names a seeded row).
PGBENCH_SCRIPTS = {
    "GET /todos/{id}": "\\set n random(1, 10000)\nSELECT " + TODO_COLUMNS + " FROM todos WHERE id = md5(:n::text)::uuid;\n",
    "GET /todos?limit=20": "SELECT " + TODO_COLUMNS + " FROM todos WHERE (NULL::boolean IS NULL OR completed = NULL::boolean) "
                           "AND (NULL::text IS NULL OR title ILIKE NULL::text) ORDER BY created_at DESC, id DESC LIMIT 21;\n",
    "POST /todos": "INSERT INTO todos (title, description, priority, completed, completed_at) "
                   "VALUES ('bench todo', 'created by the benchmark', COALESCE(NULL, 'medium'), false, NULL) RETURNING " + TODO_COLUMNS + ";\n",
    "PUT /todos/{id}": "\\set n random(1, 10000)\nUPDATE todos SET title = 'updated', description = NULL, priority = 'medium', "
                       "completed = true, completed_at = CASE WHEN completed AND completed_at IS NOT NULL THEN completed_at ELSE now() END, "
                       "updated_at = now(), version = version + 1 WHERE id = md5(:n::text)::uuid RETURNING " + TODO_COLUMNS + ";\n",
}

WRK_SCRIPTS = {
    "GET /health": """
request = function() return wrk.format("GET", "/health") end
""",
    "GET /todos/{id}": """
ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
request = function() return wrk.format("GET", "/todos/" .. ids[math.random(#ids)]) end
""",
    "GET /todos?limit=20": """
request = function() return wrk.format("GET", "/todos?limit=20") end
""",
    "POST /todos": """
wrk.method = "POST"
wrk.path = "/todos"
wrk.body = '{"title":"bench todo","description":"created by the benchmark","priority":"medium"}'
wrk.headers["Content-Type"] = "application/json"
""",
    "PUT /todos/{id}": """
ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
request = function()
  return wrk.format("PUT", "/todos/" .. ids[math.random(#ids)], {["Content-Type"] = "application/json", ["User-Agent"] = "wrk/4.1.0 (todo-api bench)"},
                    '{"title":"updated","completed":true}')
end
""",
    "PATCH /todos/{id}": """
ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
request = function()
  return wrk.format("PATCH", "/todos/" .. ids[math.random(#ids)], {["Content-Type"] = "application/json", ["User-Agent"] = "wrk/4.1.0 (todo-api bench)"},
                    '{"completed":false}')
end
""",
    # Each request deletes a row of its own, seeded for this run (`fresh_rows`): a repeated
    # id would be a 404.
    "DELETE /todos/{id}": """
ids = {}
for line in io.lines("%(fresh_ids)s") do ids[#ids + 1] = line end
n = 0
request = function()
  n = n + 1
  return wrk.format("DELETE", "/todos/" .. ids[n], {["User-Agent"] = "wrk/4.1.0 (todo-api bench)"})
end
""",
}

# Rows a DELETE run may consume: more than one run at the fastest rate seen here sends.
FRESH_ROWS = int(os.environ.get("BENCH_FRESH_ROWS", "400000"))

# The endpoints the anchors serve (../shared/anchors/README.md): PUT, PATCH and DELETE are the
# service's alone, measured without a reference (the issue's bound for them is CPU per request).
ANCHOR_ENDPOINTS = {"GET /health", "GET /todos/{id}", "GET /todos?limit=20", "POST /todos"}


# Every request carries a User-Agent, as in the anchors' harness (../shared/anchors/README.md).
USER_AGENT = """
wrk.headers["User-Agent"] = "wrk/4.1.0 (todo-api bench)"
"""
# Printed once by wrk when a response is not 2xx: the reason shows up in the error. Only in a
# short second run after a measured run saw failures: with a `response` function defined, wrk
# hands every response's header fields and body to Lua, a client cost that grows with the number
# of header fields (ours 10 on /health, the anchor's 3). With it in every measured run, /health
# read 0.82x the anchor where the same servers read 0.94x without it (docs/BENCHMARKS.md).
REPORT_FIRST_FAILURE = """
response = function(status, headers, body)
  if status >= 300 and not reported then print("first failure: " .. status .. " " .. body); reported = true end
end
"""


def run_wrk_lua(url, script, seconds):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        return subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", path, url],
                              capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(path)


def wrk_script(url, script):
    out = run_wrk_lua(url, script + USER_AGENT, SECONDS)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        why = run_wrk_lua(url, script + USER_AGENT + REPORT_FIRST_FAILURE, 1)
        raise SystemExit(f"{url}: {errors.group(1)} non-2xx responses\n{out}\n{why}")
    return rps, requests, p50, p99


def api():
    """The /todos endpoints through the service (CPU 0; wrk and PostgreSQL on CPU 1) next to
    pgbench -M prepared running the same statements (CPU 0) with the same connection count."""
    connections = int(os.environ.get("BENCH_CONNECTIONS", "4"))
    cluster = BenchCluster()
    psql = [os.path.join(os.path.dirname(cluster.env["PG_CTL"]), "psql"), cluster.env["PG_ADMIN_URL"], "-q", "-v", "ON_ERROR_STOP=1"]
    subprocess.run(psql + ["-c", SEED_SQL], check=True)
    ids = subprocess.run(psql + ["-tAc", "SELECT md5(n::text)::uuid FROM generate_series(1, 10000) AS n"],
                         capture_output=True, text=True, check=True).stdout.split()
    ids_file = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
    ids_file.write("\n".join(ids) + "\n")
    ids_file.close()
    port = free_port()
    server = subprocess.Popen(["taskset", "-c", "0", os.path.join(ROOT, ".build/release/todo-api"), "serve", "--host", "127.0.0.1",
                               "--port", str(port), "--log-level", "error", "--db-pool-min", str(connections),
                               "--db-pool-max", str(connections)],
                              env=dict(os.environ, DATABASE_URL=cluster.url, RATE_LIMIT="off"), stdout=subprocess.DEVNULL, cwd=ROOT)
    wait_port(port)
    rows = []
    try:
        for name in WRK_SCRIPTS:
            ours, ref = [], []
            script = WRK_SCRIPTS[name] % {"ids": ids_file.name}
            wrk_script(f"http://127.0.0.1:{port}", script)  # warm-up
            for i in range(ROUNDS):
                ref.append({"rps": pgbench(cluster.url, connections, PGBENCH_SCRIPTS[name])})
                before = cpu_seconds(server.pid)
                rps, requests, p50, p99 = wrk_script(f"http://127.0.0.1:{port}", script)
                cpu = cpu_seconds(server.pid) - before
                ours.append({"rps": rps, "p50": p50, "p99": p99, "cpu_us": cpu / requests * 1e6})
                print(f"{name} round {i + 1}: todo-api {rps:.0f}/s, pgbench {ref[-1]['rps']:.0f}/s", file=sys.stderr)
            rows.append((name, median_round(ours), median_round(ref), ours, ref))
        rss = peak_rss_mb(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        os.unlink(ids_file.name)
        cluster.stop()
    print(f"| endpoint | todo-api req/s (median of {ROUNDS}) | pgbench -M prepared -c {connections} tx/s | × pgbench | p50 ms | p99 ms | server CPU µs/req |")
    print("|---|---|---|---|---|---|---|")
    for name, ours, ref, _, _ in rows:
        print(f"| {name} | {ours['rps']:.0f} | {ref['rps']:.0f} | {ours['rps'] / ref['rps']:.2f} | {ours['p50']:.2f} | {ours['p99']:.2f} | {ours['cpu_us']:.1f} |")
    print(f"\nserver peak RSS (VmHWM) over the whole run: {rss:.1f} MB")
    for name, _, _, ours, ref in rows:
        print(f"{name} all rounds: todo-api {', '.join('%.0f' % r['rps'] for r in ours)}; pgbench {', '.join('%.0f' % r['rps'] for r in ref)}; "
              f"server CPU µs/req {', '.join('%.1f' % r['cpu_us'] for r in ours)}")


def observability():
    """GET /todos/{id} with access logging at INFO and metrics on, against logging at ERROR and
    metrics off (METRICS_PORT=0), same binary, same database, alternating."""
    compare({"logging INFO + metrics on": (["--log-level", "info", "--metrics-port", str(free_port())], {}),
             "logging ERROR + metrics off": (["--log-level", "error", "--metrics-port", "0"], {})},
            ["GET /todos/{id}"], baseline="logging ERROR + metrics off", env={"RATE_LIMIT": "off"})


def waf():
    """GET /todos/{id} and POST /todos with every request-filter rule on and the rate limiter
    counting (a limit the load never reaches), against both off, same binary, alternating."""
    compare({"filter on (all rules) + rate limiter on": ([], {"WAF": "on", "RATE_LIMIT": "100000000/1s"}),
             "filter off + rate limiter off": ([], {"WAF": "off", "RATE_LIMIT": "off"})},
            ["GET /todos/{id}", "POST /todos"], baseline="filter off + rate limiter off",
            flags=["--log-level", "error", "--metrics-port", "0"])


def auth():
    """What authentication costs on GET /todos/{id} (issue "callers and their todos"):
    - AUTH=jwt with one valid RS256 token, reused (the verified-token cache answers), against
      AUTH=off, same binary, same rows (owned by the token's subject), the same request bytes
      (the header is sent to both), alternating;
    - then the first verification: every request a new token (5,000 distinct ones in turn, more
      than the cache holds), RS256 and ES256, against the cached case.
    Tokens are minted by PyJWT (scripts/mint_tokens.py in scripts/auth-venv)."""
    python = subprocess.run([os.path.join(ROOT, "scripts/auth-venv")], capture_output=True, text=True, check=True).stdout.strip()
    keys = {alg: tempfile.mkdtemp(prefix="bench-keys-") for alg in ("RS256", "ES256")}
    tokens = {}
    for alg, directory in keys.items():
        out = subprocess.run([python, os.path.join(ROOT, "scripts/mint_tokens.py"), directory, "--count", "5000", "--alg", alg,
                              "--issuer", "https://bench.test", "--audience", "bench", "--sub", "bench-user"],
                             capture_output=True, text=True, check=True).stdout.split()
        path = os.path.join(directory, "tokens.txt")
        with open(path, "w") as f:
            f.write("\n".join(out) + "\n")
        tokens[alg] = (out[0], path)
    cached_token = tokens["RS256"][0]
    one_token = """
ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
request = function()
  return wrk.format("GET", "/todos/" .. ids[math.random(#ids)], {["Authorization"] = "Bearer TOKEN", ["User-Agent"] = "wrk/4.1.0 (todo-api bench)"})
end
""".replace("TOKEN", cached_token)
    many_tokens = """
ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
tokens = {}
for line in io.lines("TOKENS") do tokens[#tokens + 1] = line end
n = 0
request = function()
  n = n %% #tokens + 1
  return wrk.format("GET", "/todos/" .. ids[math.random(#ids)], {["Authorization"] = "Bearer " .. tokens[n], ["User-Agent"] = "wrk/4.1.0 (todo-api bench)"})
end
"""
    WRK_SCRIPTS["GET /todos/{id}, one token"] = one_token
    WRK_SCRIPTS["GET /todos/{id}, a new RS256 token each"] = many_tokens.replace("TOKENS", tokens["RS256"][1])
    WRK_SCRIPTS["GET /todos/{id}, a new ES256 token each"] = many_tokens.replace("TOKENS", tokens["ES256"][1])
    jwt_env = {"AUTH": "jwt", "AUTH_ISSUER": "https://bench.test", "AUTH_AUDIENCE": "bench"}
    try:
        compare({"AUTH=jwt, cached token": ([], dict(jwt_env, AUTH_JWKS_FILE=os.path.join(keys["RS256"], "jwks.json"))),
                 "AUTH=off": ([], {"AUTH": "off"})},
                ["GET /todos/{id}, one token"], baseline="AUTH=off", env={"RATE_LIMIT": "off"}, owner="bench-user",
                flags=["--metrics-port", "0"])
        for alg in ("RS256", "ES256"):
            compare({f"AUTH=jwt, a new {alg} token each request": ([], dict(jwt_env, AUTH_JWKS_FILE=os.path.join(keys[alg], "jwks.json"))),
                     "AUTH=jwt, cached token": ([], dict(jwt_env, AUTH_JWKS_FILE=os.path.join(keys[alg], "jwks.json")))},
                    [f"GET /todos/{{id}}, a new {alg} token each"], baseline="AUTH=jwt, cached token", env={"RATE_LIMIT": "off"},
                    owner="bench-user", scripts={"AUTH=jwt, cached token": one_token.replace(cached_token, tokens[alg][0])},
                    flags=["--metrics-port", "0"])
    finally:
        for directory in keys.values():
            shutil.rmtree(directory, ignore_errors=True)


def seeded_ids(cluster):
    """Seeds the service's database on `cluster`; returns a file of the 10,000 seeded ids."""
    psql = [os.path.join(os.path.dirname(cluster.env["PG_CTL"]), "psql"), cluster.env["PG_ADMIN_URL"], "-q", "-v", "ON_ERROR_STOP=1"]
    subprocess.run(psql + ["-c", SEED_SQL], check=True)
    ids = subprocess.run(psql + ["-tAc", "SELECT md5(n::text)::uuid FROM generate_series(1, 10000) AS n"],
                         capture_output=True, text=True, check=True).stdout.split()
    ids_file = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
    ids_file.write("\n".join(ids) + "\n")
    ids_file.close()
    return ids_file.name


def fresh_rows(cluster):
    """FRESH_ROWS new todos (for one DELETE run); returns the path of a file of their ids."""
    psql = [os.path.join(os.path.dirname(cluster.env["PG_CTL"]), "psql"), cluster.env["PG_ADMIN_URL"], "-q", "-v", "ON_ERROR_STOP=1"]
    ids = subprocess.run(psql + ["-tAc", "INSERT INTO todos (title, description, priority) SELECT 'to delete ' || n, NULL, 'low' "
                                 f"FROM generate_series(1, {FRESH_ROWS}) AS n RETURNING id"],
                         capture_output=True, text=True, check=True).stdout.split()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(ids) + "\n")
        return f.name


def interleave(servers, endpoints, ids_path, scripts=None, serves=None, cluster=None):
    """servers: name → (process, port). Per endpoint a warm-up each, then ROUNDS rounds in
    alternating order; returns (endpoint, name) → [round results]. scripts: name → a wrk script
    for that server instead of the endpoint's. serves(name, endpoint): whether that server has
    the endpoint (default: all do). cluster: where DELETE's rows are seeded, before each run."""
    rounds = {(endpoint, name): [] for endpoint in endpoints for name in servers if not serves or serves(name, endpoint)}
    for endpoint in endpoints:
        def run(name, port):
            script = (scripts or {}).get(name) or WRK_SCRIPTS[endpoint]
            fresh = fresh_rows(cluster) if "%(fresh_ids)s" in script else None
            try:
                return wrk_script(f"http://127.0.0.1:{port}", script % {"ids": ids_path, "fresh_ids": fresh})
            finally:
                if fresh:
                    os.unlink(fresh)
        measured = {name: server for name, server in servers.items() if not serves or serves(name, endpoint)}
        for name, (proc, port) in measured.items():
            run(name, port)  # warm-up
        for i in range(ROUNDS):
            order = list(measured.items()) if i % 2 == 0 else list(reversed(list(measured.items())))
            for name, (proc, port) in order:
                user, system = cpu_split(proc.pid)
                rps, requests, p50, p99 = run(name, port)
                user_after, system_after = cpu_split(proc.pid)
                rounds[(endpoint, name)].append({"rps": rps, "p50": p50, "p99": p99,
                                                 "cpu_us": (user_after + system_after - user - system) / requests * 1e6,
                                                 "user_us": (user_after - user) / requests * 1e6,
                                                 "sys_us": (system_after - system) / requests * 1e6})
                print(f"{endpoint} round {i + 1}: {name} {rps:.0f}/s", file=sys.stderr)
    return rounds


def print_rounds(rounds, endpoints, names, baseline, rss=None, split=False):
    """split: the CPU column as total (user + system): where the difference lies."""
    rss_header = " peak RSS MB |" if rss else ""
    cpu_header = "server CPU µs/req (user + sys)" if split else "server CPU µs/req"
    print(f"PostgreSQL on CPU {PG_CPUS} (BENCH_PG_CPUS), server on CPU 0, wrk on CPU 1\n")
    print(f"| endpoint | configuration | req/s (median of {ROUNDS}) | vs {baseline} | p50 ms | p99 ms | {cpu_header} |{rss_header}")
    print("|---|---|---|---|---|---|---|" + ("---|" if rss else ""))
    for endpoint in endpoints:
        base = median_round(rounds[(endpoint, baseline)]) if (endpoint, baseline) in rounds else None
        for name in names:
            if (endpoint, name) not in rounds:
                continue
            row = median_round(rounds[(endpoint, name)])
            ratio = f"{row['rps'] / base['rps']:.2f}" if base else "— (no such endpoint)"
            cpu = f"{row['cpu_us']:.1f} ({row['user_us']:.1f} + {row['sys_us']:.1f})" if split else f"{row['cpu_us']:.1f}"
            print(f"| {endpoint} | {name} | {row['rps']:.0f} | {ratio} | {row['p50']:.2f} | {row['p99']:.2f} | "
                  f"{cpu} |" + (f" {rss[name]:.1f} |" if rss else ""))
    print("\nall rounds (req/s): " + "; ".join("%s, %s: %s" % (e, n, ", ".join("%.0f" % r["rps"] for r in rs)) for (e, n), rs in rounds.items()))


def stop_all(servers):
    for proc, _ in servers.values():
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def compare(variants, endpoints, baseline, env=None, flags=None, owner=None, scripts=None):
    """Two or more configurations of the same release binary side by side (CPU 0), measured
    alternately with wrk (CPU 1) on each endpoint; the table is each one's median round.
    owner: the seeded rows belong to it (AUTH on). scripts: a variant's own wrk script instead
    of the endpoint's."""
    connections = int(os.environ.get("BENCH_CONNECTIONS", "4"))
    cluster = BenchCluster()
    ids_path = seeded_ids(cluster)
    if owner:
        psql = [os.path.join(os.path.dirname(cluster.env["PG_CTL"]), "psql"), cluster.env["PG_ADMIN_URL"], "-q", "-v", "ON_ERROR_STOP=1"]
        subprocess.run(psql + ["-c", "UPDATE todos SET owner = '%s'" % owner.replace("'", "''")], check=True)
    servers = {}
    try:
        for name, variant in variants.items():
            variant_flags, variant_env = variant[0], variant[1]
            binary = variant[2] if len(variant) > 2 else os.path.join(ROOT, ".build/release/todo-api")
            port = free_port()
            proc = subprocess.Popen(["taskset", "-c", "0", binary, "serve", "--host", "127.0.0.1",
                                     "--port", str(port), "--db-pool-min", str(connections), "--db-pool-max", str(connections)]
                                    + (flags or []) + variant_flags,
                                    env=dict(os.environ, DATABASE_URL=cluster.url, **(env or {}), **variant_env),
                                    stdout=subprocess.DEVNULL, cwd=ROOT)
            wait_port(port)
            servers[name] = (proc, port)
        rounds = interleave(servers, endpoints, ids_path, scripts, cluster=cluster)
    finally:
        stop_all(servers)
        os.unlink(ids_path)
        cluster.stop()
    print_rounds(rounds, endpoints, list(variants), baseline)


# The anchors' own table (../shared/anchors/README.md), in a database of their own on the same
# cluster, seeded with the same ids and texts as the service's.
ANCHOR_SQL = """CREATE TABLE todos (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(), title text NOT NULL, description text,
  priority text NOT NULL DEFAULT 'medium', completed boolean NOT NULL DEFAULT false, completed_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX todos_created_at_id_idx ON todos (created_at DESC, id DESC);
ALTER TABLE todos OWNER TO todo;
""" + SEED_SQL + ";"


def build_anchor(name):
    """Builds ../shared/anchors/NAME (read-only there) in a writable copy under .build-anchors/;
    returns its binary, or None when the anchors are not beside the repository."""
    source = os.path.join(os.path.dirname(ROOT), "shared", "anchors", name)
    if not os.path.isdir(source):
        return None
    copy = os.path.join(ROOT, ".build-anchors", name)
    os.makedirs(copy, exist_ok=True)
    subprocess.run(["cp", "-a", "-T", source, copy + ".new"], check=True)  # fresh sources, the old target/ kept
    subprocess.run(["chmod", "-R", "u+w", copy + ".new"], check=True)
    for entry in os.listdir(copy + ".new"):
        target = os.path.join(copy, entry)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        elif os.path.exists(target):
            os.unlink(target)
        os.rename(os.path.join(copy + ".new", entry), target)
    os.rmdir(copy + ".new")
    subprocess.run(["bash", os.path.join(copy, "build.sh")], check=True, stdout=sys.stderr)
    binaries = {"rust": "target/release/todo-rust", "go": "todo-go"}
    return os.path.join(copy, binaries[name])


def anchor_cluster():
    """A benchmark cluster with the service's seeded rows and the anchors' own database (same ids
    and texts); returns it, the file of seeded ids and the anchors' database URL."""
    cluster = BenchCluster()
    ids_path = seeded_ids(cluster)
    psql = [os.path.join(os.path.dirname(cluster.env["PG_CTL"]), "psql"), "-q", "-v", "ON_ERROR_STOP=1"]
    subprocess.run(psql + [cluster.env["PG_ADMIN_URL"], "-c", "CREATE DATABASE anchor OWNER todo"], check=True)
    subprocess.run(psql + [cluster.env["PG_ADMIN_URL"].replace("/todo?", "/anchor?"), "-c", ANCHOR_SQL], check=True)
    return cluster, ids_path, cluster.url.rsplit("/", 1)[0] + "/anchor"


def anchors():
    """The service beside the Rust anchor (hyper + tokio-postgres, ../shared/anchors/rust), each
    on CPU 0 with 8 database connections, wrk and PostgreSQL on CPU 1, the service with what it
    always does on (request filter, rate limiter with a quota no run reaches, access log, metrics).
    Ratios are to the anchor; peak RSS is each process's VmHWM after every round."""
    names = [n for n in os.environ.get("BENCH_ANCHORS", "rust").split(",") if n]
    binaries = {n: build_anchor(n) for n in names}
    missing = [n for n, b in binaries.items() if b is None]
    if missing:
        raise SystemExit(f"no ../shared/anchors/{missing[0]} beside the repository")
    cluster, ids_path, anchor_url = anchor_cluster()
    endpoints = os.environ.get("BENCH_ENDPOINTS", "GET /health,GET /todos/{id},GET /todos?limit=20,POST /todos,"
                               "PUT /todos/{id},PATCH /todos/{id},DELETE /todos/{id}").split(",")
    servers = {}
    try:
        port = free_port()
        metrics_port = free_port()
        proc = subprocess.Popen(["taskset", "-c", "0", os.path.join(ROOT, ".build/release/todo-api"), "serve", "--host", "127.0.0.1",
                                 "--port", str(port), "--db-pool-min", "8", "--db-pool-max", "8", "--metrics-port", str(metrics_port)],
                                env=dict(os.environ, DATABASE_URL=cluster.url, RATE_LIMIT="100000000/1s"),
                                stdout=subprocess.DEVNULL, cwd=ROOT)
        wait_port(port)
        servers["todo-api"] = (proc, port)
        for name, binary in binaries.items():
            port = free_port()
            proc = subprocess.Popen(["taskset", "-c", "0", binary], env=dict(os.environ, PORT=str(port), DATABASE_URL=anchor_url,
                                    POOL_SIZE="8", WORKERS="1", GOMAXPROCS="1"), stdout=subprocess.DEVNULL)
            wait_port(port)
            servers[name] = (proc, port)
        rounds = interleave(servers, endpoints, ids_path, serves=lambda name, endpoint: name == "todo-api" or endpoint in ANCHOR_ENDPOINTS,
                            cluster=cluster)
        rss = {name: peak_rss_mb(proc.pid) for name, (proc, _) in servers.items()}
    finally:
        stop_all(servers)
        os.unlink(ids_path)
        cluster.stop()
    print_rounds(rounds, endpoints, list(servers), names[0], rss, split=True)


def callgrind_total(out_prefix, pid):
    """The instruction count of the latest callgrind dump of process `pid` (summary or totals)."""
    dumps = sorted((f for f in os.listdir(os.path.dirname(out_prefix)) if f.startswith(f"{os.path.basename(out_prefix)}.{pid}.")),
                   key=lambda f: int(f.rsplit(".", 1)[1]))
    with open(os.path.join(os.path.dirname(out_prefix), dumps[-1])) as f:
        text = f.read()
    return int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1))


def instructions():
    """User-space instructions per request of the service and of the Rust anchor, each under
    valgrind's callgrind (every instruction of every thread counted, not sampled): the figure
    that stays put on a noisy host, to see what a change does before timing it. Same cluster,
    seeding, flags and wrk scripts as `anchors`; the binaries run with their debug info stripped
    (valgrind 3.19 cannot read the toolchain's DWARF 5)."""
    rust = build_anchor("rust")
    if rust is None:
        raise SystemExit("no ../shared/anchors/rust beside the repository")
    # BENCH_CALLGRIND_KEEP=DIR keeps the binaries and dumps there (callgrind_annotate them).
    keep = os.environ.get("BENCH_CALLGRIND_KEEP")
    work = keep if keep else tempfile.mkdtemp(prefix="bench-callgrind-")
    os.makedirs(work, exist_ok=True)
    binaries = {"todo-api": os.path.join(work, "todo-api"), "rust": os.path.join(work, "todo-rust")}
    subprocess.run(["strip", "--strip-debug", "-o", binaries["todo-api"], os.path.join(ROOT, ".build/release/todo-api")], check=True)
    subprocess.run(["strip", "--strip-debug", "-o", binaries["rust"], rust], check=True)
    cluster, ids_path, anchor_url = anchor_cluster()
    endpoints = os.environ.get("BENCH_ENDPOINTS", "GET /health,GET /todos/{id},GET /todos?limit=20,POST /todos").split(",")
    counts = {}
    try:
        for name in ("todo-api", "rust"):
            port = free_port()
            out_prefix = os.path.join(work, name)
            valgrind = ["taskset", "-c", "0", "valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out_prefix}.%p"]
            if name == "todo-api":
                proc = subprocess.Popen(valgrind + [binaries[name], "serve", "--host", "127.0.0.1", "--port", str(port),
                                                    "--db-pool-min", "8", "--db-pool-max", "8", "--metrics-port", "0"],
                                        env=dict(os.environ, DATABASE_URL=cluster.url, RATE_LIMIT="100000000/1s",
                                                 GLIBC_TUNABLES=SERVE_TUNABLES),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            else:
                proc = subprocess.Popen(valgrind + [binaries[name]], env=dict(os.environ, PORT=str(port), DATABASE_URL=anchor_url,
                                                                               POOL_SIZE="8", WORKERS="1"),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_port(port, attempts=1200)  # valgrind starts slowly
                for endpoint in endpoints:
                    script = WRK_SCRIPTS[endpoint] % {"ids": ids_path, "fresh_ids": None}
                    wrk_script(f"http://127.0.0.1:{port}", script)  # warm-up (statements prepared, code JIT-free but paged in)
                    subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
                    _, requests, _, _ = wrk_script(f"http://127.0.0.1:{port}", script)
                    subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
                    counts[(endpoint, name)] = callgrind_total(out_prefix, proc.pid) / requests
                    print(f"{endpoint}: {name} {counts[(endpoint, name)]:.0f} instructions/request over {requests} requests",
                          file=sys.stderr)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
    finally:
        os.unlink(ids_path)
        cluster.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    print("| endpoint | todo-api instructions/req | rust instructions/req | × rust |")
    print("|---|---|---|---|")
    for endpoint in endpoints:
        ours, ref = counts[(endpoint, "todo-api")], counts[(endpoint, "rust")]
        print(f"| {endpoint} | {ours:.0f} | {ref:.0f} | {ours / ref:.2f} |")


def versus():
    """This build against another revision's release build (BENCH_BASELINE_BINARY, built by
    scripts/bench versus REV), same flags, same database, alternating: "within 5 % of before"."""
    baseline = os.environ["BENCH_BASELINE_BINARY"]
    label = os.environ.get("BENCH_BASELINE_LABEL", "baseline")
    compare({"this build": ([], {}), label: ([], {}, baseline)},
            os.environ.get("BENCH_ENDPOINTS", "GET /todos/{id},POST /todos,GET /todos?limit=20,PUT /todos/{id}").split(","), baseline=label,
            # The limiter on (it adds RateLimit fields to every response), with a quota no
            # benchmark reaches.
            env={"RATE_LIMIT": os.environ.get("BENCH_RATE_LIMIT", "100000000/1s")},
            flags=["--log-level", "error", "--metrics-port", "0"])  # two servers at once: no shared admin port


def median_round(results):
    ordered = sorted(results, key=lambda r: r["rps"])
    return ordered[len(ordered) // 2]


def report(rounds, reference):
    rows = {name: median_round(results) for name, results in rounds.items()}
    ref_rps = rows[reference]["rps"]
    print(f"| server | req/s (median of {ROUNDS}) | × {reference} | p50 ms | p99 ms | CPU µs/req | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['rps']:.0f} | {row['rps'] / ref_rps:.2f} | {row['p50']:.2f} | {row['p99']:.2f} | "
              f"{row['cpu_us']:.1f} | {row['rss']:.1f} |")
    per_server = ["%s: %s" % (name, ", ".join("%.0f" % r["rps"] for r in results)) for name, results in rounds.items()]
    print("\nall rounds (req/s): " + "; ".join(per_server))


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "health"
    if which == "health":
        report(health(), "nginx")
    elif which == "pool":
        pool()
    elif which == "api":
        api()
    elif which == "observability":
        observability()
    elif which == "waf":
        waf()
    elif which == "auth":
        auth()
    elif which == "versus":
        versus()
    elif which == "anchors":
        anchors()
    elif which == "instructions":
        instructions()
    else:
        raise SystemExit(f"unknown benchmark {which}")
