#!/usr/bin/env python3
"""Writes Sources/todo-api/link/symbol-order.txt (run by scripts/symbol-order, after the release build).

The release binary runs under callgrind, which records every function executed (a sampling
profiler would miss the cold ones), while this script sends every route its successes and its
errors, over single requests, pipelined ones and wrk's concurrent load, then stops the server with
SIGTERM (the drain runs too). The executed functions of the binary, hottest first, are the order
file lld uses to place them side by side (Package.swift)."""
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (BenchCluster, seeded_ids, WRK_SCRIPTS, free_port)

ROOT = bench.ROOT
ORDER_FILE = os.path.join(ROOT, "Sources/todo-api/link/symbol-order.txt")
UA = {"User-Agent": "symbol-order/1.0"}


def request(port, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    all_headers = dict(UA, **(headers or {}))
    if body is not None:
        all_headers.setdefault("Content-Type", "application/json")
    connection.request(method, path, body=body, headers=all_headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data


def drive(port, metrics_port, ids):
    """Every route, its common errors, pipelining; then each endpoint's wrk load for a moment."""
    for i in range(10):
        request(port, "GET", "/health")
        request(port, "GET", "/health/ready")
        request(port, "HEAD", "/health")
        request(port, "GET", "/todos/" + random.choice(ids))
        request(port, "GET", "/todos?limit=20")
        request(port, "GET", "/todos?limit=5&completed=true&q=todo")
        status, data = request(port, "POST", "/todos", json.dumps({"title": f"order {i}", "description": "d", "priority": "high"}))
        todo = json.loads(data)["todo"]["id"] if status == 201 else random.choice(ids)
        request(port, "POST", "/todos", json.dumps({"title": "keyed"}), {"Idempotency-Key": f"order-{i}"})
        request(port, "PUT", "/todos/" + todo, json.dumps({"title": "u", "completed": True}))
        request(port, "PATCH", "/todos/" + todo, json.dumps({"completed": False}), {"If-Match": '"1"'})
        request(port, "DELETE", "/todos/" + todo)
        request(port, "GET", "/todos/" + todo)
        request(port, "GET", "/nowhere")
        request(port, "POST", "/todos", "{broken")
        request(port, "POST", "/todos", json.dumps({"title": ""}))
        request(port, "DELETE", "/todos")
        request(port, "OPTIONS", "/todos")
        request(port, "GET", "/todos?q=1%27%20OR%201=1--")
        request(port, "GET", "/openapi.yaml")
        request(metrics_port, "GET", "/metrics")
    with socket.create_connection(("127.0.0.1", port)) as s:  # pipelined
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nUser-Agent: p\r\n\r\n" * 3
                  + b"GET /todos?limit=2 HTTP/1.1\r\nHost: x\r\nUser-Agent: p\r\nConnection: close\r\n\r\n")
        while s.recv(65536):
            pass
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(ids) + "\n")
        ids_path = f.name
    for endpoint, script in bench.WRK_SCRIPTS.items():
        if "%(fresh_ids)s" in script:
            continue  # the loop above deletes
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(script % {"ids": ids_path})
            path = f.name
        subprocess.run(["wrk", "-t1", "-c16", "-d3s", "-s", path, f"http://127.0.0.1:{port}"], check=True, capture_output=True)
        os.unlink(path)
    os.unlink(ids_path)


def self_costs(callgrind_out):
    """Function name → instructions executed in it (its own, not its callees')."""
    names, costs = {}, {}
    current, after_calls = None, False
    for line in open(callgrind_out, errors="replace"):
        line = line.rstrip("\n")
        m = re.match(r"^fn=\((\d+)\)(?: (.*))?$", line)
        if m:
            if m.group(2):
                names[m.group(1)] = m.group(2)
            current, after_calls = names.get(m.group(1)), False
            continue
        m = re.match(r"^c?fn=\((\d+)\) (.*)$", line)
        if m:
            names[m.group(1)] = m.group(2)
            continue
        if line.startswith("calls="):
            after_calls = True
            continue
        if current and re.match(r"^[+\-*\d]", line):
            if after_calls:
                after_calls = False  # the inclusive cost of the call just named
            else:
                costs[current] = costs.get(current, 0) + int(line.split()[-1])
    for name in names.values():
        costs.setdefault(name, 0)
    return costs


def main():
    binary = os.path.join(ROOT, ".build/release/todo-api")
    work = tempfile.mkdtemp(prefix="symbol-order-")
    # valgrind 3.19 (bookworm) cannot read the DWARF 5 the toolchain writes; symbols are enough.
    stripped = os.path.join(work, "todo-api")
    subprocess.run(["strip", "--strip-debug", "-o", stripped, binary], check=True)
    cluster = bench.BenchCluster()
    ids_path = bench.seeded_ids(cluster)
    ids = open(ids_path).read().split()
    os.unlink(ids_path)
    port, metrics_port = bench.free_port(), bench.free_port()
    out = os.path.join(work, "callgrind.out")
    server = subprocess.Popen(["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}", stripped, "serve",
                               "--host", "127.0.0.1", "--port", str(port), "--metrics-port", str(metrics_port),
                               "--db-pool-min", "4", "--db-pool-max", "4"],
                              env=dict(os.environ, DATABASE_URL=cluster.url, RATE_LIMIT="100000000/1s",
                                       GLIBC_TUNABLES=bench.SERVE_TUNABLES),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        deadline = time.time() + 120
        while True:
            try:
                if request(port, "GET", "/health/ready")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise SystemExit("the server under valgrind did not become ready")
            time.sleep(0.5)
        drive(port, metrics_port, ids)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
        cluster.stop()
    costs = self_costs(out)
    # Names defined once only: a local name many objects define (value witnesses such as `$sSqwxx`)
    # would pull every such object's whole code section forward (the Swift libraries built without
    # per-function sections: _StringProcessing and _RegexParser, 0.9 MB, came along that way).
    definitions = {}
    for line in subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            definitions[parts[2]] = definitions.get(parts[2], 0) + 1
    executed = sorted((name for name in costs if definitions.get(name) == 1), key=lambda name: (-costs[name], name))
    with open(ORDER_FILE, "w") as f:
        f.write("\n".join(executed) + "\n")
    size = {}
    for line in subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 4:
            size[parts[3]] = int(parts[1], 16)
    print(f"{len(executed)} functions executed, {sum(size.get(n, 0) for n in executed) / 1e6:.2f} MB of code: {ORDER_FILE}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
