"""Where the service's resident memory is: runs the four /todos loads of `scripts/bench api`
(BENCH_SECONDS each, default 3) against the release binary, then prints its peak RSS (VmHWM), the
resident kB of every mapping from /proc/PID/smaps, and the binary's resident pages attributed to
the archives and modules they were linked from (/proc/PID/pagemap against lld's link map).
Run through scripts/rss-breakdown, which builds the binary with the map. Needs root (pagemap).
  --tls   the database over TLS (pg-local --tls, sslmode=require), as on Aurora."""
import bisect
import collections
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("BENCH_SECONDS", "3")
import bench  # noqa: E402  (reads BENCH_SECONDS at import)

BINARY = os.path.join(bench.ROOT, ".build/release/todo-api")
LINK_MAP = os.path.join(bench.ROOT, ".build/todo-api.map")


def mappings(pid):
    """[(start, end, offset, perms, path)] of /proc/PID/maps."""
    result = []
    for line in open(f"/proc/{pid}/maps"):
        parts = line.split()
        start, end = (int(x, 16) for x in parts[0].split("-"))
        result.append((start, end, int(parts[2], 16), parts[1], parts[5] if len(parts) > 5 else "[anon]"))
    return result


def smaps_rss(pid):
    """{(path, perms): resident kB}."""
    totals = collections.Counter()
    key = None
    for line in open(f"/proc/{pid}/smaps"):
        parts = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+$", parts[0]):
            key = (parts[5] if len(parts) > 5 else "[anon]", parts[1])
        elif parts[0] == "Rss:":
            totals[key] += int(parts[1])
    return totals


def load_segments(binary):
    """[(file offset, vaddr, memsz)] of the PT_LOAD headers."""
    out = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True).stdout
    return [(int(p[1], 16), int(p[2], 16), int(p[5], 16)) for p in (l.split() for l in out.splitlines()) if p and p[0] == "LOAD"]


def input_sections(link_map):
    """Sorted starts and owners (archive or module) of the link map's input sections."""
    pattern = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s{9}(\S.*)$")
    rows = []
    for line in open(link_map):
        match = pattern.match(line)
        if not match or int(match.group(2), 16) == 0:
            continue
        source = re.sub(r"\(.*\)$", "", match.group(3).split(":(")[0])
        module = re.search(r"/([A-Za-z_]+)\.build/", source)
        rows.append((int(match.group(1), 16), module.group(1) if module else os.path.basename(source)))
    rows.sort()
    return [r[0] for r in rows], [r[1] for r in rows]


def resident_by_owner(pid, binary):
    segments = load_segments(binary)
    starts, owners = input_sections(LINK_MAP)
    by_owner = collections.Counter()
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for start, end, offset, _, path in mappings(pid):
            if os.path.realpath(path) != os.path.realpath(binary):
                continue
            pages = (end - start) // 4096
            pagemap.seek(start // 4096 * 8)
            entries = struct.unpack(f"<{pages}Q", pagemap.read(pages * 8))
            for i, entry in enumerate(entries):
                if not entry >> 63:     # bit 63: page present
                    continue
                file_offset = offset + i * 4096
                vaddr = next((v + file_offset - o for o, v, size in segments if o <= file_offset < o + size), None)
                if vaddr is None:
                    continue
                # The owner of most of the page (sampled every 256 bytes).
                votes = collections.Counter(owners[j] for j in (bisect.bisect_right(starts, vaddr + k) - 1 for k in range(0, 4096, 256)) if j >= 0)
                if votes:
                    by_owner[votes.most_common(1)[0][0]] += 4
    return by_owner


def main():
    tls = "--tls" in sys.argv
    cluster = bench.BenchCluster(tls=tls)
    try:
        psql = [os.path.join(os.path.dirname(cluster.env["PG_CTL"]), "psql"), cluster.env["PG_ADMIN_URL"], "-q", "-v", "ON_ERROR_STOP=1"]
        subprocess.run(psql + ["-c", bench.SEED_SQL], check=True)
        ids = subprocess.run(psql + ["-tAc", "SELECT md5(n::text)::uuid FROM generate_series(1, 10000) AS n"],
                             capture_output=True, text=True, check=True).stdout.split()
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("\n".join(ids) + "\n")
            ids_file = f.name
        port = bench.free_port()
        env = dict(os.environ, DATABASE_URL=cluster.url, RATE_LIMIT="off")
        server = subprocess.Popen(["taskset", "-c", "0", BINARY, "serve", "--host", "127.0.0.1", "--port", str(port),
                                   "--log-level", "error", "--db-pool-min", "4", "--db-pool-max", "4"],
                                  env=env, stdout=subprocess.DEVNULL, cwd=bench.ROOT)
        try:
            bench.wait_port(port)
            for name in ["GET /todos/{id}", "GET /todos?limit=20", "POST /todos", "PUT /todos/{id}"]:
                bench.wrk_script(f"http://127.0.0.1:{port}", bench.WRK_SCRIPTS[name] % {"ids": ids_file})
            print(f"peak RSS (VmHWM) {bench.peak_rss_mb(server.pid):.1f} MB, database {'over TLS' if tls else 'without TLS'}")
            print("\nresident kB by mapping (smaps):")
            for (path, perms), kb in sorted(smaps_rss(server.pid).items(), key=lambda kv: -kv[1]):
                if kb >= 100:
                    print(f"{kb:8d}  {perms}  {path}")
            if os.path.exists(LINK_MAP):
                owners = resident_by_owner(server.pid, BINARY)
                print(f"\nthe binary's resident kB by archive or module (pagemap + link map), {sum(owners.values())} kB in all:")
                for owner, kb in owners.most_common():
                    if kb >= 12:
                        print(f"{kb:8d}  {owner}")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait()
            os.unlink(ids_file)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
