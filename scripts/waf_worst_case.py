#!/usr/bin/env python3
"""Hostile inputs against the request filter's scans: each is a 30 KiB JSON field built to make a
naive scan quadratic. Prints the time from sending each request to reading the status line.
The filter runs on the event loop, so these must stay in milliseconds (docs/SECURITY.md, "Cost
bounds"). Not a test (no timing assertions in tests); a measurement to run after changing a rule.

    RATE_LIMIT=off .build/release/todo-api serve --port 18500 --metrics-port 0 &
    scripts/waf_worst_case.py http://127.0.0.1:18500
"""
import json
import socket
import sys
import time
import urllib.parse

CASES = [("<a ", 10000), ("<a x=", 6000), ("http://", 4000), ("{{", 15000), ("<!--", 7000), ("[", 30000),
         ("; cat ", 5000), ("; sleep ", 3500), ("${a", 10000), ("alert(", 5000), ("' or 1=1 ", 3000), ("on=", 10000)]


def post(host, port, text):
    body = json.dumps({"title": "x", "description": text}).encode()
    request = (b"POST /todos HTTP/1.1\r\nHost: h\r\nUser-Agent: worst-case\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)) + body
    with socket.create_connection((host, port), timeout=30) as s:
        start = time.monotonic()
        s.sendall(request)
        status = s.recv(64).split(b"\r\n")[0].decode()
        return time.monotonic() - start, status


def main():
    url = urllib.parse.urlparse(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000")
    worst = 0.0
    for piece, count in CASES:
        seconds, status = post(url.hostname, url.port or 80, piece * count)
        worst = max(worst, seconds)
        print(f"{piece!r:>14} x {count:>6}: {seconds * 1000:7.1f} ms  {status}")
    print(f"worst: {worst * 1000:.1f} ms")


if __name__ == "__main__":
    main()
