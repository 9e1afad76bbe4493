"""What the drills against the real binary share (credential_drills.py, auth_drills.py): the
processes they start and clean up, `wait_until`, the service run (`todo-api serve`, its output
and JSON log, readiness, stop), its environment, PostgreSQL through psql as the superuser, a test
CA made with the openssl CLI, threaded HTTP(S) endpoints, and the search of every output for
secrets. Standard library only: each drill runs it under its own virtualenv's python."""
import atexit
import glob
import http.client
import json
import os
import re
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from checks import free_port

# The service reads its migrations from ./Migrations: it runs from the repository's root.
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROCESSES = []


@atexit.register
def kill_processes():
    """A drill that fails half-way must not leave a service (or moto) running."""
    for proc in PROCESSES:
        if proc.poll() is None:
            proc.kill()


def wait_until(predicate, timeout, interval=0.1):
    """predicate()'s first truthy value within `timeout` seconds, else None (checked once more at the end)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value or None
        time.sleep(interval)


def unchanged(text):
    return text


def arguments(usage):
    """BINARY (as an absolute path), ADMIN_URL, URL_PREFIX from the command line; else exits with `usage`."""
    if len(sys.argv) != 4:
        raise SystemExit(usage)
    binary, admin_url, url_prefix = sys.argv[1:]
    return os.path.abspath(binary), admin_url, url_prefix


def run_drills(check, lab, setup, setup_label, drills, last, redact=unchanged):
    """setup(lab), then each of `drills`, then `last` (the search for secrets: it runs whatever
    failed before). An exception ends only the step it happens in, as a failed check with its
    traceback (through `redact`); a failed setup is one (`setup_label`), and no drill but `last` runs."""
    try:
        setup(lab)
    except Exception:
        check(setup_label, False, redact(traceback.format_exc(limit=4)))
        drills = []
    for drill in [*drills, last]:
        try:
            drill(lab)
        except Exception:
            check(f"{drill.__name__} ran to its end", False, redact(traceback.format_exc(limit=4)))


def finish(name, check):
    """The summary line; exits 1 on any failure."""
    print(f"{name}: {check.passed} passed, {check.failed} failed")
    sys.exit(1 if check.failed else 0)


def replace_file(path, text):
    """`text` written to a new file renamed over `path` (as the kubelet does: never half a file)."""
    with open(path + ".new", "w") as f:
        f.write(text)
    os.replace(path + ".new", path)


# ---------------------------------------------------------------------------------------------
# PostgreSQL, as its superuser through psql


def with_database(url, name):
    """The admin URL (a URI, or a conninfo string) naming another database."""
    uri = re.fullmatch(r"(postgres(?:ql)?://[^/?]*)(/[^?]*)?(\?.*)?", url)
    if uri:
        return f"{uri.group(1)}/{name}{uri.group(3) or ''}"
    return f"{url} dbname={name}"


class Psql:
    """psql with the superuser's ADMIN_URL; `host` and `port` are where the service reaches
    PostgreSQL over TCP (URL_PREFIX's). PSQL overrides the psql found in the newest
    /usr/lib/postgresql/*/bin. `redact` is applied to psql's errors."""

    def __init__(self, admin_url, url_prefix, redact=unchanged):
        self.admin_url = admin_url
        prefix = urllib.parse.urlsplit(url_prefix)
        self.host = prefix.hostname or "127.0.0.1"
        self.port = prefix.port or 5432
        bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0)
        self.psql = os.environ.get("PSQL") or (os.path.join(bindirs[-1], "psql") if bindirs else "psql")
        self.redact = redact

    def run(self, sql, database=None):
        """Runs `sql` (statements separated by `;`, each in its own transaction) in the admin URL's
        database, or in `database`; its output (-tA)."""
        url = with_database(self.admin_url, database) if database else self.admin_url
        command = [self.psql, url, "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-f", "-"]
        if os.geteuid() == 0:
            # The cluster belongs to postgres (scripts/pg-local): connect as that user, as scripts/test does.
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, input="SET client_min_messages = warning;\n" + sql, capture_output=True,
                                text=True, timeout=60, cwd="/")
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {self.redact(result.stderr.strip())}")
        return result.stdout.strip()


# ---------------------------------------------------------------------------------------------
# The service


def service_env(strip, defaults, settings):
    """This process's environment without the variables whose names start with one of `strip`
    (nor MIGRATE_ON_START), then `defaults`, then `settings` (None removes one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(strip) and k != "MIGRATE_ON_START"}
    env.update(defaults)
    for key, value in settings.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def migrate(binary, env, redact=unchanged):
    """The binary's `migrate` (errors only); its completed process. Raises if it fails."""
    migrated = subprocess.run([binary, "migrate", "--log-level", "error"], env=env, capture_output=True,
                              timeout=60, cwd=REPOSITORY)
    if migrated.returncode != 0:
        raise RuntimeError(f"migrate exited {migrated.returncode}: {redact(migrated.stderr.decode(errors='replace'))}")
    return migrated


def serve_until_exit(binary, env, timeout):
    """A `serve` that must exit at start: (its status, or `still running after N s`; its output)."""
    command = [binary, "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--metrics-port", "0"]
    try:
        result = subprocess.run(command, env=env, capture_output=True, timeout=timeout, cwd=REPOSITORY)
        return result.returncode, (result.stdout + result.stderr).decode("utf-8", "replace")
    except subprocess.TimeoutExpired as expired:
        return (f"still running after {timeout} s",
                ((expired.stdout or b"") + (expired.stderr or b"")).decode("utf-8", "replace"))


class Service:
    """One `todo-api serve` (with `--migrate` unless told not to; a metrics port of its own when
    `metrics`, else none); its stdout (JSON log lines) and stderr go to files in the lab's
    directory, read by the checks. Every run is kept for the final search for secrets."""
    runs = []

    def __init__(self, lab, name, env, metrics=False, migrate=True):
        self.lab = lab
        self.name = name
        self.port = free_port()
        self.metrics_port = free_port() if metrics else 0
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        self.stdout_path = os.path.join(lab.workdir, f"{slug}-{len(Service.runs)}.out")
        self.stderr_path = self.stdout_path[:-4] + ".err"
        self.started = time.monotonic()
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([lab.binary, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                                          "--metrics-port", str(self.metrics_port), *(["--migrate"] if migrate else [])],
                                         env=env, stdout=out, stderr=err, cwd=REPOSITORY)
        PROCESSES.append(self.proc)
        Service.runs.append(self)

    def output(self):
        text = ""
        for path in (self.stdout_path, self.stderr_path):
            with open(path, "rb") as f:
                text += f.read().decode("utf-8", "replace")
        return text

    def tail(self, lines=15):
        return "\n".join(self.output().splitlines()[-lines:])

    def log(self, containing=""):
        """The JSON log lines (those whose text contains `containing`: the access log is long)."""
        entries = []
        with open(self.stdout_path, "rb") as f:
            for line in f.read().decode("utf-8", "replace").splitlines():
                if containing not in line:
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    entries.append(entry)
        return entries

    def wait_ready(self, probes, timeout):
        """(True, "") once each of `probes` in turn, (a function answering a status, the status
        awaited), has answered what it awaits within `timeout` s, else (False, why)."""
        deadline = time.monotonic() + timeout
        last = None
        for probe, awaited in probes:
            while True:
                if self.proc.poll() is not None:
                    return False, f"exited with {self.proc.returncode}:\n{self.tail()}"
                if time.monotonic() > deadline:
                    return False, f"not ready after {timeout} s (last: {last}):\n{self.tail()}"
                try:
                    last = probe()
                    if last == awaited:
                        break
                except (OSError, http.client.HTTPException) as error:
                    last = repr(error)
                time.sleep(0.1)
        return True, ""

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def check_no_leaks(check, extra_outputs, leaks, what, searched_for):
    """One check: `leaks` (a text -> the secrets it holds) finds nothing in the output of any
    service run nor in any (name, text) of `extra_outputs`; its line names `what` is searched for
    and, after `searched_for`, how it was."""
    outputs = [(s.name, s.output()) for s in Service.runs] + list(extra_outputs)
    found = {name: leaks(text) for name, text in outputs}
    found = {name: secrets for name, secrets in found.items() if secrets}
    size = sum(len(text) for _, text in outputs)
    check(f"no {what} in any output: {len(outputs)} runs, {size // 1024} KiB, searched for {searched_for}", not found, found)


# ---------------------------------------------------------------------------------------------
# HTTPS: a test CA made with the openssl CLI; threaded HTTP(S) endpoints


def make_tls(directory, ca_name):
    """A private CA (CN `ca_name`), a server certificate for DNS:localhost only (no IP address),
    and an impostor CA: another key under the same name. The files' paths by name."""
    os.makedirs(directory, exist_ok=True)
    files = {name: os.path.join(directory, name) for name in
             ("ca.pem", "ca.key", "server.pem", "server.key", "server.csr", "san.ext", "impostor.pem", "impostor.key")}
    ca_subject = f"/CN={ca_name}"

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", ca_subject,
            "-keyout", files["ca.key"], "-out", files["ca.pem"])
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", files["server.key"], "-out", files["server.csr"])
    with open(files["san.ext"], "w") as f:
        f.write("subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", files["server.csr"], "-CA", files["ca.pem"], "-CAkey", files["ca.key"],
            "-CAcreateserial", "-days", "2", "-extfile", files["san.ext"], "-out", files["server.pem"])
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", ca_subject,
            "-keyout", files["impostor.key"], "-out", files["impostor.pem"])
    return files


def server_context(tls_files):
    """A TLS server context with make_tls's server certificate (DNS:localhost)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files["server.pem"], tls_files["server.key"])
    return context


class DrillHandler(BaseHTTPRequestHandler):
    """Hands every GET to its server's owner (`owner.handle(self)`); quiet."""
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.owner.handle(self)

    def reply(self, status, body, content_type="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class DrillServer(ThreadingHTTPServer):
    """A threaded HTTP(S) server for one drill endpoint, serving from its start: counts
    connections, keeps handler errors (failed TLS handshakes among them) instead of printing
    them, in its owner (`lock`, `connections`, `errors`)."""
    daemon_threads = True

    def __init__(self, address, owner, family=socket.AF_INET, tls=None, handler=DrillHandler):
        self.address_family = family
        self.owner = owner
        super().__init__(address, handler)
        if tls:
            # The handshake happens at the handler's first read, in its own thread.
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def server_bind(self):
        # HTTPServer's own looks up the host's name (getfqdn), which can hang without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request, client_address):
        with self.owner.lock:
            self.owner.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        with self.owner.lock:
            self.owner.errors.append(repr(sys.exc_info()[1]))

    def close(self):
        self.shutdown()
        self.server_close()


class Endpoint:
    """An endpoint the service calls: DrillServers on `host` at one port (`port`), their
    requests handed to `handle(request)`, which a subclass defines (its own state set before
    this runs: the servers serve at once). On 127.0.0.1 it also listens on ::1 when it can and
    `ipv6` (localhost may be either)."""

    def __init__(self, host="127.0.0.1", tls=None, handler=DrillHandler, ipv6=True):
        self.lock = threading.Lock()
        self.connections = 0
        self.errors = []
        self.servers = [DrillServer((host, 0), self, tls=tls, handler=handler)]
        self.port = self.servers[0].server_address[1]
        if ipv6 and host == "127.0.0.1" and socket.has_ipv6:
            try:
                self.servers.append(DrillServer(("::1", self.port), self, socket.AF_INET6, tls, handler))
            except OSError:
                pass

    def close(self):
        for server in self.servers:
            server.close()
