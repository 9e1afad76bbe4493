#!/usr/bin/env python3
"""Measure the request filter (issue 6) against the labelled corpus in Tests/SecurityTests/Corpus.

Sends every attack payload in several placements (query values, a path segment, JSON string
fields, headers, the User-Agent, a cookie) and every benign sample in its natural placement, then
reports the detection rate (403s among attack requests) per class, per placement and overall, and
the false-positive rate (403s among benign requests) per kind and overall.

    scripts/waf_eval.py http://127.0.0.1:8000
    scripts/waf_eval.py http://127.0.0.1:8000 --min-detection 0.7 --max-fp 0.015 --json-out waf.json
    scripts/waf_eval.py http://127.0.0.1:8000 --limit 200 --show-missed 20      # quick run
    scripts/waf_eval.py --check-corpus                                          # validate files only

Only a 403 counts as blocked. Any 5xx, any 429 (the rate limiter spoils the measurement; raise
RATE_LIMIT for the run) and any connection error or timeout is a failure of the run: they are
printed and the exit code is 1. Exit code 1 also when --min-detection / --max-fp are not met.
Benign requests answered with another non-2xx status are listed as warnings (a corpus problem,
e.g. a title over 200 characters, or an API change), not failures.

Python 3 standard library only. Benign POSTs create todos in the target service.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import threading
import time
import http.client
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CORPUS = os.path.normpath(os.path.join(HERE, "..", "Tests", "SecurityTests", "Corpus"))

ATTACK_CLASSES = ["sqli", "xss", "traversal", "rfi", "cmdi", "log4j", "ssrf", "xxe", "ssti", "nosqli", "crlf", "scanner"]
BENIGN_KINDS = ["title", "description", "query", "useragent", "cookie", "referer"]
# Where a non-scanner attack goes. The scanner class is sent as the User-Agent only.
ATTACK_PLACEMENTS = ["query_q", "query_other", "path", "json_title", "json_description",
                     "header", "referer", "useragent", "cookie"]
HEADER_PLACEMENTS = {"header", "referer", "useragent", "cookie"}

BROWSER_UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
              "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36")
BASE_HEADERS = [
    ("Accept", "application/json, text/plain, */*"),
    ("Accept-Language", "en-US,en;q=0.9,ja;q=0.8"),
]


# ---------------------------------------------------------------- corpus

def unescape(s: str) -> str:
    """Corpus escapes: \\n newline, \\r CR, \\t tab, \\\\ backslash; any other backslash is literal."""
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in "nrt\\":
            out.append({"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}[s[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def load_tsv(path: str, allowed: list[str]) -> list[tuple[str, str, int]]:
    """[(label, text, line number)]; raises ValueError naming the line on a malformed file."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if line.endswith("\r"):
                raise ValueError(f"{path}:{n}: CRLF line ending")
            if not line.strip():
                raise ValueError(f"{path}:{n}: blank line (not allowed)")
            if line.startswith("#"):
                continue
            label, sep, text = line.partition("\t")
            if not sep or not text:
                raise ValueError(f"{path}:{n}: expected <label><TAB><sample>")
            if label not in allowed:
                raise ValueError(f"{path}:{n}: unknown label {label!r}")
            rows.append((label, unescape(text), n))
    return rows


# ---------------------------------------------------------------- encodings

UNRESERVED = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
HEX = set(b"0123456789abcdefABCDEF")
QUERY_SAFE = UNRESERVED | set(b"/:@!$'()*,;")
PATH_SAFE = UNRESERVED | set(b":@!$'()*,;")           # one segment: '/' is encoded
COOKIE_OCTETS = set([0x21] + list(range(0x23, 0x2C)) + list(range(0x2D, 0x3B)) +
                    list(range(0x3C, 0x5C)) + list(range(0x5D, 0x7F)))


def pct(text: str, safe: set[int], keep_escapes: bool) -> str:
    """Percent-encode UTF-8 bytes outside `safe`. With keep_escapes, a %XX already in the text is
    left alone: payloads that contain escapes are written in the form an attacker puts on the wire."""
    b = text.encode("utf-8")
    out, i = [], 0
    while i < len(b):
        c = b[i]
        if keep_escapes and c == 0x25 and i + 2 < len(b) and b[i + 1] in HEX and b[i + 2] in HEX:
            out.append(b[i:i + 3].decode("ascii"))
            i += 3
            continue
        out.append(chr(c) if c in safe else "%%%02X" % c)
        i += 1
    return "".join(out)


def header_safe(text: str) -> bool:
    """A field value the HTTP/1.1 grammar allows: no CTLs other than tab, no DEL."""
    return all(c == "\t" or (ord(c) >= 0x20 and ord(c) != 0x7F) for c in text) and text.strip() != ""


def cookie_value(text: str) -> str:
    if text and all(ord(c) < 0x80 and ord(c) in COOKIE_OCTETS for c in text):
        return text
    return pct(text, UNRESERVED | (COOKIE_OCTETS - {0x25}), keep_escapes=True)


# ---------------------------------------------------------------- requests

@dataclass
class Req:
    group: str             # "attack" or "benign"
    label: str             # class or kind
    placement: str
    sample: str            # the corpus text (decoded)
    line: int
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes | None = None
    status: int | None = None
    error: str | None = None


def _headers(ua: str | None = None, extra: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    h = [("User-Agent", ua if ua is not None else BROWSER_UA)] + BASE_HEADERS
    return h + (extra or [])


def _json(obj) -> tuple[bytes, list[tuple[str, str]]]:
    body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return body, [("Content-Type", "application/json")]


def attack_requests(cls: str, payload: str, line: int, placements: list[str]) -> tuple[list[Req], int]:
    reqs, skipped = [], 0
    wanted = ["useragent"] if cls == "scanner" else placements
    for pl in wanted:
        if pl not in placements:
            continue
        if pl in HEADER_PLACEMENTS and not header_safe(payload):
            skipped += 1            # a raw CR/LF cannot travel in a header; other placements carry it
            continue
        r = Req("attack", cls, pl, payload, line, "GET", "/todos", _headers())
        if pl == "query_q":
            r.target = "/todos?q=" + pct(payload, QUERY_SAFE, True)
        elif pl == "query_other":
            r.target = "/todos?limit=20&filter=" + pct(payload, QUERY_SAFE, True)
        elif pl == "path":
            r.target = "/todos/" + pct(payload, PATH_SAFE, True)
        elif pl == "json_title":
            r.method, r.target = "POST", "/todos"
            r.body, extra = _json({"title": payload})
            r.headers = _headers(extra=extra)
        elif pl == "json_description":
            r.method, r.target = "POST", "/todos"
            r.body, extra = _json({"title": "x", "description": payload})
            r.headers = _headers(extra=extra)
        elif pl == "header":
            r.headers = _headers(extra=[("X-Custom-Data", payload)])
        elif pl == "referer":
            r.headers = _headers(extra=[("Referer", payload)])
        elif pl == "useragent":
            r.headers = _headers(ua=payload)
        elif pl == "cookie":
            r.headers = _headers(extra=[("Cookie", "session=" + cookie_value(payload))])
        reqs.append(r)
    return reqs, skipped


SHORT_TITLES = ["Notes", "Meeting notes", "Groceries", "Trip plan", "メモ", "Bug report"]


def benign_request(kind: str, text: str, line: int, i: int, todo_ids: list[str]) -> Req:
    r = Req("benign", kind, kind, text, line, "GET", "/todos", _headers())
    if kind in ("title", "description"):
        verbs = ["POST", "POST", "PUT", "PATCH"] if todo_ids else ["POST"]
        method = verbs[i % len(verbs)]
        if kind == "title":
            obj = {"title": text}
        elif method == "PATCH":
            obj = {"description": text}
        else:
            obj = {"title": SHORT_TITLES[i % len(SHORT_TITLES)], "description": text}
        r.method = method
        r.target = "/todos" if method == "POST" else "/todos/" + todo_ids[i % len(todo_ids)]
        r.placement = f"json_{kind}_{method.lower()}"
        r.body, extra = _json(obj)
        r.headers = _headers(extra=extra + [("Origin", "https://app.example.com")])
    elif kind == "query":
        enc = urllib.parse.quote_plus(text) if i % 2 else urllib.parse.quote(text, safe="")
        r.target = "/todos?q=" + enc + ("&completed=false" if i % 3 == 0 else "")
    elif kind == "useragent":
        r.target = "/todos?limit=20"
        r.headers = _headers(ua=text)
    elif kind == "cookie":
        r.headers = _headers(extra=[("Cookie", text)])
    elif kind == "referer":
        r.headers = _headers(extra=[("Referer", text)])
    return r


# ---------------------------------------------------------------- client

class Client:
    """One keep-alive connection per worker thread."""

    def __init__(self, host: str, port: int, timeout: float):
        self.host, self.port, self.timeout = host, port, timeout
        self.local = threading.local()

    def _conn(self, fresh: bool = False) -> http.client.HTTPConnection:
        c = getattr(self.local, "conn", None)
        if c is None or fresh:
            if c is not None:
                c.close()
            c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.local.conn = c
        return c

    def send(self, r: Req) -> None:
        for attempt in (0, 1):
            conn = self._conn(fresh=attempt == 1)
            try:
                conn.putrequest(r.method, r.target, skip_accept_encoding=True)
                for name, value in r.headers:
                    conn.putheader(name, value.encode("utf-8"))
                if r.body is not None:
                    conn.putheader("Content-Length", str(len(r.body)))
                conn.endheaders(r.body)
                resp = conn.getresponse()
                resp.read()
                r.status, r.error = resp.status, None
                if resp.will_close:
                    conn.close()
                return
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady) as e:
                # A kept-alive connection the server closed meanwhile: retry once on a new one.
                r.error = f"{type(e).__name__}: {e}"
                conn.close()
                self.local.conn = None
            except (OSError, http.client.HTTPException) as e:
                r.error = f"{type(e).__name__}: {e}"
                conn.close()
                self.local.conn = None
                return


def create_todos(client: Client, n: int) -> list[str]:
    ids = []
    for i in range(n):
        body = json.dumps({"title": f"waf-eval target {i}"}).encode()
        r = Req("setup", "setup", "setup", "", 0, "POST", "/todos",
                _headers(extra=[("Content-Type", "application/json")]), body)
        conn = http.client.HTTPConnection(client.host, client.port, timeout=client.timeout)
        try:
            conn.request("POST", "/todos", body=body, headers=dict(r.headers))
            resp = conn.getresponse()
            data = resp.read()
            if resp.status == 201:
                ids.append(json.loads(data)["todo"]["id"])
        except (OSError, http.client.HTTPException, ValueError, KeyError):
            pass
        finally:
            conn.close()
    return ids


# ---------------------------------------------------------------- report

def rate(a: int, b: int) -> float:
    return a / b if b else 0.0


def short(text: str, n: int = 110) -> str:
    s = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return s if len(s) <= n else s[:n - 1] + "…"


def table(title: str, rows: list[tuple[str, int, int]], what: str) -> list[str]:
    out = [f"{title:<22} {'sent':>7} {what:>8} {'rate':>8}"]
    for name, sent, hit in rows:
        out.append(f"  {name:<20} {sent:>7} {hit:>8} {rate(hit, sent) * 100:>7.1f}%")
    return out


def spread(items: list, n: int, key) -> list:
    """Up to n items, round-robin over key(item) so every group shows up."""
    groups = collections.OrderedDict()
    for it in items:
        groups.setdefault(key(it), []).append(it)
    picked, queues = [], [collections.deque(v) for v in groups.values()]
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.popleft())
    return picked


def stratified_limit(rows: list[tuple[str, str, int]], n: int) -> list[tuple[str, str, int]]:
    return sorted(spread(rows, n, key=lambda r: r[0]), key=lambda r: r[2])


# ---------------------------------------------------------------- main

def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Counts only a 403 as blocked. See the module docstring.")
    ap.add_argument("base_url", nargs="?", help="service base URL, e.g. http://127.0.0.1:8000")
    ap.add_argument("--corpus", default=DEFAULT_CORPUS, help="directory with attacks.tsv and benign.tsv (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=4, help="concurrent keep-alive connections (default 4)")
    ap.add_argument("--limit", type=int, metavar="N", help="use only N attack and N benign samples, spread over classes/kinds")
    ap.add_argument("--placements", help="comma-separated attack placements (default all: " + ",".join(ATTACK_PLACEMENTS) + ")")
    ap.add_argument("--classes", help="comma-separated attack classes (default all)")
    ap.add_argument("--no-benign", action="store_true", help="send attacks only")
    ap.add_argument("--no-attacks", action="store_true", help="send benign samples only")
    ap.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds (default 10)")
    ap.add_argument("--json-out", metavar="FILE", help="write the summary as JSON")
    ap.add_argument("--min-detection", type=float, metavar="R", help="exit 1 when the overall detection rate is below R (e.g. 0.7)")
    ap.add_argument("--max-fp", type=float, metavar="R", help="exit 1 when the overall false-positive rate is above R (e.g. 0.015)")
    ap.add_argument("--show-missed", type=int, default=0, metavar="N", help="list N missed attacks (spread over classes)")
    ap.add_argument("--show-fp", type=int, default=30, metavar="N", help="list up to N false positives (default 30)")
    ap.add_argument("--check-corpus", action="store_true", help="validate the corpus files, print counts, send nothing")
    ap.add_argument("--dry-run", action="store_true", help="print one request per placement/kind, send nothing")
    args = ap.parse_args(argv)

    try:
        attacks = load_tsv(os.path.join(args.corpus, "attacks.tsv"), ATTACK_CLASSES)
        benign = load_tsv(os.path.join(args.corpus, "benign.tsv"), BENIGN_KINDS)
    except (OSError, ValueError) as e:
        print(f"waf_eval: corpus: {e}", file=sys.stderr)
        return 2
    if args.check_corpus:
        for name, rows, labels in (("attacks", attacks, ATTACK_CLASSES), ("benign", benign, BENIGN_KINDS)):
            counts = collections.Counter(r[0] for r in rows)
            dup = len(rows) - len({(r[0], r[1]) for r in rows})
            print(f"{name}: {len(rows)} samples, {dup} duplicates: " + ", ".join(f"{k} {counts[k]}" for k in labels))
        long_titles = [r for r in benign if r[0] == "title" and not 1 <= len(r[1].strip()) <= 200]
        if long_titles:
            print(f"benign titles outside 1-200 characters: lines {[r[2] for r in long_titles]}")
            return 1
        return 0
    if not args.base_url and not args.dry_run:
        ap.error("base_url is required (or use --check-corpus / --dry-run)")

    placements = ATTACK_PLACEMENTS
    if args.placements:
        placements = [p.strip() for p in args.placements.split(",") if p.strip()]
        bad = [p for p in placements if p not in ATTACK_PLACEMENTS]
        if bad:
            ap.error(f"unknown placement(s) {bad}; known: {ATTACK_PLACEMENTS}")
    if args.classes:
        want = {c.strip() for c in args.classes.split(",")}
        bad = want - set(ATTACK_CLASSES)
        if bad:
            ap.error(f"unknown class(es) {sorted(bad)}")
        attacks = [r for r in attacks if r[0] in want]
    if args.limit:
        attacks = stratified_limit(attacks, args.limit)
        benign = stratified_limit(benign, args.limit)
    if args.no_attacks:
        attacks = []
    if args.no_benign:
        benign = []

    host, port = "127.0.0.1", 8000
    if args.base_url:
        u = urllib.parse.urlsplit(args.base_url)
        if u.scheme != "http" or not u.hostname:
            ap.error("base_url must be http://host[:port]")
        host, port = u.hostname, u.port or 80
    client = Client(host, port, args.timeout)

    todo_ids: list[str] = []
    if benign and not args.dry_run:
        todo_ids = create_todos(client, max(1, args.workers))
        if not todo_ids:
            print("waf_eval: warning: could not create target todos; benign PUT/PATCH samples are sent as POST", file=sys.stderr)

    reqs: list[Req] = []
    skipped = collections.Counter()
    for cls, payload, line in attacks:
        rs, sk = attack_requests(cls, payload, line, placements)
        reqs.extend(rs)
        skipped[cls] += sk
    for i, (kind, text, line) in enumerate(benign):
        reqs.append(benign_request(kind, text, line, i, todo_ids or ["00000000-0000-0000-0000-000000000000"]))

    if args.dry_run:
        shown = set()
        for r in reqs:
            key = (r.group, r.placement)
            if key in shown:
                continue
            shown.add(key)
            print(f"[{r.group}/{r.label}/{r.placement}] {r.method} {r.target}")
            for n, v in r.headers:
                print(f"    {n}: {v}")
            if r.body:
                print(f"    body: {r.body.decode('utf-8')[:200]}")
        print(f"{len(reqs)} requests would be sent; {sum(skipped.values())} header placements skipped (CR/LF in payload)")
        return 0

    started = time.monotonic()
    total = len(reqs)
    done = [0]
    lock = threading.Lock()
    progress = sys.stderr.isatty()

    def run(r: Req) -> None:
        client.send(r)
        if progress:
            with lock:
                done[0] += 1
                if done[0] % 250 == 0 or done[0] == total:
                    print(f"\r  {done[0]}/{total} requests", end="", file=sys.stderr, flush=True)

    order = list(range(total))
    random.Random(6).shuffle(order)          # interleave classes and placements across workers
    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        list(pool.map(lambda i: run(reqs[i]), order))
    if progress:
        print(file=sys.stderr)
    elapsed = time.monotonic() - started

    # ---- tally
    failures = [r for r in reqs if r.error is not None or (r.status is not None and (r.status >= 500 or r.status == 429))]
    failed_ids = {id(r) for r in failures}
    ok = [r for r in reqs if id(r) not in failed_ids]
    atk = [r for r in ok if r.group == "attack"]
    ben = [r for r in ok if r.group == "benign"]
    blocked = lambda rs: sum(1 for r in rs if r.status == 403)

    by_class = [(c, len(g), blocked(g)) for c in ATTACK_CLASSES if (g := [r for r in atk if r.label == c])]
    by_place = [(p, len(g), blocked(g)) for p in ATTACK_PLACEMENTS if (g := [r for r in atk if r.placement == p])]
    by_kind = [(k, len(g), blocked(g)) for k in BENIGN_KINDS if (g := [r for r in ben if r.label == k])]
    a_sent, a_blocked = len(atk), blocked(atk)
    b_sent, b_blocked = len(ben), blocked(ben)
    det, fp = rate(a_blocked, a_sent), rate(b_blocked, b_sent)
    fps = [r for r in ben if r.status == 403]
    missed = [r for r in atk if r.status != 403]
    benign_odd = [r for r in ben if r.status is not None and r.status != 403 and not 200 <= r.status < 300]
    statuses = collections.Counter((r.group, r.status if r.error is None else "error") for r in reqs)

    lines = [f"waf_eval: {total} requests to {args.base_url} in {elapsed:.1f}s "
             f"({total / elapsed if elapsed else 0:.0f}/s, {args.workers} workers)", ""]
    if atk:
        lines += table("attacks by class", by_class, "blocked") + [""]
        lines += table("attacks by placement", by_place, "blocked") + [""]
        lines.append("detection by class x placement (%):")
        hdr = "  " + f"{'':<10}" + "".join(f"{p[:9]:>10}" for p in ATTACK_PLACEMENTS)
        lines.append(hdr)
        for c in ATTACK_CLASSES:
            cells = []
            any_cell = False
            for p in ATTACK_PLACEMENTS:
                g = [r for r in atk if r.label == c and r.placement == p]
                any_cell |= bool(g)
                cells.append(f"{rate(blocked(g), len(g)) * 100:>10.0f}" if g else f"{'-':>10}")
            if any_cell:
                lines.append("  " + f"{c:<10}" + "".join(cells))
        lines.append("")
    if ben:
        lines += table("benign by kind", by_kind, "403s") + [""]
    if atk:
        lines.append(f"DETECTION  {a_blocked}/{a_sent} = {det * 100:.1f}%")
    if ben:
        lines.append(f"FALSE POS  {b_blocked}/{b_sent} = {fp * 100:.2f}%")
    if sum(skipped.values()):
        lines.append(f"(header placements skipped for payloads with CR/LF: {sum(skipped.values())})")
    print("\n".join(lines))

    if fps and args.show_fp:
        print(f"\nfalse positives ({len(fps)}; first {min(len(fps), args.show_fp)}):")
        for r in spread(fps, args.show_fp, key=lambda r: r.label):
            print(f"  [{r.label} {r.placement} benign.tsv:{r.line}] {short(r.sample)}")
    if missed and args.show_missed:
        print(f"\nmissed attacks ({len(missed)}; {min(len(missed), args.show_missed)} shown):")
        for r in spread(missed, args.show_missed, key=lambda r: r.label):
            print(f"  [{r.label} {r.placement} -> {r.status} attacks.tsv:{r.line}] {short(r.sample)}")
    if benign_odd:
        odd = collections.Counter(r.status for r in benign_odd)
        print(f"\nwarning: {len(benign_odd)} benign requests got non-2xx answers other than 403 "
              f"({', '.join(f'{s}: {n}' for s, n in sorted(odd.items()))}); first 10:")
        for r in benign_odd[:10]:
            print(f"  [{r.label} {r.placement} -> {r.status} benign.tsv:{r.line}] {short(r.sample)}")
    if failures:
        kinds = collections.Counter("error" if r.error else r.status for r in failures)
        print(f"\nRUN FAILURES: {len(failures)} requests ({', '.join(f'{k}: {n}' for k, n in kinds.items())}); "
              "these are excluded from the rates above. First 50:")
        for r in failures[:50]:
            what = r.error or f"HTTP {r.status}"
            src = "attacks.tsv" if r.group == "attack" else "benign.tsv"
            print(f"  [{r.group} {r.label} {r.placement} {src}:{r.line}] {r.method} {short(r.target, 80)} -> {what}")
        if any(r.status == 429 for r in failures):
            print("  (429: the rate limiter answered; run the service with a RATE_LIMIT high enough for the whole corpus)")

    passed = not failures
    checks = {}
    if args.min_detection is not None:
        checks["min_detection"] = {"want": args.min_detection, "got": det, "ok": bool(atk) and det >= args.min_detection}
    if args.max_fp is not None:
        checks["max_fp"] = {"want": args.max_fp, "got": fp, "ok": bool(ben) and fp <= args.max_fp}
    for name, c in checks.items():
        print(f"{'OK  ' if c['ok'] else 'FAIL'} {name}: {c['got']:.4f} (threshold {c['want']})")
        passed &= c["ok"]

    if args.json_out:
        def cls_place():
            d = {}
            for c in ATTACK_CLASSES:
                for p in ATTACK_PLACEMENTS:
                    g = [r for r in atk if r.label == c and r.placement == p]
                    if g:
                        d.setdefault(c, {})[p] = {"sent": len(g), "blocked": blocked(g), "rate": rate(blocked(g), len(g))}
            return d
        summary = {
            "base_url": args.base_url, "requests": total, "duration_s": round(elapsed, 3), "workers": args.workers,
            "limit": args.limit, "placements": placements,
            "attacks": {"samples": len(attacks), "sent": a_sent, "blocked": a_blocked, "detection_rate": det,
                        "by_class": {c: {"sent": s, "blocked": b, "rate": rate(b, s)} for c, s, b in by_class},
                        "by_placement": {p: {"sent": s, "blocked": b, "rate": rate(b, s)} for p, s, b in by_place},
                        "by_class_placement": cls_place(),
                        "skipped_header_placements": dict(skipped)},
            "benign": {"samples": len(benign), "sent": b_sent, "blocked": b_blocked, "false_positive_rate": fp,
                       "by_kind": {k: {"sent": s, "blocked": b, "rate": rate(b, s)} for k, s, b in by_kind},
                       "false_positives": [{"kind": r.label, "placement": r.placement, "line": r.line, "text": r.sample}
                                           for r in fps],
                       "non_2xx": [{"kind": r.label, "placement": r.placement, "line": r.line, "status": r.status}
                                   for r in benign_odd]},
            "failures": [{"group": r.group, "label": r.label, "placement": r.placement, "line": r.line,
                          "method": r.method, "target": r.target[:300], "status": r.status, "error": r.error}
                         for r in failures],
            "status_counts": {f"{g}:{s}": n for (g, s), n in sorted(statuses.items(), key=lambda x: str(x))},
            "checks": checks, "passed": passed,
        }
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(summary, f, ensure_ascii=False, indent=2)
            f.write("\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
