#!/usr/bin/env python3
"""A write is acknowledged only after PostgreSQL commits it: POST /todos from many threads,
kill -9 the server mid-load, start it again, and check that every id that got a 201 exists.
Usage: durability_test.py path/to/todo-api DATABASE_URL"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

binary, database_url = sys.argv[1], sys.argv[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port):
    proc = subprocess.Popen([binary, "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "error"],
                            env=dict(os.environ, DATABASE_URL=database_url), stdout=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


port = free_port()
proc = start(port)
acknowledged = []
lock = threading.Lock()
stop = threading.Event()


def writer(n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    i = 0
    while not stop.is_set():
        try:
            conn.request("POST", "/todos", json.dumps({"title": f"durable {n}-{i}"}), {"Content-Type": "application/json", "User-Agent": "durability-test"})
            response = conn.getresponse()
            body = response.read()
            if response.status == 201:
                with lock:
                    acknowledged.append(json.loads(body)["todo"]["id"])
        except (OSError, http.client.HTTPException):
            return  # the server was killed
        i += 1


threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
for t in threads:
    t.start()
time.sleep(1.5)
proc.send_signal(signal.SIGKILL)  # mid-load, no drain
proc.wait()
stop.set()
for t in threads:
    t.join()

proc = start(port)
missing = []
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
for todo_id in acknowledged:
    conn.request("GET", f"/todos/{todo_id}", headers={"User-Agent": "durability-test"})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        missing.append((todo_id, response.status))
proc.send_signal(signal.SIGTERM)
proc.wait(timeout=30)
print(f"durability: {len(acknowledged)} creates acknowledged before kill -9, {len(missing)} missing after restart")
if not acknowledged or missing:
    print(f"durability: FAILED {missing[:5]}")
    sys.exit(1)
print("durability: 1 passed, 0 failed")
