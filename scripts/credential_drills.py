#!/usr/bin/env python3
"""Credential drills against the real binary over real sockets: a real PostgreSQL whose passwords
change under load, Secrets Manager (moto's server), and container credential endpoints (ECS task
roles, EKS Pod Identity) served here over HTTP and HTTPS.

usage, under the pinned AWS virtualenv's python (botocore and moto):
  "$(scripts/aws-venv)" scripts/credential_drills.py BINARY ADMIN_URL URL_PREFIX
    BINARY      the todo-api binary
    ADMIN_URL   a superuser URL for psql (scripts/test: "$TEST_PG_ADMIN_URL", the stable cluster's
                Unix socket; as root, psql runs as the postgres user, as fresh_database does)
    URL_PREFIX  the application's DATABASE_URL without its database (scripts/test:
                "$stable_url_prefix"); only its host and port are used: where the service reaches
                PostgreSQL over TCP
The drills make their own database `credential_drills` and roles `drill_rotating` (its owner) and
`drill_rotating_alt` (a member of it), dropped and made again at each run; PSQL overrides the psql
found in the newest /usr/lib/postgresql/*/bin. Prints one line per check and
`credential-drills: N passed, M failed` at the end; exits 1 on any failure.

Secrets Manager is moto's server behind a proxy that checks every request's SigV4 signature and
session token against the keys the drills handed out, and refuses the request as AWS would
(moto checks neither): a service that signs wrongly, or with stale credentials, fails here as it
would in AWS. Every password, secret key and token has a random core that is searched for in the
service's output, so an escaped or percent-encoded copy is found too.

The drills, and what each reproduces:
1. IAM authentication without TLS: DB_IAM_AUTH=true with sslmode=disable would send a signed token
   (a credential) in clear; the service must refuse to start (exit 2, naming DB_IAM_AUTH).
2. Rotation under load: Secrets Manager rotation of the password the service uses while 8 clients
   write and read. The new version is stored, the role's password changed and its sessions killed
   (what an operator or a rotation Lambda does). Answers stay 2xx or 503; the 503s end within 10 s
   (reconnect, 28P01, one refresh of the secret); the process never restarts; the refresh is
   logged with its reason, user and version, never the password. DATABASE_URL gives host, port and
   database, the secret (referred to by name) the user and password; the secret's own host, port
   and database point elsewhere and must lose to the URL's.
3. Scheduled refresh: RDS's alternating-users rotation. The secret switches to a second user while
   both can log in; with DB_SECRET_REFRESH=2s the service picks it up by itself; then the first
   user's password changes and its sessions die, and no client sees a 503 (the credentials in hand
   are already the new ones; no refresh on rejection). Also: everything (host, port, database)
   from the secret with no DATABASE_URL; AWS_ENDPOINT_URL_SECRETS_MANAGER over AWS_ENDPOINT_URL;
   an access key without a session token.
4. Container credentials over plain HTTP on loopback, as ECS and EKS Pod Identity serve them:
   short-lived keys (5 min + 3 s), without an authorization token (as the ECS agent serves them) and
   with `Authorization: <token>`, given in
   AWS_CONTAINER_AUTHORIZATION_TOKEN, then in AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE whose token
   is rotated during the run (EKS rotates it: the file must be read again at each fetch). The keys
   are refreshed ahead of their expiry and the secret fetches afterwards are signed with the new
   ones (DB_SECRET_ID given as an ARN). Plain HTTP to an address that is neither loopback nor the
   ECS/EKS link-local one is a configuration error (exit 2, naming AWS_CONTAINER_CREDENTIALS_FULL_URI)
   and nothing connects to it (drilled when this host has such an address).
5. Container credentials over HTTPS with a private CA in SSL_CERT_FILE: accepted for
   https://localhost (the certificate's name); refused for https://127.0.0.1 (not in the
   certificate) and with a CA file that holds another CA of the same name: exit 1 at start (no
   credentials, so no signed secret fetch), the token never sent (TLS connections, no request),
   the refused certificate and the reason named in the log.
6. No secret in any output of any run above.
"""
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter

import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

import drill_support
from checks import Checks, free_port
from drill_support import PROCESSES, Endpoint, kill_processes, replace_file, wait_until

check = Checks()

REGION = "us-east-1"
DATABASE = "credential_drills"
OWNER = "drill_rotating"
ALTERNATE = "drill_rotating_alt"
# Passwords carry what breaks naive handling: URL-special characters, a space, a quote, a backslash
# (a conninfo string needs quoting for those, a JSON string escapes the last two).
PASSWORD_TAIL = " p@ss:w/rd%'q\\"


class Secrets:
    """Every secret value the drills make. Each has a random core of 24 hex digits: searching for
    the cores finds a secret also when a log escaped or percent-encoded it."""

    def __init__(self):
        self.cores = {}

    def new(self, label, tail=""):
        core = secrets.token_hex(12)
        self.cores[core] = label
        return core + tail

    def leaks(self, text):
        return sorted({label for core, label in self.cores.items() if core in text})

    def redact(self, text):
        for core, label in self.cores.items():
            text = text.replace(core, f"<{label}>")
        return text


# ---------------------------------------------------------------------------------------------
# PostgreSQL, as its superuser through psql


class Postgres(drill_support.Psql):
    """psql (drill_support.Psql, its errors redacted) on the drills' database and roles."""

    @staticmethod
    def literal(text):
        return "'" + text.replace("'", "''") + "'"

    def setup(self, owner_password, alternate_password):
        self.run(f"""
            DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE);
            DROP ROLE IF EXISTS {ALTERNATE};
            DROP ROLE IF EXISTS {OWNER};
            CREATE ROLE {OWNER} LOGIN PASSWORD {self.literal(owner_password)};
            CREATE ROLE {ALTERNATE} LOGIN PASSWORD {self.literal(alternate_password)} IN ROLE {OWNER};
            CREATE DATABASE {DATABASE} OWNER {OWNER};""")

    def set_password(self, role, password):
        self.run(f"ALTER ROLE {role} PASSWORD {self.literal(password)};")

    def rotate(self, role, password):
        """The role's password changes, then its sessions are killed: one psql session, back to back."""
        return self.run(f"""
            ALTER ROLE {role} PASSWORD {self.literal(password)};
            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = {self.literal(role)};""")

    def session_users(self):
        out = self.run(f"SELECT usename FROM pg_stat_activity WHERE datname = {self.literal(DATABASE)} AND pid <> pg_backend_pid();")
        return sorted(line for line in out.splitlines() if line)


# ---------------------------------------------------------------------------------------------
# Secrets Manager: moto's server, and a proxy in front of it that verifies signatures


def aws_client(endpoint, key_id, secret_key, token=None):
    return botocore.session.get_session().create_client(
        "secretsmanager", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key_id,
        aws_secret_access_key=secret_key, aws_session_token=token,
        config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=10))


class Moto:
    def __init__(self, workdir, postgres):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(workdir, "moto.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                         stdout=log, stderr=subprocess.STDOUT)
        PROCESSES.append(self.proc)

        def answers():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.sendall(b"GET /moto-api/ HTTP/1.1\r\nHost: moto\r\nConnection: close\r\n\r\n")
                    return s.recv(12).startswith(b"HTTP/1.")
            except OSError:
                return False

        if not wait_until(lambda: self.proc.poll() is not None or answers(), 60) or self.proc.poll() is not None:
            with open(self.log_path, errors="replace") as f:
                raise RuntimeError(f"moto_server did not start: {f.read()[-2000:]}")
        self.client = aws_client(self.url, "testing", "testing")
        self.postgres = postgres
        self.arns = {}

    def put(self, name, user, password, host=None, port=None, dbname=None):
        """Stores an RDS-style secret as the new current version (creating the secret at first);
        returns (VersionId, ARN)."""
        value = json.dumps({"engine": "postgres", "username": user, "password": password,
                            "host": host or self.postgres.host, "port": port or self.postgres.port,
                            "dbname": dbname or DATABASE})
        if name not in self.arns:
            answer = self.client.create_secret(Name=name, SecretString=value)
            self.arns[name] = answer["ARN"]
        else:
            answer = self.client.put_secret_value(SecretId=name, SecretString=value)
        return answer["VersionId"], self.arns[name]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def verify_sigv4(method, target, headers, body, keys):
    """Checks an AWS Signature Version 4 header signature as AWS does (for a JSON protocol
    service: the path encoded once more, the body's SHA-256). Returns (access key id or None,
    error or None). `keys`: access key id -> (secret key, session token or None)."""
    def values(name):
        return [v for n, v in headers if n.lower() == name]

    authorization = values("authorization")
    if len(authorization) != 1:
        return None, "no Authorization header (MissingAuthenticationToken)"
    match = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
                         r"SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})", authorization[0].strip())
    if not match:
        return None, f"malformed Authorization: {authorization[0][:60]}"
    key_id, day, region, service, signed, signature = match.groups()
    if key_id not in keys:
        return key_id, "unknown access key (UnrecognizedClientException)"
    secret_key, token = keys[key_id]
    amz_date = values("x-amz-date")
    if len(amz_date) != 1 or not re.fullmatch(r"\d{8}T\d{6}Z", amz_date[0]):
        return key_id, "no valid X-Amz-Date"
    amz_date = amz_date[0]
    if amz_date[:8] != day or region != REGION or service != "secretsmanager":
        return key_id, f"wrong credential scope {day}/{region}/{service} for {amz_date}"
    signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    if abs((datetime.datetime.now(datetime.timezone.utc) - signed_at).total_seconds()) > 300:
        return key_id, "signature time more than 5 minutes off (InvalidSignatureException)"
    names = signed.split(";")
    if names != sorted(names) or "host" not in names or "x-amz-date" not in names:
        return key_id, f"SignedHeaders must be sorted and include host and x-amz-date: {signed}"
    if values("x-amz-security-token") != ([token] if token else []):
        return key_id, "the security token is missing, invalid or not this key's (UnrecognizedClientException)"
    canonical_headers = ""
    for name in names:
        found = values(name)
        if not found:
            return key_id, f"signed header {name} is missing"
        canonical_headers += f"{name}:{','.join(' '.join(v.split()) for v in found)}\n"
    path, _, query = target.partition("?")
    canonical_query = "&".join(f"{k}={v}" for k, v in sorted(
        (urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)))
    canonical_request = "\n".join([method, urllib.parse.quote(path or "/", safe="/~"), canonical_query,
                                   canonical_headers, signed, hashlib.sha256(body).hexdigest()])
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, f"{day}/{region}/{service}/aws4_request",
                                hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return key_id, "the signature does not match (InvalidSignatureException)"
    return key_id, None


class GetPostHandler(drill_support.DrillHandler):
    """GET and POST (Secrets Manager's JSON protocol) to the owner."""
    do_POST = drill_support.DrillHandler.do_GET


class SigningProxy(Endpoint):
    """Secrets Manager as the service sees it: requests whose signature and session token verify
    with a key handed out here are forwarded to moto; others get AWS's 400. Records every request.
    On 127.0.0.1 only."""
    HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "content-length", "server", "date"}

    def __init__(self, moto_port):
        self.moto_port = moto_port
        self.keys = {}
        self.requests = []
        super().__init__(handler=GetPostHandler, ipv6=False)
        self.url = f"http://127.0.0.1:{self.port}"

    def allow(self, key_id, secret_key, token=None):
        with self.lock:
            self.keys[key_id] = (secret_key, token)

    def handle(self, request):
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        with self.lock:
            keys = dict(self.keys)
        key_id, error = verify_sigv4(request.command, request.path, request.headers.items(), body, keys)
        try:
            secret_id = json.loads(body).get("SecretId")
        except (ValueError, AttributeError):
            secret_id = None
        record = {"t": time.monotonic(), "target": request.headers.get("X-Amz-Target", ""), "secretId": secret_id,
                  "key": key_id, "error": error, "status": 400}
        if error:
            kind = "UnrecognizedClientException" if "Unrecognized" in error or "MissingAuth" in error else "InvalidSignatureException"
            request.reply(400, json.dumps({"__type": kind, "message": error}).encode(), "application/x-amz-json-1.1")
        else:
            try:
                upstream = http.client.HTTPConnection("127.0.0.1", self.moto_port, timeout=20)
                upstream.request(request.command, request.path, body=body,
                                 headers={n: v for n, v in request.headers.items() if n.lower() not in self.HOP_BY_HOP})
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                record["status"] = answer.status
                request.reply(answer.status, data, answer.getheader("Content-Type", "application/x-amz-json-1.1"),
                              [(n, v) for n, v in answer.getheaders() if n.lower() not in self.HOP_BY_HOP | {"content-type"}])
            except OSError as failure:
                record["status"] = 502
                request.reply(502, json.dumps({"message": f"moto: {failure!r}"}).encode())
        with self.lock:
            self.requests.append(record)

    def fetches(self, since=0.0, secret_id=None):
        """The GetSecretValue requests since `since` (monotonic), for `secret_id` when given."""
        with self.lock:
            return [r for r in self.requests if r["t"] >= since and r["target"].endswith("GetSecretValue")
                    and (secret_id is None or r["secretId"] == secret_id)]


class CredentialsEndpoint(Endpoint):
    """A container credentials endpoint (the ECS agent, the EKS Pod Identity agent): GET /creds
    with `Authorization: <an accepted token>` answers new credentials (a new key each call,
    handed to the proxy) expiring in `lifetime` seconds; any other Authorization gets 401.
    Records every call. On 127.0.0.1 it also listens on ::1 when it can (localhost may be either)."""

    def __init__(self, lab, tokens, host="127.0.0.1", tls=None, lifetime=303):
        self.lab = lab
        self.accepted = set(tokens)
        self.lifetime = lifetime
        self.calls = []
        self.issued = {}
        super().__init__(host, tls, GetPostHandler)

    def handle(self, request):
        authorization = request.headers.get("Authorization")
        with self.lock:
            accepted = authorization in self.accepted
            number = len(self.issued) + 1
        call = {"t": time.monotonic(), "path": request.path, "authorization": authorization, "status": 200, "key": None}
        if request.path != "/creds":
            call["status"] = 404
            request.reply(404, b'{"message":"not found"}')
        elif not accepted:
            call["status"] = 401
            request.reply(401, b'{"message":"Authorization header is missing or invalid"}')
        else:
            key_id = f"ASIADRILL{number:03d}{secrets.token_hex(4).upper()}"
            secret_key = self.lab.secrets.new(f"container secret key {number}")
            token = self.lab.secrets.new(f"container session token {number}")
            self.lab.proxy.allow(key_id, secret_key, token)
            expiration = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=self.lifetime)
            call["key"] = key_id
            with self.lock:
                self.issued[key_id] = number
            # Extra members, as the real endpoints send: the service must ignore them.
            request.reply(200, json.dumps({
                "RoleArn": "arn:aws:iam::123456789012:role/todo-api-drill", "AccessKeyId": key_id,
                "SecretAccessKey": secret_key, "Token": token,
                "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ")}).encode())
        with self.lock:
            self.calls.append(call)

    def calls_since(self, since):
        with self.lock:
            return [c for c in self.calls if c["t"] >= since]


# ---------------------------------------------------------------------------------------------
# The service


class Service(drill_support.Service):
    """One `todo-api serve --migrate` (drill_support.Service, no metrics port), its tail redacted."""

    def tail(self, lines=15):
        return self.lab.secrets.redact(super().tail(lines))

    def lines(self, message, **fields):
        return [e for e in self.log(message) if e.get("message") == message and all(str(e.get(k)) == str(v) for k, v in fields.items())]

    def ready(self, timeout=40):
        """(True, "") once /health answers 200 and a POST /todos 201 (the database in use), else
        (False, why)."""
        return self.wait_ready([(lambda: request(self.port, "GET", "/health", None, timeout=5)[0], 200),
                                (lambda: request(self.port, "POST", "/todos", b'{"title":"ready?"}', timeout=5)[0], 201)],
                               timeout)


def request(port, method, path, body=None, timeout=10, connection=None):
    """One exchange; (status, body). On a connection of its own unless `connection` is given."""
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"User-Agent": "credential-drill"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        if connection is None:
            conn.close()


class Load:
    """Clients on keep-alive connections (http.client), each a loop of POST /todos then GET
    /todos/{id}. Every exchange is recorded as (start, end, what, status or the client's error)."""

    def __init__(self, port, clients, pause=0.01):
        self.port = port
        self.pause = pause
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.records = []
        self.threads = [threading.Thread(target=self.client, args=(n,), daemon=True) for n in range(clients)]
        for thread in self.threads:
            thread.start()

    def client(self, number):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        todo = None
        iteration = 0
        while not self.done.is_set():
            iteration += 1
            if todo is None or iteration % 2:
                what, method, path, body = "post", "POST", "/todos", json.dumps({"title": f"drill {number}/{iteration}"}).encode()
            else:
                what, method, path, body = "get", "GET", f"/todos/{todo}", None
            start = time.monotonic()
            try:
                status, data = request(self.port, method, path, body, connection=conn)
                if status == 201:
                    todo = json.loads(data)["todo"]["id"]
                outcome = status
            except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
                outcome = repr(error)
                conn.close()
            with self.lock:
                self.records.append((start, time.monotonic(), what, outcome))
            time.sleep(self.pause if outcome in (200, 201) else 0.05)
        conn.close()

    def stop(self):
        self.done.set()
        for thread in self.threads:
            thread.join(timeout=30)
        with self.lock:
            return sorted(self.records)


def sequential(port, seconds):
    """POST then GET on one keep-alive connection for `seconds`: the records, as Load's."""
    load = Load(port, clients=1)
    time.sleep(seconds)
    return load.stop()


def succeeded(outcome):
    return isinstance(outcome, int) and 200 <= outcome < 300


def summary(records):
    counts = Counter(r[3] if isinstance(r[3], int) else r[3].split("(")[0] for r in records)
    return ", ".join(f"{k} x{v}" for k, v in sorted(counts.items(), key=str)) or "none"


# ---------------------------------------------------------------------------------------------


class Lab:
    """What the drills share: the binary, PostgreSQL, Secrets Manager (moto and the signing
    proxy), the secrets made, a temporary directory, and the service's environment."""

    def __init__(self, binary, admin_url, url_prefix, workdir):
        self.binary = binary
        self.workdir = workdir
        self.secrets = Secrets()
        self.pg = Postgres(admin_url, url_prefix, self.secrets.redact)
        self.moto = None
        self.proxy = None
        self.extra_outputs = []
        # Environment credentials for the service: a key with a session token (drill 2), without (3).
        self.key_id = "AKIADRILL" + secrets.token_hex(6).upper()
        self.secret_key = self.secrets.new("environment secret access key")
        self.session_token = self.secrets.new("environment session token")

    def env(self, **settings):
        """The service's environment: this process's without any database, AWS or CA setting it
        may have, the drills' defaults, then `settings` (None removes one)."""
        return drill_support.service_env(("AWS_", "PG", "DB_", "DATABASE_", "SSL_CERT_"),
                                         dict(RATE_LIMIT="off", LOG_LEVEL="info", LOG_FORMAT="json", METRICS_PORT="0"),
                                         settings)

    def env_credentials(self, session_token=True):
        credentials = {"AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        if session_token:
            credentials["AWS_SESSION_TOKEN"] = self.session_token
        return credentials


def setup(lab):
    """The drills' database and roles, migrated by the binary's `migrate` with a plain URL (so a
    drill does not depend on another's start); moto, the proxy, and the proxy's self-check."""
    owner_password = lab.secrets.new("setup password", PASSWORD_TAIL)
    lab.pg.setup(owner_password, lab.secrets.new("setup password of the alternate user"))
    url = (f"postgresql://{OWNER}:{urllib.parse.quote(owner_password, safe='')}@{lab.pg.host}:{lab.pg.port}/"
           f"{DATABASE}?sslmode=disable")
    migrated = drill_support.migrate(lab.binary, lab.env(DATABASE_URL=url), lab.secrets.redact)
    lab.extra_outputs.append(("migrate at setup", (migrated.stdout + migrated.stderr).decode("utf-8", "replace")))
    lab.moto = Moto(lab.workdir, lab.pg)
    lab.proxy = SigningProxy(lab.moto.port)
    lab.proxy.allow(lab.key_id, lab.secret_key, lab.session_token)
    lab.proxy.allow(lab.key_id + "N", lab.secret_key)  # the same key without a session token (drill 3)

    # The proxy is what makes moto check signatures: it must accept botocore's and refuse others.
    name = "todo-api/db-drill-self-check"
    lab.moto.put(name, OWNER, lab.secrets.new("self-check password"))
    accepted = aws_client(lab.proxy.url, lab.key_id, lab.secret_key, lab.session_token).get_secret_value(SecretId=name)
    refusals = []
    for key_id, secret_key, token in [(lab.key_id, "not-the-key", lab.session_token), (lab.key_id, lab.secret_key, None),
                                      ("AKIADRILLUNKNOWN", lab.secret_key, None)]:
        try:
            aws_client(lab.proxy.url, key_id, secret_key, token).get_secret_value(SecretId=name)
            refusals.append("accepted")
        except ClientError as error:
            refusals.append(error.response["Error"]["Code"])
    check("the Secrets Manager proxy checks SigV4 as AWS does: botocore's request accepted; a wrong secret key, "
          "a missing session token, an unknown key refused", "SecretString" in accepted and "accepted" not in refusals, refusals)


# ---------------------------------------------------------------------------------------------
def iam_without_tls_drill(lab):
    env = lab.env(DATABASE_URL="postgresql://u@127.0.0.1:1/db?sslmode=disable", DB_IAM_AUTH="true",
                  AWS_REGION=REGION, **lab.env_credentials())
    status, text = drill_support.serve_until_exit(lab.binary, env, 30)
    lab.extra_outputs.append(("IAM without TLS", text))
    check("IAM auth without TLS: DB_IAM_AUTH=true with sslmode=disable is refused at start (exit 2, the message names DB_IAM_AUTH)",
          status == 2 and "DB_IAM_AUTH" in text, (status, lab.secrets.redact(text[-1500:])))


# ---------------------------------------------------------------------------------------------
def rotation_under_load_drill(lab):
    name = "todo-api/db-drill"
    password_a = lab.secrets.new("password A", PASSWORD_TAIL)
    password_b = lab.secrets.new("password B", PASSWORD_TAIL)
    lab.pg.set_password(OWNER, password_a)
    # The secret's host, port and database point elsewhere: DATABASE_URL's must win.
    lab.moto.put(name, OWNER, password_a, host="db.rotating.invalid", port=1, dbname="not_this_one")
    env = lab.env(DATABASE_URL=f"postgresql://{lab.pg.host}:{lab.pg.port}/{DATABASE}?sslmode=disable",
                  DB_SECRET_ID=name, AWS_ENDPOINT_URL=lab.proxy.url, AWS_REGION=REGION, DB_POOL_MIN="2",
                  **lab.env_credentials())
    service = Service(lab, "rotation", env)
    try:
        ok, detail = service.ready()
        check("rotation: the service starts with the secret's user and password (DB_SECRET_ID by name; "
              "DATABASE_URL's host, port and database over the secret's)", ok, detail)
        if not ok:
            return
        pid = service.proc.pid
        load = Load(service.port, clients=8)
        try:
            # A refresh on 28P01 runs at most once per 10 s: rotating 10.5 s after the start's fetch
            # keeps that rule from delaying the refresh this drill times.
            fetched = [f["t"] for f in lab.proxy.fetches(service.started, name)]
            time.sleep(min(15.0, max(2.0, (max(fetched) if fetched else time.monotonic()) + 10.5 - time.monotonic())))
            rotated_at = time.monotonic()
            version, _ = lab.moto.put(name, OWNER, password_b, host="db.rotating.invalid", port=1, dbname="not_this_one")
            killed = lab.pg.rotate(OWNER, password_b)
            killed_at = time.monotonic()
            time.sleep(13)
        finally:
            records = load.stop()

        before = [r for r in records if r[1] < rotated_at]
        odd = [r for r in records if not (succeeded(r[3]) or r[3] == 503)]
        check(f"rotation under load: {len(records)} requests ({summary(records)}), {killed} sessions killed: only 2xx "
              f"and 503, no client error, all 2xx before the rotation",
              before and not odd and all(succeeded(r[3]) for r in before),
              (odd[:5], summary(before)))
        last_503 = max((r[1] for r in records if r[3] == 503), default=None)
        after = f"+{last_503 - killed_at:.1f} s" if last_503 is not None else "none"
        check(f"rotation: the last 503 within 10 s of the kill ({after})", last_503 is None or last_503 <= killed_at + 10, after)
        late = [r for r in records if r[0] >= killed_at + 10]
        check(f"rotation: recovered: every request from the kill + 10 s on succeeded ({summary(late)})",
              late and all(succeeded(r[3]) for r in late), summary(late))
        refreshed = service.lines("database credentials refreshed", reason="rejected")
        good = [e for e in refreshed if e.get("level") == "INFO" and e.get("component") == "credentials"
                and e.get("user") == OWNER and e.get("versionId") == version and name in str(e.get("secretId"))
                and "password" not in e]
        check("rotation: logged `database credentials refreshed` (INFO, component credentials, reason rejected, "
              "secretId, the new versionId, user; no password field)", good, refreshed or "no such line")
        fetches = lab.proxy.fetches(service.started, name)
        check(f"rotation: every GetSecretValue ({len(fetches)}: at start, after the kill) signed with the environment's "
              "key and session token", len(fetches) >= 2 and any(f["t"] > killed_at for f in fetches)
              and all(f["error"] is None and f["key"] == lab.key_id and f["status"] == 200 for f in fetches), fetches)
        try:
            health = request(service.port, "GET", "/health")[0]
        except (OSError, http.client.HTTPException) as error:
            health = repr(error)
        check(f"rotation: the same process served throughout (pid {pid} running, /health {health})",
              service.proc.poll() is None and service.proc.pid == pid and health == 200, service.proc.returncode)
        leaked = lab.secrets.leaks(service.output())
        check("rotation: no password (A, B), secret key or session token in the service's output", not leaked, leaked)
    finally:
        service.stop()


# ---------------------------------------------------------------------------------------------
def scheduled_refresh_drill(lab):
    name = "todo-api/db-drill-schedule"
    before_password = lab.secrets.new("password before the schedule", PASSWORD_TAIL)
    alternate_password = lab.secrets.new("password of the alternate user", PASSWORD_TAIL)
    lab.pg.set_password(OWNER, before_password)
    lab.pg.set_password(ALTERNATE, alternate_password)
    lab.moto.put(name, OWNER, before_password)
    # No DATABASE_URL: host, port and database from the secret too (sslmode by libpq's variable).
    # The service-specific endpoint variable wins over AWS_ENDPOINT_URL, which leads nowhere.
    env = lab.env(DB_SECRET_ID=name, DB_SECRET_REFRESH="2s", AWS_ENDPOINT_URL_SECRETS_MANAGER=lab.proxy.url,
                  AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}", AWS_REGION=REGION, PGSSLMODE="disable",
                  DB_POOL_MIN="2", AWS_ACCESS_KEY_ID=lab.key_id + "N", AWS_SECRET_ACCESS_KEY=lab.secret_key)
    service = Service(lab, "schedule", env)
    try:
        ok, detail = service.ready()
        check("schedule: starts with everything from the secret (no DATABASE_URL), AWS_ENDPOINT_URL_SECRETS_MANAGER "
              "over AWS_ENDPOINT_URL, a key without session token", ok, detail)
        if not ok:
            return
        load = Load(service.port, clients=2, pause=0.02)
        try:
            time.sleep(1)
            changed_at = time.monotonic()
            version, _ = lab.moto.put(name, ALTERNATE, alternate_password)  # both users can log in now
            line = wait_until(lambda: service.lines("database credentials refreshed", reason="schedule",
                                                    user=ALTERNATE, versionId=version), 10)
            seen = time.monotonic() - changed_at
            time.sleep(0.5)
        finally:
            during = load.stop()
        check(f"schedule: DB_SECRET_REFRESH=2s picks up the new version by itself (logged reason schedule, "
              f"user {ALTERNATE}, {seen:.1f} s after the change; within 2 s + 3 s)",
              line and seen <= 5 and line[0].get("component") == "credentials", service.lines("database credentials refreshed"))
        check(f"schedule: every request around the scheduled refresh succeeded ({summary(during)})",
              during and all(succeeded(r[3]) for r in during), summary(during))
        # The first user's credentials stop working and its sessions end while no request is in
        # flight; new sessions must log in with what the schedule fetched.
        killed = lab.pg.rotate(OWNER, lab.secrets.new("password nobody was told", PASSWORD_TAIL))
        time.sleep(1)
        after = sequential(service.port, 3)
        check(f"schedule: no 503 once the old user's {killed} sessions were killed ({summary(after)})",
              after and all(succeeded(r[3]) for r in after), summary(after))
        rejected = service.lines("database credentials refreshed", reason="rejected")
        check("schedule: no refresh on rejection was needed", not rejected, rejected)
        users = lab.pg.session_users()
        check(f"schedule: the service's sessions are all {ALTERNATE}'s ({users})", users and set(users) == {ALTERNATE}, users)
    finally:
        service.stop()


# ---------------------------------------------------------------------------------------------
def container_env(lab, uri, secret_arn, **settings):
    return lab.env(AWS_CONTAINER_CREDENTIALS_FULL_URI=uri, DB_SECRET_ID=secret_arn, DB_SECRET_REFRESH="2s",
                   AWS_ENDPOINT_URL=lab.proxy.url, AWS_REGION=REGION, PGSSLMODE="disable", **settings)


def container_run(lab, label, endpoint, uri, secret_arn, token_file_rotation=None, **settings):
    """A service on container credentials: it starts, its secret fetch is signed with the
    endpoint's key; the key is refreshed ahead of its expiry and later fetches use the new one.
    `token_file_rotation` (path, old, new): once the service is up, the token file is replaced
    and the endpoint accepts only the new token."""
    service = Service(lab, label, container_env(lab, uri, secret_arn, **settings))
    try:
        ok, detail = service.ready()
        signed = [f for f in lab.proxy.fetches(service.started) if f["key"] in endpoint.issued and f["error"] is None]
        calls = endpoint.calls_since(service.started)
        check(f"{label}: starts and serves /todos; the secret fetched under the endpoint's credentials "
              "(signature and session token verified)", ok and signed and calls, detail or (calls, lab.proxy.fetches(service.started)))
        if not (ok and calls):
            return
        if token_file_rotation:
            path, old, new = token_file_rotation
            with endpoint.lock:
                endpoint.accepted.add(new)
            replace_file(path, new)  # as the kubelet does: a new file renamed over the old
            with endpoint.lock:
                endpoint.accepted.discard(old)
            switched_at = time.monotonic()
        first = calls[0]["t"]
        second = wait_until(lambda: [c for c in endpoint.calls_since(service.started) if c["status"] == 200][1:], 15)
        calls = endpoint.calls_since(service.started)
        after = f"{second[0]['t'] - first:.1f} s" if second else "never"
        check(f"{label}: the credentials (5 min + 3 s) are refreshed ahead of their expiry (the next call after {after}), "
              "every call with the right Authorization", second and second[0]["t"] - first <= 15
              and all(c["status"] == 200 for c in calls),
              [(round(c["t"] - first, 1), c["status"], lab.secrets.redact(str(c["authorization"]))) for c in calls])
        if token_file_rotation:
            reread = wait_until(lambda: [c for c in endpoint.calls_since(switched_at) if c["status"] == 200], 15)
            since = endpoint.calls_since(switched_at)
            check(f"{label}: the token file is read again at each fetch (the refresh after it was replaced sent the new token)",
                  reread and all(c["status"] == 200 and c["authorization"] == new for c in since),
                  [(c["status"], lab.secrets.redact(str(c["authorization"]))) for c in since])
        line = wait_until(lambda: service.lines("aws credentials refreshed", source="container"), 10)
        check(f"{label}: logged `aws credentials refreshed` (INFO, component credentials, source container, expiration)",
              line and line[0].get("level") == "INFO" and line[0].get("component") == "credentials" and line[0].get("expiration"),
              line or service.tail())
        later = wait_until(lambda: [f for f in lab.proxy.fetches(service.started)
                                    if endpoint.issued.get(f["key"], 0) >= 2 and f["error"] is None], 10)
        check(f"{label}: later secret fetches (DB_SECRET_REFRESH=2s) are signed with the refreshed credentials", later,
              [(f["key"], f["error"]) for f in lab.proxy.fetches(service.started)])
    finally:
        service.stop()


def refused_run(lab, label, endpoint, uri, secret_arn, expect_exit=1, expect_handshake=False, log_pattern=None, **settings):
    """A service whose credentials endpoint must not be used: it exits at start and the
    endpoint never gets a request (the token never leaves)."""
    calls_before, connections_before = len(endpoint.calls), endpoint.connections
    service = Service(lab, label, container_env(lab, uri, secret_arn, **settings))
    try:
        status = service.wait_exit(45)
        fetched = lab.proxy.fetches(service.started)
        check(f"{label}: refused: exit {expect_exit} at start, no secret fetched", status == expect_exit and not fetched,
              (status if status is not None else "still running after 45 s", fetched, service.tail()))
        requests = endpoint.calls[calls_before:]
        connections = endpoint.connections - connections_before
        if expect_handshake:
            check(f"{label}: the token never left: {connections} TLS connection(s) ended in the handshake, no request",
                  connections > 0 and not requests, (connections, len(requests), endpoint.errors[-3:]))
        else:
            check(f"{label}: the token never left: no connection to the endpoint", connections == 0 and not requests,
                  (connections, len(requests)))
        if log_pattern:
            check(f"{label}: the log names the failed check", re.search(log_pattern, service.output(), re.I | re.M), service.tail())
    finally:
        service.stop()


def non_loopback_ipv4():
    """This host's address on its default route, unless loopback or link-local (where plain HTTP is allowed)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # UDP: nothing is sent
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith(("127.", "169.254.", "0.")) else address


def container_secret(lab):
    """The container drills' secret (everything in it, by ARN): the alternate user, its password set now."""
    password = lab.secrets.new("container drills' password", PASSWORD_TAIL)
    lab.pg.set_password(ALTERNATE, password)
    return lab.moto.put("todo-api/db-drill-container", ALTERNATE, password)[1]


def container_credentials_drill(lab):
    arn = container_secret(lab)
    token = lab.secrets.new("container authorization token")
    endpoint = CredentialsEndpoint(lab, {token})
    try:
        container_run(lab, "container http (token)", endpoint, f"http://127.0.0.1:{endpoint.port}/creds", arn,
                      AWS_CONTAINER_AUTHORIZATION_TOKEN=token)
    finally:
        endpoint.close()

    # The ECS agent's own endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) takes no Authorization.
    endpoint = CredentialsEndpoint(lab, {None})
    try:
        container_run(lab, "container http (no token, as the ECS agent serves them)", endpoint,
                      f"http://127.0.0.1:{endpoint.port}/creds", arn)
    finally:
        endpoint.close()

    first, rotated = lab.secrets.new("token file, first"), lab.secrets.new("token file, rotated")
    path = os.path.join(lab.workdir, "eks-pod-identity-token")
    replace_file(path, first)
    endpoint = CredentialsEndpoint(lab, {first})
    try:
        container_run(lab, "container http (token file)", endpoint, f"http://127.0.0.1:{endpoint.port}/creds", arn,
                      token_file_rotation=(path, first, rotated), AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=path)
    finally:
        endpoint.close()

    address = non_loopback_ipv4()
    if address is None:
        print("     (no non-loopback IPv4 address here: plain HTTP to a remote endpoint not drilled)")
        return
    token = lab.secrets.new("container authorization token (remote)")
    endpoint = CredentialsEndpoint(lab, {token}, host=address)
    try:
        refused_run(lab, f"container http to {address} (neither loopback nor link-local)", endpoint,
                    f"http://{address}:{endpoint.port}/creds", arn, expect_exit=2,
                    log_pattern=r"AWS_CONTAINER_CREDENTIALS_FULL_URI", AWS_CONTAINER_AUTHORIZATION_TOKEN=token)
    finally:
        endpoint.close()


# ---------------------------------------------------------------------------------------------
def container_credentials_tls_drill(lab):
    arn = container_secret(lab)
    tls = drill_support.make_tls(os.path.join(lab.workdir, "tls"), "todo-api credential drill CA")
    context = drill_support.server_context(tls)
    token = lab.secrets.new("container authorization token (TLS)")
    endpoint = CredentialsEndpoint(lab, {token}, tls=context)
    try:
        service = Service(lab, "container https", container_env(
            lab, f"https://localhost:{endpoint.port}/creds", arn, AWS_CONTAINER_AUTHORIZATION_TOKEN=token,
            SSL_CERT_FILE=tls["ca.pem"]))
        try:
            ok, detail = service.ready()
            calls = endpoint.calls_since(service.started)
            signed = [f for f in lab.proxy.fetches(service.started) if f["key"] in endpoint.issued and f["error"] is None]
            check("container https://localhost, the test CA in SSL_CERT_FILE: starts and serves /todos; the endpoint "
                  "called with the token, the secret fetched under its credentials",
                  ok and calls and all(c["status"] == 200 for c in calls) and signed,
                  detail or ([c["status"] for c in calls], lab.proxy.fetches(service.started)))
        finally:
            service.stop()
        # One line names the certificate and why it was refused.
        refused_run(lab, "container https://127.0.0.1 (not the certificate's name)", endpoint,
                    f"https://127.0.0.1:{endpoint.port}/creds", arn, expect_handshake=True,
                    log_pattern=r"(?=.*certificat)(?=.*(mismatch|host ?name))",
                    AWS_CONTAINER_AUTHORIZATION_TOKEN=token, SSL_CERT_FILE=tls["ca.pem"])
        refused_run(lab, "container https://localhost, SSL_CERT_FILE another CA of the same name", endpoint,
                    f"https://localhost:{endpoint.port}/creds", arn, expect_handshake=True,
                    log_pattern=r"(?=.*certificat)(?=.*(issuer|unknown ca|untrusted|verif))",
                    AWS_CONTAINER_AUTHORIZATION_TOKEN=token, SSL_CERT_FILE=tls["impostor.pem"])
    finally:
        endpoint.close()


# ---------------------------------------------------------------------------------------------
def no_secrets_in_output_drill(lab):
    drill_support.check_no_leaks(check, lab.extra_outputs, lab.secrets.leaks, "secret", f"{len(lab.secrets.cores)} "
                                 "passwords, secret keys, session tokens and authorization tokens")


def main():
    binary, admin_url, url_prefix = drill_support.arguments(__doc__.split("\n\n")[1])
    # Nothing of the host's AWS configuration may reach botocore here (nor the services: Lab.env).
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[key]
    workdir = tempfile.mkdtemp(prefix="credential-drills.")
    lab = Lab(binary, admin_url, url_prefix, workdir)
    try:
        iam_without_tls_drill(lab)
        drill_support.run_drills(check, lab, setup, "setup: database, roles, migrations, moto and the signing proxy",
                                 [rotation_under_load_drill, scheduled_refresh_drill, container_credentials_drill,
                                  container_credentials_tls_drill], no_secrets_in_output_drill, lab.secrets.redact)
    finally:
        kill_processes()
        if lab.proxy:
            lab.proxy.close()
        if lab.moto:
            lab.moto.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    drill_support.finish("credential-drills", check)


if __name__ == "__main__":
    main()
