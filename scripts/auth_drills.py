#!/usr/bin/env python3
"""Authentication drills against the real binary over real sockets and a real PostgreSQL: bearer
tokens (AUTH=jwt) with keys from a file, inline JSON and an HTTPS URL, the ALB's OIDC header
(AUTH=alb), and per-owner isolation of the todos.

usage, under the pinned virtualenv's python (PyJWT and cryptography):
  "$(scripts/auth-venv)" scripts/auth_drills.py BINARY ADMIN_URL URL_PREFIX
    BINARY      the todo-api binary
    ADMIN_URL   a superuser URL for psql (scripts/test: "$TEST_PG_ADMIN_URL"; as root, psql runs
                as the postgres user, as fresh_database does)
    URL_PREFIX  the application's DATABASE_URL without its database (scripts/test:
                "$stable_url_prefix"); only its host and port are used
The drills make their own database `auth_drills` and role `drill_auth` (its owner), dropped and
made again at each run; PSQL overrides the psql found in the newest /usr/lib/postgresql/*/bin.
Prints one line per check and `auth-drills: N passed, M failed` at the end; exits 1 on any failure.

Every token is made here, with PyJWT and cryptography only (RSA 2048, EC P-256 and P-384 keys
generated at each run), never with the service's code; a self-check verifies with PyJWT that the
tokens meant to be accepted are valid and the others are not, so a disagreement is the service's.
Every token minted is searched for in every output of every run. A run takes about 2.5 minutes,
most of it waiting: PostgreSQL's statistics (2 x 11 s) and the 30 s between key fetches (2 x).

The drills, and what each reproduces:
 1. Configuration mistakes: AUTH=jwt without AUTH_ISSUER, without AUTH_AUDIENCE, without any of
    AUTH_JWKS_FILE/AUTH_JWKS/AUTH_JWKS_URL; AUTH_JWKS_URL over http:// (nothing connects to it);
    AUTH=alb without AUTH_ALB_ARN; unknown AUTH, AUTH_TOKEN_USE, AUTH_LEEWAY values; AUTH_JWKS
    that is not JSON. Each: exit 2 at start, naming the setting.
 2. AUTH=off (the default) behaves as before: a WARN line naming AUTH=off at start; create, get,
    list, patch, put, delete with no token (an Authorization header is ignored). It leaves one
    todo without an owner in the database, for drill 3.
 3. AUTH=jwt, keys in AUTH_JWKS_FILE: /health, /health/ready and /openapi.yaml need no token;
    RS256/RS384/RS512/PS256/ES256/ES384 tokens accepted (the access line names the owner); the
    refusal matrix (expired, not yet valid, wrong issuer, wrong audience, `alg: none`, HS256 keyed
    with the RSA public key's PEM, algorithms outside the list or not fitting the key, unknown kid,
    tampered payload, tampered signature, unknown `crit`, over 8 KiB, no `sub`, no `exp`, no
    Authorization, Basic, garbage): each a 401 problem+json with the right WWW-Authenticate, one
    WARN security event with its reason and request id, the token never echoed. Owners: each
    sees and changes only its own todos (another owner's id is a 404 identical to a missing id's,
    for GET/PUT/PATCH/DELETE), lists and every page of them hold only the caller's, an
    Idempotency-Key is per owner, the AUTH=off row is invisible. 200 refused requests do not reach
    the database (pg_stat_database's transactions over the burst against an idle interval of the
    same length). The JWKS file gains a key while the service runs: its token, refused before
    (unknown_key), is accepted within 40 s (the file is read again on an unknown kid, at most once
    per 30 s). /metrics' auth_failures_total equals the security events, reason by reason.
 4. AUTH=jwt, keys from AUTH_JWKS_URL over HTTPS (a test CA in SSL_CERT_FILE), Cognito-style:
    AUTH_TOKEN_USE=access matches AUTH_AUDIENCE against client_id (no aud); an ID token is refused
    (wrong_token_use); AUTH_LEEWAY=5s is honoured. A burst of unknown kids does not make the
    service fetch the keys more than once per 30 s; the served JWKS gains a key and its token,
    refused before, is accepted within 40 s; no two fetches less than 30 s apart. With a CA file
    holding another CA of the same name the served keys are never used and no request reaches
    the server.
 5. AUTH_JWKS inline and AUTH_OWNER_CLAIM: the owner is that claim, not `sub`.
 6. AUTH=alb: the ALB's ES256 token with padded base64url segments in x-amzn-oidc-data, keys from
    AUTH_ALB_KEYS_DIR: accepted from a trusted peer (owner = sub, not x-amzn-oidc-identity);
    another signer (wrong_signer), expired, tampered, unknown kid, a kid naming a file outside the
    directory: refused. With TRUSTED_PROXIES=none the same token is refused (untrusted_proxy).
    With AUTH_ALB_KEYS_URL the key is fetched over HTTPS from URL/<kid>.
 7. No token in any output of any run.
"""
import base64
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
import traceback
import urllib.parse
import uuid

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from jwt.algorithms import ECAlgorithm, HMACAlgorithm, RSAAlgorithm
from jwt.utils import base64url_decode, base64url_encode

import drill_support
from checks import Checks
from drill_support import Endpoint, kill_processes, replace_file, wait_until

check = Checks()

DATABASE = "auth_drills"
ROLE = "drill_auth"
REGION = "us-east-1"
ISSUER = "https://issuer.auth-drill.test/tenant-1"
AUDIENCES = ("todo-api-drill", "todo-api-drill-second")
# Cognito-shaped tokens (token_use, client_id) from an issuer that is not Cognito's, so that no
# default JWKS URL can come into play: AUTH_JWKS_URL says where the keys are.
COGNITO_ISSUER = "https://idp.auth-drill.test/us-east-1_AuthDrill"
CLIENT_ID = "4authdrillclient0123456789"
ALB_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/todo-api-drill/50dc6c495c0c9188"
OTHER_ALB_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/someone-else/0f1e2d3c4b5a6978"
ALB_ISSUER = "https://idp.auth-drill.test/alb"
REASONS = ("missing", "malformed", "expired", "not_yet_valid", "bad_signature", "unknown_key", "wrong_issuer",
           "wrong_audience", "wrong_token_use", "algorithm_not_allowed", "missing_claim", "untrusted_proxy", "wrong_signer")
CHALLENGE = re.compile(r'Bearer error="invalid_token", error_description="[^"\\]*(\\.[^"\\]*)*"')
DROP = object()  # a claim value that removes the claim


# ---------------------------------------------------------------------------------------------
# Keys and tokens: PyJWT and cryptography only


class SigningKey:
    """A key pair made here, its kid, and its public JWK as an identity provider publishes it
    (kty, kid, use, the key's numbers, `alg` when the key is pinned to one)."""

    def __init__(self, kind, kid, alg=None):
        self.kind, self.kid, self.alg = kind, kid, alg
        if kind == "RSA":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            self.private = ec.generate_private_key({"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}[kind])

    def jwk(self):
        jwk = (RSAAlgorithm if self.kind == "RSA" else ECAlgorithm).to_jwk(self.private.public_key(), as_dict=True)
        jwk.pop("key_ops", None)
        jwk.update(kid=self.kid, use="sig")
        if self.alg:
            jwk["alg"] = self.alg
        return jwk

    def public_pem(self):
        return self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)


def jwks(*keys):
    return {"keys": [key.jwk() for key in keys]}


def segments(token):
    return token.split(".")


def padded_b64(data):
    """base64url WITH `=` padding, as the ALB writes its segments."""
    return base64.urlsafe_b64encode(data).decode()


class Tokens:
    """Mints every token of the drills and remembers each, for the search of the outputs."""

    def __init__(self):
        self.minted = []

    def keep(self, token):
        self.minted.append(token)
        return token

    @staticmethod
    def claims(owner, lifetime=600, **changes):
        """Claims of a token for `owner` (sub) valid for `lifetime` seconds from now; `changes`
        override or (DROP) remove."""
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": owner, "aud": AUDIENCES[0], "iat": now, "exp": now + lifetime,
                  "jti": secrets.token_hex(16), **changes}
        return {name: value for name, value in claims.items() if value is not DROP}

    @staticmethod
    def cognito_access_claims(owner, **changes):
        """What a Cognito user pool's access token carries: client_id and token_use, no aud."""
        now = int(time.time())
        claims = {"sub": owner, "iss": COGNITO_ISSUER, "client_id": CLIENT_ID, "origin_jti": str(uuid.uuid4()),
                  "event_id": str(uuid.uuid4()), "token_use": "access", "scope": "aws.cognito.signin.user.admin",
                  "auth_time": now, "exp": now + 600, "iat": now, "jti": str(uuid.uuid4()), "username": owner}
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not DROP}

    def signed(self, key, claims, alg, kid=None, **header):
        return self.keep(jwt.encode(claims, key.private, algorithm=alg, headers={"kid": kid or key.kid, **header}))

    def unsigned(self, claims, kid):
        """`alg: none` and an empty signature."""
        return self.keep(jwt.encode(claims, None, algorithm="none", headers={"kid": kid}))

    def hmac_with_public_key(self, claims, key):
        """Algorithm confusion: HS256 whose secret is the RSA public key's PEM, under that key's kid.
        (PyJWT refuses such a secret in jwt.encode; its HMAC algorithm signs with it directly.)"""
        header = base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}, separators=(",", ":")).encode())
        payload = base64url_encode(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = header + b"." + payload
        signature = HMACAlgorithm(HMACAlgorithm.SHA256).sign(signing_input, key.public_pem())
        return self.keep((signing_input + b"." + base64url_encode(signature)).decode())

    def with_payload(self, token, **changes):
        """The payload re-encoded with `changes`, header and signature kept."""
        header, payload, signature = segments(token)
        claims = json.loads(base64url_decode(payload))
        claims.update(changes)
        payload = base64url_encode(json.dumps(claims, separators=(",", ":")).encode()).decode()
        return self.keep(f"{header}.{payload}.{signature}")

    def with_flipped_signature(self, token):
        header, payload, signature = segments(token)
        raw = bytearray(base64url_decode(signature))
        raw[len(raw) // 2] ^= 0x01
        return self.keep(f"{header}.{payload}.{base64url_encode(bytes(raw)).decode()}")

    def alb(self, key, sub, signer=ALB_ARN, kid=None, lifetime=600, **claims):
        """An ALB `x-amzn-oidc-data` token: ES256, header with iss/client/signer/exp, header and
        payload JSON in base64url WITH padding (made to need some), the signature raw r||s
        (64 bytes) in padded base64url, over the segments exactly as sent."""
        exp = int(time.time()) + lifetime
        header = {"typ": "JWT", "kid": kid or key.kid, "alg": "ES256", "iss": ALB_ISSUER, "client": "alb-drill-client",
                  "signer": signer, "exp": exp}
        payload = {"sub": sub, "email": f"{sub}@auth-drill.test", "username": sub, "exp": exp, "iss": ALB_ISSUER, **claims}
        encoded = []
        for value in (header, payload):
            # A JSON length that is not a multiple of 3, so that the segment ends in padding.
            for separators in ((",", ":"), (", ", ":"), (",", ": "), (", ", ": ")):
                text = json.dumps(value, separators=separators).encode()
                if len(text) % 3:
                    break
            encoded.append(padded_b64(text))
        signing_input = f"{encoded[0]}.{encoded[1]}"
        r, s = decode_dss_signature(key.private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return self.keep(f"{signing_input}.{padded_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}")

    def leaks(self, text):
        """The tokens (by their first 16 characters) whose payload or signature segment, or the
        whole token, appears in `text`."""
        found = []
        for token in self.minted:
            pieces = [token] + [piece.rstrip("=") for piece in segments(token)[1:]]
            if any(len(piece) >= 16 and piece in text for piece in pieces):
                found.append(token[:16] + "...")
        return found


def verify_alb_token(token, public_key):
    """The ALB token's signature checked with cryptography (the drills' self-check)."""
    header, payload, signature = segments(token)
    raw = base64.urlsafe_b64decode(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public_key.verify(der, f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    return json.loads(base64.urlsafe_b64decode(header)), json.loads(base64.urlsafe_b64decode(payload))


# ---------------------------------------------------------------------------------------------
# PostgreSQL, as its superuser through psql


class Postgres(drill_support.Psql):
    """psql (drill_support.Psql) on the drills' database and role."""

    def setup(self, password):
        self.run(f"""
            DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE);
            DROP ROLE IF EXISTS {ROLE};
            CREATE ROLE {ROLE} LOGIN PASSWORD '{password}';
            CREATE DATABASE {DATABASE} OWNER {ROLE};""")

    def transactions(self):
        """Transactions ended in the drills' database so far (committed + rolled back), read from
        another database (this session's own do not count)."""
        return int(self.run(f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{DATABASE}';"))

    def todo_rows(self, where="true"):
        return int(self.run(f"SELECT count(*) FROM todos WHERE {where};", database=DATABASE))


# ---------------------------------------------------------------------------------------------
# HTTPS: a server for JWKS documents and ALB keys (drill_support's test CA)


class KeyServer(Endpoint):
    """https://localhost:PORT/...: documents set by the drills (a JWKS, PEM public keys), every
    request recorded. Listens on 127.0.0.1 and, when it can, ::1 (localhost may be either)."""

    def __init__(self, tls_files):
        self.documents = {}
        self.requests = []
        super().__init__(tls=drill_support.server_context(tls_files))
        self.base = f"https://localhost:{self.port}"

    def put(self, path, body, content_type="application/json"):
        with self.lock:
            self.documents[path] = (body if isinstance(body, bytes) else json.dumps(body).encode(), content_type)

    def handle(self, request):
        with self.lock:
            document = self.documents.get(request.path)
            self.requests.append({"t": time.monotonic(), "path": request.path})
        body, content_type = document or (b'{"message":"not found"}', "application/json")
        request.reply(200 if document else 404, body, content_type)

    def fetches(self, path, since=0.0):
        with self.lock:
            return [r["t"] for r in self.requests if r["path"] == path and r["t"] >= since]

    def since(self, since):
        with self.lock:
            return [r for r in self.requests if r["t"] >= since]


# ---------------------------------------------------------------------------------------------
# The service


class Service(drill_support.Service):
    """One `todo-api serve --migrate` (drill_support.Service) with a metrics port, in the lab's
    environment with `settings`."""

    def __init__(self, lab, name, settings):
        super().__init__(lab, name, lab.env(**settings), metrics=True)

    def entries(self, request_id, component=None):
        return [e for e in self.log(request_id) if e.get("requestId") == request_id
                and (component is None or e.get("component") == component)]

    def refusal_events(self):
        return [e for e in self.log("unauthorized_access") if e.get("event") == "unauthorized_access"]

    def ready(self, timeout=40):
        """(True, "") once /health and /health/ready answer 200, else (False, why)."""
        return self.wait_ready([(lambda path=path: call(self.port, "GET", path, timeout=5).status, 200)
                                for path in ("/health", "/health/ready")], timeout)

    def metrics(self):
        """auth_failures_total by reason (a reason the exposition lacks counts 0)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=10)
        try:
            conn.request("GET", "/metrics", headers={"User-Agent": "auth-drill"})
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        counts = {}
        for labels, value in re.findall(r"^auth_failures_total\{([^}]*)\}\s+([0-9.eE+]+)\s*$", text, re.M):
            reason = re.search(r'reason="([^"]*)"', labels)
            if reason:
                counts[reason.group(1)] = counts.get(reason.group(1), 0) + int(float(value))
        return counts


class Reply:
    def __init__(self, status, headers, body, request_id):
        self.status, self.headers, self.body, self.request_id = status, headers, body, request_id

    def header(self, name):
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return ", ".join(values) if values else None

    @property
    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def todo_id(self):
        data = self.json
        return data["todo"]["id"] if isinstance(data, dict) and isinstance(data.get("todo"), dict) else None

    def __repr__(self):
        return f"{self.status} {self.body[:300]!r}"


REQUEST_NUMBERS = iter(range(1, 1 << 30))


def call(port, method, path, body=None, authorization=None, headers=None, timeout=10, connection=None,
         content_type="application/json"):
    """One exchange with its own X-Request-ID; a Reply. On a connection of its own unless given."""
    request_id = f"auth-drill-{next(REQUEST_NUMBERS)}-{secrets.token_hex(3)}"
    sent = {"User-Agent": "auth-drill", "X-Request-ID": request_id, **(headers or {})}
    if authorization is not None:
        sent["Authorization"] = authorization
    if body is not None:
        body = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent["Content-Type"] = content_type
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        return Reply(response.status, response.getheaders(), response.read(), request_id)
    finally:
        if connection is None:
            conn.close()


def bearer(token):
    return f"Bearer {token}"


# ---------------------------------------------------------------------------------------------
# What every refusal and every acceptance must look like


def refusal_problems(service, reply, reason, credentials_sent, secret=None):
    """What is wrong with `reply` as the refusal of a request for `reason` (empty: nothing)."""
    problems = []
    if reply.status != 401:
        problems.append(f"status {reply.status} ({reply.body[:160]!r})")
    else:
        if not (reply.header("Content-Type") or "").startswith("application/problem+json"):
            problems.append(f"Content-Type {reply.header('Content-Type')}")
        body = reply.json
        if not (isinstance(body, dict) and body.get("status") == 401 and isinstance(body.get("detail"), str) and body["detail"]):
            problems.append(f"body not a problem with status 401 and a detail: {reply.body[:200]!r}")
        challenge = reply.header("WWW-Authenticate")
        if credentials_sent and not (challenge and CHALLENGE.fullmatch(challenge)):
            problems.append(f'WWW-Authenticate {challenge!r}, not Bearer error="invalid_token", error_description="..."')
        if not credentials_sent and challenge != "Bearer":
            problems.append(f"WWW-Authenticate {challenge!r}, not exactly Bearer")
    if secret:
        echoed = " ".join(f"{n}: {v}" for n, v in reply.headers) + reply.body.decode("utf-8", "replace")
        if any(len(piece) >= 16 and piece.rstrip("=") in echoed for piece in [secret] + secret.split(".")[1:]):
            problems.append("the response echoes the token")
    events = wait_until(lambda: [e for e in service.entries(reply.request_id, "security")
                                 if e.get("event") == "unauthorized_access"], 5)
    if not events or len(events) != 1:
        problems.append(f"{len(events or [])} security events unauthorized_access with this requestId, not 1")
    elif events[0].get("reason") != reason or events[0].get("level") != "WARN":
        problems.append(f"security event reason {events[0].get('reason')!r} level {events[0].get('level')!r}")
    return problems


def refused(service, label, reason, authorization=None, method="GET", path="/todos", body=None, headers=None,
            secret=None, credentials_sent=None):
    """One request that must be refused: one check line."""
    reply = call(service.port, method, path, body=body, authorization=authorization, headers=headers)
    sent = credentials_sent if credentials_sent is not None else authorization is not None
    problems = refusal_problems(service, reply, reason, sent, secret)
    check(f"{service.name}: {label} -> 401 {reason}", not problems, "; ".join(problems))
    return reply


def accepted(service, label, owner, authorization=None, method="GET", path="/todos", body=None, headers=None, expect=200):
    """One request that must be accepted for `owner`: its status, and the access line's userId."""
    reply = call(service.port, method, path, body=body, authorization=authorization, headers=headers)
    access = wait_until(lambda: service.entries(reply.request_id, "access"), 5)
    refusal = [e for e in service.entries(reply.request_id, "security") if e.get("event") == "unauthorized_access"]
    user = access[0].get("userId") if access else "no access line"
    check(f"{service.name}: {label} -> {expect}, the access line's userId is the owner",
          reply.status == expect and user == owner and not refusal,
          f"{reply.status} {reply.body[:120]!r}, userId {user!r}, {len(refusal)} refusal events")
    return reply


def comparable(reply, *ids):
    """A 404's body as another owner's and a missing id's must agree: without requestId, ids replaced."""
    body = reply.json
    if not isinstance(body, dict):
        return repr(reply.body)
    text = json.dumps({k: v for k, v in body.items() if k != "requestId"}, sort_keys=True)
    for todo_id in ids:
        text = text.replace(todo_id, "<id>")
    return f"{reply.status} {reply.header('Content-Type')} {text}"


def list_ids(service, authorization, limit=2, query=""):
    """Every id of GET /todos, page by page (nextCursor): (ids, pages) or (None, why)."""
    ids, cursor = [], None
    for pages in range(1, 60):
        path = f"/todos?limit={limit}{query}" + (f"&cursor={urllib.parse.quote(cursor, safe='')}" if cursor else "")
        reply = call(service.port, "GET", path, authorization=authorization)
        if reply.status != 200 or not isinstance(reply.json, dict):
            return None, f"{path}: {reply}"
        ids += [todo["id"] for todo in reply.json["todos"]]
        cursor = reply.json.get("nextCursor")
        if not cursor:
            return ids, pages
    return None, "more than 60 pages"


def create(service, authorization, title, headers=None):
    reply = call(service.port, "POST", "/todos", {"title": title}, authorization=authorization, headers=headers)
    return reply.todo_id() if reply.status == 201 else None, reply


def metrics_match_events(service):
    """auth_failures_total, reason by reason, equals the security events logged (no request in flight)."""
    time.sleep(0.5)
    counts = service.metrics()
    events = {}
    for event in service.refusal_events():
        events[event.get("reason")] = events.get(event.get("reason"), 0) + 1
    differ = {r: (counts.get(r, 0), events.get(r, 0)) for r in set(REASONS) | set(counts) | set(events)
              if counts.get(r, 0) != events.get(r, 0)}
    summary = ", ".join(f"{r} {n}" for r, n in sorted(events.items()))
    check(f"{service.name}: /metrics auth_failures_total equals the security events, reason by reason ({summary})",
          events and not differ, f"(metric, events) by reason: {differ}")


# ---------------------------------------------------------------------------------------------


class Lab:
    """What the drills share: the binary, PostgreSQL, the keys, the tokens, the test CA, a
    temporary directory, the service's environment."""

    def __init__(self, binary, admin_url, url_prefix, workdir):
        self.binary = binary
        self.workdir = workdir
        self.pg = Postgres(admin_url, url_prefix)
        self.tokens = Tokens()
        self.database_url = None
        self.legacy_id = None
        self.extra_outputs = []
        self.rsa = SigningKey("RSA", "drill-rsa-1")
        self.rsa_pinned = SigningKey("RSA", "drill-rsa-pinned", alg="RS256")
        self.ec256 = SigningKey("P-256", "drill-ec-256")
        self.ec384 = SigningKey("P-384", "drill-ec-384")
        self.stranger = SigningKey("RSA", "drill-not-published")
        self.tls = None

    def env(self, **settings):
        """The service's environment: this process's without any database, AWS, CA, auth or proxy
        setting it may have, the drills' defaults, then `settings` (None removes one)."""
        return drill_support.service_env(("AWS_", "PG", "DB_", "DATABASE_", "SSL_CERT_", "AUTH", "TRUSTED_PROXIES"),
                                         dict(RATE_LIMIT="off", LOG_LEVEL="info", LOG_FORMAT="json",
                                              DATABASE_URL=self.database_url or ""), settings)

    def jwt_settings(self, **settings):
        return {"AUTH": "jwt", "AUTH_ISSUER": ISSUER, "AUTH_AUDIENCE": ",".join(AUDIENCES), **settings}


def setup(lab):
    """The drills' database and role, migrated by the binary's `migrate`; the test CA."""
    password = secrets.token_hex(16)
    lab.pg.setup(password)
    lab.database_url = f"postgresql://{ROLE}:{password}@{lab.pg.host}:{lab.pg.port}/{DATABASE}?sslmode=disable"
    drill_support.migrate(lab.binary, lab.env())
    lab.tls = drill_support.make_tls(os.path.join(lab.workdir, "tls"), "todo-api auth drill CA")


def self_check(lab):
    """The tokens agree with PyJWT before they are put to the service: the ones the service must
    accept verify; the ones it must refuse fail PyJWT's verification too (where PyJWT checks the
    same thing: the size limit and the key type are the service's own rules). And the padded
    ALB token verifies with cryptography over its segments as sent."""
    t = lab.tokens
    keys = {k.kid: jwt.PyJWK(k.jwk()) for k in (lab.rsa, lab.rsa_pinned, lab.ec256, lab.ec384)}
    now = int(time.time())

    def verdict(token, alg, kid, audience=AUDIENCES):
        try:
            jwt.decode(token, keys[kid].key, algorithms=[alg], audience=list(audience), issuer=ISSUER, leeway=30,
                       options={"require": ["exp", "sub", "iss"]})
            return "valid"
        except jwt.PyJWTError as error:
            return type(error).__name__

    good = [verdict(t.signed(lab.rsa, t.claims("self"), alg), alg, lab.rsa.kid) for alg in ("RS256", "RS384", "RS512", "PS256")]
    good += [verdict(t.signed(lab.ec256, t.claims("self"), "ES256"), "ES256", lab.ec256.kid),
             verdict(t.signed(lab.ec384, t.claims("self"), "ES384"), "ES384", lab.ec384.kid),
             verdict(t.signed(lab.rsa, t.claims("self", exp=now - 10, nbf=now + 10), "RS256"), "RS256", lab.rsa.kid)]
    valid = t.signed(lab.rsa, t.claims("self"), "RS256")
    bad = {
        "expired": verdict(t.signed(lab.rsa, t.claims("self", exp=now - 300), "RS256"), "RS256", lab.rsa.kid),
        "nbf": verdict(t.signed(lab.rsa, t.claims("self", nbf=now + 300), "RS256"), "RS256", lab.rsa.kid),
        "issuer": verdict(t.signed(lab.rsa, t.claims("self", iss="https://evil.test"), "RS256"), "RS256", lab.rsa.kid),
        "audience": verdict(t.signed(lab.rsa, t.claims("self", aud="other"), "RS256"), "RS256", lab.rsa.kid),
        "none": verdict(t.unsigned(t.claims("self"), lab.rsa.kid), "RS256", lab.rsa.kid),
        "hs256": verdict(t.hmac_with_public_key(t.claims("self"), lab.rsa), "RS256", lab.rsa.kid),
        "payload": verdict(t.with_payload(valid, sub="other"), "RS256", lab.rsa.kid),
        "signature": verdict(t.with_flipped_signature(valid), "RS256", lab.rsa.kid),
        "crit": verdict(t.signed(lab.rsa, t.claims("self"), "RS256", crit=["exp2"], exp2=1), "RS256", lab.rsa.kid),
        "no sub": verdict(t.signed(lab.rsa, t.claims("self", sub=DROP), "RS256"), "RS256", lab.rsa.kid),
        "no exp": verdict(t.signed(lab.rsa, t.claims("self", exp=DROP), "RS256"), "RS256", lab.rsa.kid),
    }
    alb_token = t.alb(lab.ec256, "self")
    header, payload = verify_alb_token(alb_token, lab.ec256.private.public_key())
    padded = all(part.endswith("=") for part in segments(alb_token))
    check("self-check: PyJWT accepts the tokens meant to be valid and refuses the refusal matrix's; the ALB token "
          "(padded segments) verifies with cryptography",
          set(good) == {"valid"} and "valid" not in bad.values() and padded and header["signer"] == ALB_ARN
          and payload["sub"] == "self", (good, bad, padded, alb_token[:60]))


# ---------------------------------------------------------------------------------------------
# 1. Configuration mistakes


def config_errors_drill(lab):
    jwks_file = os.path.join(lab.workdir, "config-jwks.json")
    with open(jwks_file, "w") as f:
        json.dump(jwks(lab.rsa), f)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    http_url = f"http://localhost:{listener.getsockname()[1]}/jwks.json"
    cases = [
        ("AUTH=jwt without AUTH_ISSUER", "AUTH_ISSUER", {"AUTH": "jwt", "AUTH_AUDIENCE": AUDIENCES[0], "AUTH_JWKS_FILE": jwks_file}),
        ("AUTH=jwt without AUTH_AUDIENCE", "AUTH_AUDIENCE", {"AUTH": "jwt", "AUTH_ISSUER": ISSUER, "AUTH_JWKS_FILE": jwks_file}),
        ("AUTH=jwt, a non-Cognito issuer, no AUTH_JWKS_FILE/AUTH_JWKS/AUTH_JWKS_URL", "AUTH_JWKS(_FILE|_URL)?",
         lab.jwt_settings()),
        ("AUTH_JWKS_URL over http://", "AUTH_JWKS_URL", lab.jwt_settings(AUTH_JWKS_URL=http_url)),
        ("AUTH=alb without AUTH_ALB_ARN", "AUTH_ALB_ARN", {"AUTH": "alb", "AUTH_ALB_KEYS_DIR": lab.workdir, "AWS_REGION": REGION}),
        ("AUTH=kerberos", "AUTH", {"AUTH": "kerberos"}),
        ("AUTH_TOKEN_USE=refresh", "AUTH_TOKEN_USE", lab.jwt_settings(AUTH_JWKS_FILE=jwks_file, AUTH_TOKEN_USE="refresh")),
        ("AUTH_LEEWAY=soon", "AUTH_LEEWAY", lab.jwt_settings(AUTH_JWKS_FILE=jwks_file, AUTH_LEEWAY="soon")),
        ("AUTH_JWKS that is not JSON", "AUTH_JWKS", lab.jwt_settings(AUTH_JWKS="{keys: [")),
    ]
    try:
        for label, setting, settings in cases:
            status, text = drill_support.serve_until_exit(lab.binary, lab.env(**settings), 15)
            lab.extra_outputs.append((label, text))
            named = re.search(rf"\b{setting}\b", text)  # AUTH, not AUTH_ISSUER
            check(f"config: {label} -> exit 2 at start, the message names {setting}", status == 2 and named,
                  (status, text[-800:]))
        try:
            connection, _ = listener.accept()
            connection.close()
            connected = True
        except BlockingIOError:
            connected = False
        check("config: nothing connected to the http:// JWKS URL", not connected)
    finally:
        listener.close()


# ---------------------------------------------------------------------------------------------
# 2. AUTH=off


def auth_off_drill(lab):
    service = Service(lab, "auth off", {})
    try:
        ok, detail = service.ready()
        check("auth off: the service starts with AUTH unset", ok, detail)
        if not ok:
            return
        warning = wait_until(lambda: [e for e in service.log("AUTH=off") if e.get("level") == "WARN"
                                      and "AUTH=off" in str(e.get("message"))], 5)
        check("auth off: a WARN line at start whose message names AUTH=off", warning, service.tail())

        steps = []
        todo_id, reply = create(service, None, "auth off: flow")
        steps.append(("POST", reply.status))
        if todo_id:
            steps.append(("GET", call(service.port, "GET", f"/todos/{todo_id}").status))
            listed, _ = list_ids(service, None, limit=100)
            steps.append(("listed", listed is not None and todo_id in listed))
            patched = call(service.port, "PATCH", f"/todos/{todo_id}", {"completed": True}, content_type="application/merge-patch+json")
            steps.append(("PATCH", patched.status, (patched.json or {}).get("todo", {}).get("completed")))
            steps.append(("PUT", call(service.port, "PUT", f"/todos/{todo_id}",
                                      {"title": "auth off: replaced", "priority": "high", "completed": False}).status))
            steps.append(("DELETE", call(service.port, "DELETE", f"/todos/{todo_id}").status))
            steps.append(("GET after", call(service.port, "GET", f"/todos/{todo_id}").status))
        check("auth off: create, get, list, patch, put, delete with no token",
              steps == [("POST", 201), ("GET", 200), ("listed", True), ("PATCH", 200, True), ("PUT", 200),
                        ("DELETE", 200), ("GET after", 404)], steps)
        ignored, reply = create(service, bearer("not-a-token"), "auth off: with an Authorization header")
        check("auth off: an Authorization header is ignored (201)", ignored, reply)
        lab.legacy_id, reply = create(service, None, "auth off: a todo without an owner")
        check("auth off: a todo made for drill 3 (it has no owner)", lab.legacy_id, reply)
    finally:
        service.stop()


# ---------------------------------------------------------------------------------------------
# 3. AUTH=jwt with AUTH_JWKS_FILE: the token matrix, owners, the database, a key added


def write_jwks_file(path, *keys):
    replace_file(path, json.dumps(jwks(*keys)))


def jwt_file_drill(lab):
    path = os.path.join(lab.workdir, "jwks.json")
    write_jwks_file(path, lab.rsa, lab.rsa_pinned, lab.ec256, lab.ec384)
    service = Service(lab, "jwt file", lab.jwt_settings(AUTH_JWKS_FILE=path))
    try:
        ok, detail = service.ready()
        check("jwt file: starts with AUTH=jwt, AUTH_ISSUER, AUTH_AUDIENCE (two), AUTH_JWKS_FILE", ok, detail)
        if not ok:
            return
        owners = {"a": f"drill-owner-a-{secrets.token_hex(4)}", "b": f"drill-owner-b-{secrets.token_hex(4)}"}
        context = {"owners": owners, "path": path, "owned": {"a": [], "b": []}}
        for part in (public_paths, valid_tokens, token_matrix, owner_crud, other_owner_404, listing_isolation,
                     idempotency_per_owner, legacy_invisible, refused_never_reach_database, jwks_file_gains_key,
                     metrics_match_events):
            try:
                if part is metrics_match_events:
                    part(service)
                else:
                    part(lab, service, context)
            except Exception:
                check(f"jwt file: {part.__name__} ran to its end", False, traceback.format_exc(limit=4))
    finally:
        service.stop()


def token_for(lab, owner, key=None, alg="RS256", **claims):
    return bearer(lab.tokens.signed(key or lab.rsa, lab.tokens.claims(owner, **claims), alg))


def public_paths(lab, service, context):
    statuses = {p: call(service.port, "GET", p).status for p in ("/health", "/health/ready", "/openapi.yaml")}
    check(f"{service.name}: /health, /health/ready, /openapi.yaml need no token ({statuses})",
          set(statuses.values()) == {200}, statuses)
    mentions = [e for e in service.log("AUTH=off")]
    check(f"{service.name}: no AUTH=off warning when AUTH=jwt", not mentions, mentions[:2])


def valid_tokens(lab, service, context):
    t, a = lab.tokens, context["owners"]["a"]
    now = int(time.time())
    for alg in ("RS256", "RS384", "RS512", "PS256"):
        accepted(service, f"{alg} token", a, token_for(lab, a, alg=alg))
    accepted(service, "ES256 token (P-256)", a, token_for(lab, a, lab.ec256, "ES256"))
    accepted(service, "ES384 token (P-384)", a, token_for(lab, a, lab.ec384, "ES384"))
    accepted(service, "RS256 on a JWK pinned to RS256", a, token_for(lab, a, lab.rsa_pinned, "RS256"))
    accepted(service, "aud an array holding the audience among others", a,
             token_for(lab, a, aud=["someone-else", AUDIENCES[0], "a-third"]))
    accepted(service, "aud the second AUTH_AUDIENCE", a, token_for(lab, a, aud=AUDIENCES[1]))
    accepted(service, "exp 10 s ago (within the default 30 s leeway)", a, token_for(lab, a, exp=now - 10))
    accepted(service, "nbf and iat 10 s ahead (within the leeway)", a, token_for(lab, a, nbf=now + 10, iat=now + 10))
    accepted(service, "scheme spelt `bearer` (case-insensitive, RFC 9110)", a,
             "bearer " + t.signed(lab.rsa, t.claims(a), "RS256"))


def token_matrix(lab, service, context):
    t, a, b = lab.tokens, context["owners"]["a"], context["owners"]["b"]
    now = int(time.time())
    rsa, claims = lab.rsa, t.claims
    valid = t.signed(rsa, claims(a), "RS256")
    # Just over 8 KiB, validly signed: refused for its size alone. (The request filter's rule
    # "any header > 8 KiB" answers 403 before authentication unless it leaves Authorization to it.)
    oversized, pad = "", 5600
    while len(oversized) <= 8192:
        oversized = t.signed(rsa, claims(a, pad="p" * pad), "RS256")
        pad += 100
    cases = [
        ("expired 5 min ago", "expired", t.signed(rsa, claims(a, exp=now - 300), "RS256")),
        ("nbf 5 min ahead", "not_yet_valid", t.signed(rsa, claims(a, nbf=now + 300), "RS256")),
        ("iat 5 min ahead", "not_yet_valid", t.signed(rsa, claims(a, iat=now + 300), "RS256")),
        ("another issuer", "wrong_issuer", t.signed(rsa, claims(a, iss="https://issuer.evil.test/tenant-1"), "RS256")),
        ("the issuer with a trailing slash (exact match)", "wrong_issuer", t.signed(rsa, claims(a, iss=ISSUER + "/"), "RS256")),
        ("another audience", "wrong_audience", t.signed(rsa, claims(a, aud="someone-elses-api"), "RS256")),
        ("no aud", "wrong_audience", t.signed(rsa, claims(a, aud=DROP), "RS256")),
        ("alg none, no signature", "algorithm_not_allowed", t.unsigned(claims(a), rsa.kid)),
        ("HS256 keyed with the RSA public key's PEM (algorithm confusion)", "algorithm_not_allowed",
         t.hmac_with_public_key(claims(a), rsa)),
        ("PS384 (not in the list)", "algorithm_not_allowed", t.signed(rsa, claims(a), "PS384")),
        ("ES256 under an RSA key's kid", "algorithm_not_allowed", t.signed(lab.ec256, claims(a), "ES256", kid=rsa.kid)),
        ("RS512 on a JWK pinned to RS256", "algorithm_not_allowed", t.signed(lab.rsa_pinned, claims(a), "RS512")),
        ("unknown kid", "unknown_key", t.signed(lab.stranger, claims(a), "RS256")),
        ("payload changed (sub -> another owner), signature kept", "bad_signature", t.with_payload(valid, sub=b)),
        ("a signature byte flipped (RS256)", "bad_signature", t.with_flipped_signature(valid)),
        ("a signature byte flipped (ES256)", "bad_signature",
         t.with_flipped_signature(t.signed(lab.ec256, claims(a), "ES256"))),
        ('unknown crit ["exp2"] with exp2 present', "malformed", t.signed(rsa, claims(a), "RS256", crit=["exp2"], exp2=now)),
        (f"over 8 KiB ({len(oversized)} bytes, validly signed)", "malformed", oversized),
        ("no sub", "missing_claim", t.signed(rsa, claims(a, sub=DROP), "RS256")),
        ("no exp", "missing_claim", t.signed(rsa, claims(a, exp=DROP), "RS256")),
        ("not a JWT", "malformed", "not-a-jwt"),
    ]
    for label, reason, token in cases:
        refused(service, label, reason, bearer(token), secret=token)
    refused(service, "no Authorization header", "missing")
    refused(service, "Basic credentials", "malformed", "Basic " + base64.b64encode(b"drill:password").decode())
    expired = t.signed(rsa, claims(a, exp=now - 300), "RS256")
    before = lab.pg.todo_rows()
    refused(service, "POST /todos with an expired token", "expired", bearer(expired), method="POST",
            body={"title": "must not be stored"}, secret=expired)
    check(f"{service.name}: the refused POST stored nothing", lab.pg.todo_rows() == before)


def owner_crud(lab, service, context):
    """The owner's own create, get, put, patch, delete, with the business events' userId."""
    a = context["owners"]["a"]
    auth = token_for(lab, a)
    reply = accepted(service, "POST /todos", a, auth, "POST", "/todos", {"title": "owner a: crud"}, expect=201)
    todo_id = reply.todo_id()
    if not todo_id:
        return
    accepted(service, "GET its own todo", a, auth, "GET", f"/todos/{todo_id}")
    accepted(service, "PUT its own todo", a, auth, "PUT", f"/todos/{todo_id}",
             {"title": "owner a: crud, replaced", "description": "d", "priority": "high", "completed": False})
    patched = call(service.port, "PATCH", f"/todos/{todo_id}", {"completed": True}, authorization=auth,
                   content_type="application/merge-patch+json")
    check(f"{service.name}: PATCH its own todo -> 200", patched.status == 200, patched)
    accepted(service, "DELETE its own todo", a, auth, "DELETE", f"/todos/{todo_id}")
    created = wait_until(lambda: [e for e in service.log(todo_id) if e.get("message") == "todo created"
                                  and e.get("todoId") == todo_id], 5)
    deleted = wait_until(lambda: [e for e in service.log(todo_id) if e.get("message") == "todo deleted"
                                  and e.get("todoId") == todo_id], 5)
    check(f"{service.name}: business events `todo created` and `todo deleted` carry userId = the owner",
          created and deleted and all(e.get("component") == "business" and e.get("userId") == a for e in created + deleted),
          (created, deleted))


def other_owner_404(lab, service, context):
    a, b = context["owners"]["a"], context["owners"]["b"]
    auth_a, auth_b = token_for(lab, a), token_for(lab, b)
    target, reply = create(service, auth_a, "owner a: private")
    check(f"{service.name}: owner A creates a todo", target, reply)
    if not target:
        return
    context["owned"]["a"].append(target)
    before = call(service.port, "GET", f"/todos/{target}", authorization=auth_a)
    missing = str(uuid.uuid4())
    attempts = [("GET", None, "application/json"),
                ("PUT", {"title": "taken over", "description": None, "priority": "low", "completed": True}, "application/json"),
                ("PATCH", {"title": "taken over"}, "application/merge-patch+json"),
                ("DELETE", None, "application/json")]
    for method, body, content_type in attempts:
        theirs = call(service.port, method, f"/todos/{target}", body, authorization=auth_b, content_type=content_type)
        absent = call(service.port, method, f"/todos/{missing}", body, authorization=auth_b, content_type=content_type)
        check(f"{service.name}: {method} of another owner's todo -> 404, the same answer as a missing id's",
              theirs.status == 404 and comparable(theirs, target) == comparable(absent, missing),
              (comparable(theirs, target), comparable(absent, missing)))
    after = call(service.port, "GET", f"/todos/{target}", authorization=auth_a)
    check(f"{service.name}: the todo is unchanged for its owner (same ETag and body)",
          before.status == after.status == 200 and before.header("ETag") == after.header("ETag") and before.body == after.body,
          (before, after))


def listing_isolation(lab, service, context):
    a, b = context["owners"]["a"], context["owners"]["b"]
    auth = {"a": token_for(lab, a), "b": token_for(lab, b)}
    marker = secrets.token_hex(4)
    for n in range(5):
        for who in ("a", "b") if n < 4 else ("a",):
            todo_id, reply = create(service, auth[who], f"owner {who} list {n} {marker}-{who}")
            if todo_id:
                context["owned"][who].append(todo_id)
    for who in ("a", "b"):
        ids, pages = list_ids(service, auth[who], limit=2)
        check(f"{service.name}: owner {who.upper()} lists exactly its {len(context['owned'][who])} todos, over {pages} pages "
              "of limit=2 (every nextCursor page only its own)",
              ids is not None and sorted(ids) == sorted(context["owned"][who]) and len(ids) == len(set(ids)),
              (pages, ids, context["owned"][who]))
    found, _ = list_ids(service, auth["a"], limit=100, query=f"&q={marker}-b")
    check(f"{service.name}: owner A searching for B's titles (q=) finds nothing", found == [], found)


def idempotency_per_owner(lab, service, context):
    a, b = context["owners"]["a"], context["owners"]["b"]
    key = f"drill-{secrets.token_hex(8)}"
    body = {"title": "idempotent create"}
    results = {}
    for who, owner in (("a", a), ("b", b)):
        auth = token_for(lab, owner)
        first = call(service.port, "POST", "/todos", body, authorization=auth, headers={"Idempotency-Key": key})
        again = call(service.port, "POST", "/todos", body, authorization=auth, headers={"Idempotency-Key": key})
        results[who] = (first.status, first.todo_id(), again.status, again.todo_id())
        if first.todo_id():
            context["owned"][who].append(first.todo_id())
    ok = all(r[0] == 201 and r[2] == 201 and r[1] and r[1] == r[3] for r in results.values())
    check(f"{service.name}: Idempotency-Key per owner: each owner's retry replays its own todo; owner B with A's key "
          "and body gets a new todo of its own (201, another id)", ok and results["a"][1] != results["b"][1], results)
    if ok:
        seen = call(service.port, "GET", f"/todos/{results['a'][1]}", authorization=token_for(lab, b)).status
        check(f"{service.name}: owner B cannot read A's idempotent todo ({seen})", seen == 404, seen)


def legacy_invisible(lab, service, context):
    legacy = lab.legacy_id
    if not legacy:
        check(f"{service.name}: the AUTH=off todo exists for this check", False, "drill 2 made none")
        return
    auth = token_for(lab, context["owners"]["a"])
    missing = str(uuid.uuid4())
    ids, _ = list_ids(service, auth, limit=100)
    check(f"{service.name}: the todo created with AUTH=off is not listed for a token holder",
          ids is not None and legacy not in ids, ids)
    for method in ("GET", "DELETE"):
        theirs = call(service.port, method, f"/todos/{legacy}", authorization=auth)
        absent = call(service.port, method, f"/todos/{missing}", authorization=auth)
        check(f"{service.name}: {method} of the AUTH=off todo -> 404 like a missing id",
              theirs.status == 404 and comparable(theirs, legacy) == comparable(absent, missing),
              (comparable(theirs, legacy), comparable(absent, missing)))
    check(f"{service.name}: the AUTH=off todo is still in the table", lab.pg.todo_rows(f"id = '{legacy}'") == 1)


def refused_never_reach_database(lab, service, context, requests=200, settle=11.0):
    """pg_stat_database counts the drills' database's transactions. A backend reports its counts
    when it goes idle, at most once a second and at the latest 10 s later (PostgreSQL 15), so
    each reading waits `settle` s after its window. A window with a burst of refused requests
    (every method, several kinds of bad credentials) and an idle window of the same length are
    compared: the burst may add at most a little (the pool's housekeeping varies), where 200
    requests that each ran a statement would add 200. The psql sessions that count the rows
    connect to the drills' database, so they run outside both windows."""
    t, a = lab.tokens, context["owners"]["a"]
    now = int(time.time())
    target = context["owned"]["a"][0] if context["owned"]["a"] else str(uuid.uuid4())
    valid = t.signed(lab.rsa, t.claims(a), "RS256")
    credentials = [bearer(t.signed(lab.rsa, t.claims(a, exp=now - 300), "RS256")),
                   bearer(t.with_flipped_signature(valid)), None, "Basic ZHJpbGw6cGFzc3dvcmQ=",
                   bearer(t.unsigned(t.claims(a), lab.rsa.kid)), bearer(t.with_payload(valid, sub="someone"))]
    shapes = [("GET", "/todos", None), ("POST", "/todos", {"title": "refused"}), ("GET", f"/todos/{target}", None),
              ("PATCH", f"/todos/{target}", {"title": "refused"}), ("DELETE", f"/todos/{target}", None),
              ("PUT", f"/todos/{target}", {"title": "refused"})]
    rows_before = lab.pg.todo_rows()
    time.sleep(settle)
    start = lab.pg.transactions()
    began = time.monotonic()
    statuses = {}
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    try:
        for n in range(requests):
            method, path, body = shapes[n % len(shapes)]
            for attempt in (1, 2):  # a keep-alive connection the server closed: once more on a new one
                try:
                    status = call(service.port, method, path, body, authorization=credentials[n % len(credentials)],
                                  connection=conn).status
                    break
                except (OSError, http.client.HTTPException) as error:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
                    status = repr(error)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        conn.close()
    took = time.monotonic() - began
    time.sleep(settle)
    after_burst = lab.pg.transactions()
    time.sleep(took + settle)
    after_idle = lab.pg.transactions()
    rows_after = lab.pg.todo_rows()
    check(f"{service.name}: {requests} refused requests (every method, six kinds of bad credentials): all 401 ({statuses})",
          statuses == {401: requests}, statuses)
    burst_delta, idle_delta = after_burst - start, after_idle - after_burst
    check(f"{service.name}: the refused requests never reached the database: {burst_delta} transactions over the burst "
          f"window ({took:.1f} s + {settle:.0f} s), {idle_delta} over an idle one of the same length (slack 10); "
          f"todos {rows_before} -> {rows_after}",
          burst_delta <= idle_delta + 10 and rows_before == rows_after, (burst_delta, idle_delta, rows_before, rows_after))


def retry_until_accepted(service, authorization, timeout=40):
    """The token sent every second until 200 (or `timeout`): (seconds to the 200 or None, the
    earlier answers as (status, reason))."""
    began = time.monotonic()
    replies = []
    while time.monotonic() - began < timeout:
        reply = call(service.port, "GET", "/todos", authorization=authorization)
        if reply.status == 200:
            break
        replies.append(reply)
        time.sleep(1)
    else:
        reply = None
    answers = []
    for r in replies:
        events = wait_until(lambda: service.entries(r.request_id, "security"), 2) or [{}]
        answers.append((r.status, events[0].get("reason")))
    return (time.monotonic() - began if reply else None), answers


def jwks_file_gains_key(lab, service, context):
    added = SigningKey("RSA", f"drill-rsa-added-{secrets.token_hex(3)}")
    token = token_for(lab, context["owners"]["a"], added)
    refused(service, "a token of a key not yet in the file", "unknown_key", token)
    write_jwks_file(context["path"], lab.rsa, lab.rsa_pinned, lab.ec256, lab.ec384, added)
    took, answers = retry_until_accepted(service, token)
    check(f"{service.name}: the JWKS file gains a key while the service runs: its token accepted after "
          f"{'%.1f s' % took if took is not None else 'never (40 s)'}, {len(answers)} earlier answers all 401 unknown_key",
          took is not None and all(a == (401, "unknown_key") for a in answers), answers[:5])


# ---------------------------------------------------------------------------------------------
# 4. AUTH=jwt with AUTH_JWKS_URL over HTTPS, Cognito-style access tokens


def jwks_url_drill(lab):
    first = SigningKey("RSA", "drill-url-rsa-1", alg="RS256")
    second = SigningKey("P-256", "drill-url-ec-1", alg="ES256")
    server = KeyServer(lab.tls)
    server.put("/jwks.json", jwks(first, second))
    url = f"{server.base}/jwks.json"
    settings = {"AUTH": "jwt", "AUTH_ISSUER": COGNITO_ISSUER, "AUTH_AUDIENCE": CLIENT_ID, "AUTH_TOKEN_USE": "access",
                "AUTH_JWKS_URL": url, "AUTH_LEEWAY": "5s", "SSL_CERT_FILE": lab.tls["ca.pem"]}
    service = Service(lab, "jwt url", settings)
    try:
        ok, detail = service.ready()
        at_start = server.fetches("/jwks.json")
        check("jwt url: starts with AUTH_JWKS_URL (https://localhost, the test CA in SSL_CERT_FILE), "
              f"AUTH_TOKEN_USE=access, AUTH_LEEWAY=5s; the JWKS fetched at start ({len(at_start)})",
              ok and len(at_start) == 1, detail or at_start)
        if not ok:
            return
        t = lab.tokens
        owner = f"drill-cognito-{uuid.uuid4()}"
        now = int(time.time())
        access = t.signed(first, t.cognito_access_claims(owner), "RS256")
        accepted(service, "Cognito access token (client_id, token_use access, no aud)", owner, bearer(access))
        accepted(service, "Cognito access token, ES256", owner, bearer(t.signed(second, t.cognito_access_claims(owner), "ES256")))
        id_claims = t.cognito_access_claims(owner, token_use="id", aud=CLIENT_ID, client_id=DROP, scope=DROP,
                                            email=f"{owner}@auth-drill.test")
        refused(service, "Cognito ID token (token_use id)", "wrong_token_use", bearer(t.signed(first, id_claims, "RS256")))
        refused(service, "access token without token_use", "wrong_token_use",
                bearer(t.signed(first, t.cognito_access_claims(owner, token_use=DROP), "RS256")))
        refused(service, "access token of another app client", "wrong_audience",
                bearer(t.signed(first, t.cognito_access_claims(owner, client_id="another-client"), "RS256")))
        refused(service, "access token with aud = our client but client_id another (aud is not what counts)", "wrong_audience",
                bearer(t.signed(first, t.cognito_access_claims(owner, client_id="another-client", aud=CLIENT_ID), "RS256")))
        refused(service, "expired 20 s ago (AUTH_LEEWAY=5s; the default 30 s would accept it)", "expired",
                bearer(t.signed(first, t.cognito_access_claims(owner, exp=now - 20), "RS256")))

        # A burst of unknown kids: answered at once, and no more than one fetch per 30 s.
        burst_began = time.monotonic()
        strangers = [t.signed(SigningKey("P-256", f"drill-stranger-{n}"), t.cognito_access_claims(owner), "ES256")
                     for n in range(3)]
        slow = []
        for n in range(20):
            began = time.monotonic()
            reply = call(service.port, "GET", "/todos", authorization=bearer(strangers[n % 3]))
            if reply.status != 401 or time.monotonic() - began > 2:
                slow.append((reply.status, round(time.monotonic() - began, 2)))
        refused(service, "unknown kid", "unknown_key", bearer(strangers[0]))
        fetched = server.fetches("/jwks.json", burst_began)
        check(f"jwt url: 21 tokens with unknown kids answered 401 at once; {len(fetched)} JWKS fetch(es) during them "
              "(at most one per 30 s since the start's)", not slow and len(fetched) <= 1, (slow, len(fetched)))

        # The served JWKS gains a key.
        added = SigningKey("RSA", f"drill-url-added-{secrets.token_hex(3)}", alg="RS256")
        token = bearer(t.signed(added, t.cognito_access_claims(owner), "RS256"))
        refused(service, "a token of a key not yet served", "unknown_key", token)
        server.put("/jwks.json", jwks(first, second, added))
        took, answers = retry_until_accepted(service, token)
        check(f"jwt url: the served JWKS gains a key: its token accepted after "
              f"{'%.1f s' % took if took is not None else 'never (40 s)'}, {len(answers)} earlier answers all 401 unknown_key",
              took is not None and all(a == (401, "unknown_key") for a in answers), answers[:5])
        times = server.fetches("/jwks.json")
        gaps = [round(b - a, 1) for a, b in zip(times, times[1:])]
        check(f"jwt url: every JWKS fetch at least 30 s after the previous one (gaps {gaps} s)",
              all(gap >= 29 for gap in gaps), gaps)
        metrics_match_events(service)
    finally:
        service.stop()
        server.close()


def jwks_url_untrusted_drill(lab):
    """The served keys must not be used when the certificate is not from a CA in SSL_CERT_FILE."""
    key = SigningKey("RSA", "drill-impostor-rsa", alg="RS256")
    server = KeyServer(lab.tls)
    server.put("/jwks.json", jwks(key))
    settings = {"AUTH": "jwt", "AUTH_ISSUER": COGNITO_ISSUER, "AUTH_AUDIENCE": CLIENT_ID, "AUTH_TOKEN_USE": "access",
                "AUTH_JWKS_URL": f"{server.base}/jwks.json", "SSL_CERT_FILE": lab.tls["impostor.pem"]}
    service = Service(lab, "jwt url untrusted", settings)
    try:
        ok, detail = service.ready()
        status = service.proc.poll()
        if status is not None:
            outcome, refused_ok = f"exit {status} at start", status != 0
        else:
            owner = f"drill-untrusted-{secrets.token_hex(4)}"
            try:
                reply = call(service.port, "GET", "/todos", authorization=bearer(
                    lab.tokens.signed(key, lab.tokens.cognito_access_claims(owner), "RS256")))
                outcome, refused_ok = f"running, a token signed with the served key -> {reply.status}", reply.status == 401
            except (OSError, http.client.HTTPException) as error:
                outcome, refused_ok = f"running but not answering: {error!r}; {detail}", False
        requests = server.since(service.started)
        check(f"jwt url, SSL_CERT_FILE another CA of the same name: the served keys are never used ({outcome}); "
              f"{server.connections} TLS connection(s), no HTTP request", refused_ok and not requests,
              (outcome, requests, server.errors[-2:], service.tail(5)))
    finally:
        service.stop()
        server.close()


# ---------------------------------------------------------------------------------------------
# 5. AUTH_JWKS inline, AUTH_OWNER_CLAIM


def inline_owner_claim_drill(lab):
    key = SigningKey("P-256", "drill-inline-ec", alg="ES256")
    settings = lab.jwt_settings(AUTH_JWKS=json.dumps(jwks(key)), AUTH_OWNER_CLAIM="email")
    service = Service(lab, "jwt inline", settings)
    try:
        ok, detail = service.ready()
        check("jwt inline: starts with AUTH_JWKS (inline JSON) and AUTH_OWNER_CLAIM=email", ok, detail)
        if not ok:
            return
        t = lab.tokens
        email = f"drill-{secrets.token_hex(4)}@auth-drill.test"
        first = bearer(t.signed(key, t.claims(f"sub-{secrets.token_hex(4)}", email=email), "ES256"))
        second = bearer(t.signed(key, t.claims(f"sub-{secrets.token_hex(4)}", email=email), "ES256"))
        reply = accepted(service, "POST as the email claim's owner", email, first, "POST", "/todos",
                         {"title": "inline: owner by email"}, expect=201)
        todo_id = reply.todo_id()
        ids, _ = list_ids(service, second, limit=100)
        check("jwt inline: another sub with the same email is the same owner (sees the todo)",
              todo_id and ids is not None and todo_id in ids, (todo_id, ids))
        stranger = bearer(t.signed(key, t.claims(f"sub-{secrets.token_hex(4)}", email=f"other-{email}"), "ES256"))
        ids, _ = list_ids(service, stranger, limit=100)
        check("jwt inline: another email is another owner (does not see it)", ids is not None and todo_id not in ids, ids)
        refused(service, "a token with sub but no email", "missing_claim",
                bearer(t.signed(key, t.claims(f"sub-{secrets.token_hex(4)}"), "ES256")))
        metrics_match_events(service)
    finally:
        service.stop()


# ---------------------------------------------------------------------------------------------
# 6. AUTH=alb


ALB_HEADER = "x-amzn-oidc-data"


def alb_settings(**settings):
    return {"AUTH": "alb", "AUTH_ALB_ARN": ALB_ARN, "AWS_REGION": REGION, **settings}


def alb_drill(lab):
    key = SigningKey("P-256", str(uuid.uuid4()))
    keys_dir = os.path.join(lab.workdir, "alb-keys")
    os.makedirs(keys_dir, exist_ok=True)
    with open(os.path.join(keys_dir, key.kid), "wb") as f:
        f.write(key.public_pem())
    # A PEM beside the directory: a kid `../outside.pem` must not reach it.
    with open(os.path.join(lab.workdir, "outside.pem"), "wb") as f:
        f.write(key.public_pem())
    service = Service(lab, "alb dir", alb_settings(AUTH_ALB_KEYS_DIR=keys_dir))
    try:
        ok, detail = service.ready()
        check("alb dir: starts with AUTH=alb, AUTH_ALB_ARN, AUTH_ALB_KEYS_DIR (TRUSTED_PROXIES default: loopback trusted)",
              ok, detail)
        if not ok:
            return
        t = lab.tokens
        owner = f"drill-alb-{uuid.uuid4()}"
        token = t.alb(key, owner)
        headers = {ALB_HEADER: token, "x-amzn-oidc-identity": "not-the-owner",
                   "x-amzn-oidc-accesstoken": "opaque-access-token-from-the-idp"}
        accepted(service, "ALB token (ES256, padded segments, our signer) from a trusted peer; owner = sub, "
                 "not x-amzn-oidc-identity", owner, headers=headers)
        reply = accepted(service, "POST /todos behind the ALB", owner, method="POST", path="/todos",
                         body={"title": "alb: mine"}, headers={ALB_HEADER: t.alb(key, owner)}, expect=201)
        todo_id = reply.todo_id()
        other = t.alb(key, f"drill-alb-other-{uuid.uuid4()}")
        seen = call(service.port, "GET", f"/todos/{todo_id}", headers={ALB_HEADER: other}).status if todo_id else None
        check("alb dir: another ALB user cannot read it (404)", seen == 404, seen)

        def alb_refused(label, reason, value):
            refused(service, label, reason, headers={ALB_HEADER: value}, secret=value, credentials_sent=True)

        alb_refused("ALB token from another load balancer (signer)", "wrong_signer", t.alb(key, owner, signer=OTHER_ALB_ARN))
        alb_refused("ALB token expired 10 min ago", "expired", t.alb(key, owner, lifetime=-600))
        alb_refused("ALB token with a signature byte flipped", "bad_signature", flip_padded_signature(t, t.alb(key, owner)))
        alb_refused("ALB token whose kid has no key file", "unknown_key", t.alb(key, owner, kid=str(uuid.uuid4())))
        traversal = t.alb(key, owner, kid="../outside.pem")
        reply = call(service.port, "GET", "/todos", headers={ALB_HEADER: traversal})
        events = wait_until(lambda: service.entries(reply.request_id, "security"), 5) or [{}]
        check("alb dir: a kid `../outside.pem` (a valid key outside AUTH_ALB_KEYS_DIR) -> 401 unknown_key or malformed",
              reply.status == 401 and events[0].get("reason") in ("unknown_key", "malformed"), (reply, events))
        refused(service, "no x-amzn-oidc-data", "missing")
        metrics_match_events(service)
    finally:
        service.stop()


def flip_padded_signature(tokens, token):
    header, payload, signature = segments(token)
    raw = bytearray(base64.urlsafe_b64decode(signature))
    raw[10] ^= 0x01
    return tokens.keep(f"{header}.{payload}.{padded_b64(bytes(raw))}")


def alb_untrusted_drill(lab):
    key = SigningKey("P-256", str(uuid.uuid4()))
    keys_dir = os.path.join(lab.workdir, "alb-keys-untrusted")
    os.makedirs(keys_dir, exist_ok=True)
    with open(os.path.join(keys_dir, key.kid), "wb") as f:
        f.write(key.public_pem())
    service = Service(lab, "alb untrusted", alb_settings(AUTH_ALB_KEYS_DIR=keys_dir, TRUSTED_PROXIES="none"))
    try:
        ok, detail = service.ready()
        check("alb untrusted: starts with TRUSTED_PROXIES=none", ok, detail)
        if not ok:
            return
        token = lab.tokens.alb(key, f"drill-alb-{uuid.uuid4()}")
        refused(service, "a valid ALB token from a peer that is not a trusted proxy", "untrusted_proxy",
                headers={ALB_HEADER: token}, secret=token, credentials_sent=True)
    finally:
        service.stop()


def alb_keys_url_drill(lab):
    key = SigningKey("P-256", str(uuid.uuid4()))
    server = KeyServer(lab.tls)
    server.put(f"/alb-keys/{key.kid}", key.public_pem(), "text/plain")
    service = Service(lab, "alb url", alb_settings(AUTH_ALB_KEYS_URL=f"{server.base}/alb-keys",
                                                   SSL_CERT_FILE=lab.tls["ca.pem"]))
    try:
        ok, detail = service.ready()
        check("alb url: starts with AUTH_ALB_KEYS_URL (https://localhost, the test CA in SSL_CERT_FILE)", ok, detail)
        if not ok:
            return
        owner = f"drill-alb-{uuid.uuid4()}"
        accepted(service, "ALB token, its key fetched from AUTH_ALB_KEYS_URL/<kid>", owner,
                 headers={ALB_HEADER: lab.tokens.alb(key, owner)})
        paths = [r["path"] for r in server.since(service.started)]
        check(f"alb url: the key was fetched from /alb-keys/<kid> ({paths})", f"/alb-keys/{key.kid}" in paths, paths)
    finally:
        service.stop()
        server.close()


# ---------------------------------------------------------------------------------------------
def no_token_in_output_drill(lab):
    drill_support.check_no_leaks(check, lab.extra_outputs, lab.tokens.leaks, "token",
                                 f"{len(lab.tokens.minted)} tokens (whole, payload and signature segments)")


def main():
    binary, admin_url, url_prefix = drill_support.arguments(__doc__.split("\n\n")[1])
    workdir = tempfile.mkdtemp(prefix="auth-drills.")
    lab = Lab(binary, admin_url, url_prefix, workdir)

    def prepare(lab):
        setup(lab)
        self_check(lab)

    try:
        drill_support.run_drills(check, lab, prepare, "setup: database, role, migrations, the test CA, the keys",
                                 [config_errors_drill, auth_off_drill, jwt_file_drill, jwks_url_drill,
                                  jwks_url_untrusted_drill, inline_owner_claim_drill, alb_drill, alb_untrusted_drill,
                                  alb_keys_url_drill], no_token_in_output_drill)
    finally:
        kill_processes()
        shutil.rmtree(workdir, ignore_errors=True)
    drill_support.finish("auth-drills", check)


if __name__ == "__main__":
    main()
