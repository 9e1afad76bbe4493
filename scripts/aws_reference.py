#!/usr/bin/env python3
"""Reference SigV4 vectors from botocore for the Swift AWS code (Tests/AWSTests).

Run with the pinned virtualenv's python (scripts/aws-venv prints its path):
    "$(scripts/aws-venv)" scripts/aws_reference.py generate
        writes Tests/AWSTests/Fixtures/botocore-sigv4.json
    "$(scripts/aws-venv)" scripts/aws_reference.py check
        recomputes every vector with botocore and compares with the committed file; prints
        "aws-reference: N vectors match botocore 1.44.5" and exits 0, or prints each mismatch and
        exits 1

Every vector goes through botocore's real client code with the clock frozen at the vector's
time (botocore.auth.get_current_datetime, which is where botocore 1.44.5's SigV4 signers read
the time):
  - rdsAuthTokens: create_client("rds").generate_db_auth_token(...);
  - getSecretValue: create_client("secretsmanager").get_secret_value(...), with a before-send
    handler that captures the prepared request and answers 200 without touching the network.
While it runs, the canonical request botocore builds is recorded (a spy around
SigV4Auth.canonical_request) and each vector is checked three ways: the X-Amz-Date equals the
frozen time; the recorded signedHeaders are exactly the canonical headers botocore signed; and a
plain SigV4 computation from the vector's own fields (below, independent of botocore) reproduces
the token / Authorization, so the fixture alone is enough to test an implementation.
The fixture is JSON with 2-space indent and sorted keys, so regenerating it is stable.
"""
import os
import sys

# Hermetic: no AWS configuration from the environment or ~/.aws may change endpoints, regions,
# retry modes or credentials. Must happen before botocore reads anything.
for _name in [n for n in os.environ if n.startswith("AWS_")]:
    del os.environ[_name]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import calendar  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import hmac  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402
from unittest import mock  # noqa: E402
from urllib.parse import quote, urlsplit  # noqa: E402

import botocore  # noqa: E402
import botocore.auth  # noqa: E402
import botocore.session  # noqa: E402
from botocore.awsrequest import AWSResponse  # noqa: E402

BOTOCORE_VERSION = "1.44.5"
GENERATOR = f"botocore {BOTOCORE_VERSION}"
ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "Tests" / "AWSTests" / "Fixtures" / "botocore-sigv4.json"

# Fake credentials (the AWS documentation's examples).
ACCESS_KEY_ID = "AKIDEXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
# Shaped like an STS session token (base64 with '/', '+' and '='), but made up.
SESSION_TOKEN = (
    "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDw+9bVxFakeTokenNotRealAAAAAAAAAA"
    "AiAs3k/7Qz+Ylk8mP0eB1Xq9r2Fd+Jw4T0o6UuVb5cKxPyqkAwh0EAAaDDEyMzQ1Njc4OTAxMiIMq1T/pY6m"
    "e7R+Xb3KKvACZx8m4rN2/Qp+W5vLcH1tGd0sJ7yB9aE3fU6kO2iPzT8nQ4hM+Va1b/Xw5Ry7Ck3Ls0Df2Gh9J"
    "j6Np8Qr0St1Uv2Wx3Yz4Ab5Cd6Ef7Gh8Ij9Kl0Mn1Op2Qr3St4Uv5Wx6Yz7/+Ab8Cd9Ef0Gh1Ij2Kl3Mn4Op5Q"
    "r6St7Uv8Wx9Yz0Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3Ab4Cd5Ef6Gh7Ij8Kl9Mn0Op1Qr2St3Uv"
    "4Wx5Yz6Ab7Cd8Ef9Gh0Ij1Kl2Mn3Op4Qr5St6Uv7Wx8Yz9Ab0Cd1Ef2Gh3Ij4Kl5Mn6Op7Qr8St9Uv0Wx1Y"
    "z2Ab3Cd4Ef5Gh6Ij7Kl8Mn9Op0Qr1St2Uv3Wx4Yz5Ab6Cd7Ef8Gh9Ij0Kl1Mn2Op3Qr4St5Uv6Wx7Yz8Ab9"
    "MN1Kz3Pv5Rx7Tz9Vb+Xd/Zf2Hh4Jj6Ll8Nn0Pp2Rr4Tt6Vv8Xx0Zz1Bb3Dd5Ff7Hh9Jj/Ll2Nn4Pp6Rr8T"
    "t0Vv=="
)

RDS_CASES = [
    dict(name="no-session-token", sessionToken=None, time="20240102T030405Z",
         region="us-east-1", host="todo-db.c9akciq32.us-east-1.rds.amazonaws.com", port=5432,
         user="app"),
    dict(name="session-token-encoded-user", sessionToken=SESSION_TOKEN, time="20250615T120030Z",
         region="eu-west-1", host="todo.cluster-c1a2b3.eu-west-1.rds.amazonaws.com", port=6160,
         user="iam user+1@x/é"),
    dict(name="month-boundary-before-midnight", sessionToken=None, time="20240229T235959Z",
         region="ap-northeast-1", host="todo-db.abcdefghijkl.ap-northeast-1.rds.amazonaws.com",
         port=5432, user="todo_app"),
]

GET_SECRET_VALUE_CASES = [
    dict(name="default-endpoint", sessionToken=None, time="20240102T030405Z",
         region="us-east-1", endpoint=None, secretId="todo/db"),
    dict(name="arn-session-token", sessionToken=SESSION_TOKEN, time="20250615T120030Z",
         region="ap-northeast-1", endpoint=None,
         secretId="arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:todo-api/db-AbCdEf"),
    dict(name="endpoint-override", sessionToken=None, time="20240229T235959Z",
         region="us-west-2", endpoint="http://127.0.0.1:4566", secretId="todo api/db+1"),
]

STUB_BODY = (b'{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:x","Name":"x",'
             b'"SecretString":"{}","VersionId":"v"}')

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class VectorError(Exception):
    pass


def parse_time(text):
    return datetime.datetime.strptime(text, "%Y%m%dT%H%M%SZ")  # naive UTC, as botocore uses


def frozen_clock(text):
    # botocore.auth imports get_current_datetime from botocore.compat; every SigV4 signer
    # (SigV4Auth.add_auth, inherited by SigV4QueryAuth) calls it through botocore.auth.
    return mock.patch("botocore.auth.get_current_datetime", return_value=parse_time(text))


class CanonicalRequestSpy:
    """Records each canonical request botocore's SigV4 signers build (does not change them)."""

    def __init__(self):
        self.recorded = []

    def __enter__(self):
        original = botocore.auth.SigV4Auth.canonical_request
        spy = self

        def canonical_request(signer, request):
            text = original(signer, request)
            spy.recorded.append(text)
            return text

        self._patch = mock.patch.object(botocore.auth.SigV4Auth, "canonical_request",
                                        canonical_request)
        self._patch.start()
        return self

    def __exit__(self, *exc):
        self._patch.stop()

    def only(self):
        if len(self.recorded) != 1:
            raise VectorError(f"expected 1 signature, botocore signed {len(self.recorded)} times")
        return self.recorded[0]


def new_session():
    session = botocore.session.get_session()
    return session


def client(service, case, endpoint_url=None):
    return new_session().create_client(
        service, region_name=case["region"], endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
        aws_session_token=case["sessionToken"])


def common_fields(case):
    return {
        "name": case["name"],
        "accessKeyId": ACCESS_KEY_ID,
        "secretAccessKey": SECRET_ACCESS_KEY,
        "sessionToken": case["sessionToken"],
        "time": case["time"],
        "epochSeconds": calendar.timegm(parse_time(case["time"]).timetuple()),
        "region": case["region"],
    }


# ---- botocore ----------------------------------------------------------------------------------

def rds_vector(case):
    rds = client("rds", case)
    with frozen_clock(case["time"]), CanonicalRequestSpy() as spy:
        token = rds.generate_db_auth_token(DBHostname=case["host"], Port=case["port"],
                                           DBUsername=case["user"], Region=case["region"])
    canonical = spy.only()
    query = dict(p.split("=", 1) for p in urlsplit("https://" + token).query.split("&"))
    if query.get("X-Amz-Date") != case["time"]:
        raise VectorError(f"X-Amz-Date {query.get('X-Amz-Date')!r} is not the frozen {case['time']}")
    vector = common_fields(case)
    vector.update(host=case["host"], port=case["port"], user=case["user"], token=token)
    # The botocore canonical request must be the one the independent computation builds.
    ours = rds_canonical_request(vector)
    if ours != canonical:
        raise VectorError(f"canonical request differs:\nbotocore:\n{canonical}\nours:\n{ours}")
    return vector


class _RawBody:
    def __init__(self, data):
        self._data = data

    def stream(self, **_kwargs):
        yield self._data


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def get_secret_value_vector(case):
    sm = client("secretsmanager", case, endpoint_url=case["endpoint"])
    captured = []

    def before_send(request, **_kwargs):
        captured.append(request)
        return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.1"},
                           _RawBody(STUB_BODY))

    sm.meta.events.register("before-send.secrets-manager.GetSecretValue", before_send)
    with frozen_clock(case["time"]), CanonicalRequestSpy() as spy:
        result = sm.get_secret_value(SecretId=case["secretId"])
    if result.get("VersionId") != "v" or len(captured) != 1:
        raise VectorError(f"stubbed call did not go as expected: {len(captured)} requests")
    canonical = spy.only()
    request = captured[0]
    headers = {_text(k): _text(v) for k, v in request.headers.items()}
    lower = {k.lower(): v for k, v in headers.items()}
    if lower.get("x-amz-date") != case["time"]:
        raise VectorError(f"X-Amz-Date {lower.get('x-amz-date')!r} is not the frozen {case['time']}")
    authorization = lower["authorization"]
    signed_names = authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    signed = {}
    for name in signed_names:
        if name in lower:
            value = lower[name]
        elif name == "host":  # botocore signs the host from the URL (no default port)
            value = botocore.auth._host_from_url(request.url)
        else:
            raise VectorError(f"signed header {name} is not in the request")
        signed[name] = " ".join(value.split())  # SigV4 Trimall, as botocore's _header_value
    split = urlsplit(request.url)
    body = request.body if isinstance(request.body, bytes) else request.body.encode("utf-8")
    vector = common_fields(case)
    vector.update(
        endpoint=case["endpoint"] or f"{split.scheme}://{split.netloc}",
        secretId=case["secretId"], method=request.method, path=split.path or "/",
        body=body.decode("utf-8"), signedHeaders=signed, authorization=authorization)
    ours = get_secret_value_canonical_request(vector)
    if ours != canonical:
        raise VectorError(f"canonical request differs:\nbotocore:\n{canonical}\nours:\n{ours}")
    if f"{split.scheme}://{split.netloc}" != vector["endpoint"]:
        raise VectorError(f"request went to {request.url}, not {vector['endpoint']}")
    unsigned = sorted(k for k in headers if k.lower() not in signed and k.lower() != "authorization")
    return vector, unsigned


def generate():
    rds = [rds_vector(c) for c in RDS_CASES]
    gsv = [get_secret_value_vector(c) for c in GET_SECRET_VALUE_CASES]
    document = {"generator": GENERATOR, "rdsAuthTokens": rds,
                "getSecretValue": [v for v, _ in gsv]}
    for vector in rds:
        check_rds_independently(vector)
    for vector, _ in gsv:
        check_get_secret_value_independently(vector)
    return document, {v["name"]: unsigned for v, unsigned in gsv}


def render(document):
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# ---- independent SigV4 (from the vector's fields only) ----------------------------------------

def _hmac(key, text):
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def sign(vector, service, canonical_request):
    date = vector["time"][:8]
    scope = f"{date}/{vector['region']}/{service}/aws4_request"
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256", vector["time"], scope,
                                hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()])
    key = _hmac(("AWS4" + vector["secretAccessKey"]).encode("utf-8"), date)
    for part in (vector["region"], service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def _enc(text):
    return quote(str(text), safe="-_.~")


def rds_query_pairs(vector):
    """The token's query parameters, in the order botocore writes them (signature excluded)."""
    pairs = [("Action", "connect"), ("DBUser", vector["user"]),
             ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
             ("X-Amz-Credential",
              f"{vector['accessKeyId']}/{vector['time'][:8]}/{vector['region']}/rds-db/aws4_request"),
             ("X-Amz-Date", vector["time"]), ("X-Amz-Expires", "900"),
             ("X-Amz-SignedHeaders", "host")]
    if vector["sessionToken"] is not None:
        pairs.append(("X-Amz-Security-Token", vector["sessionToken"]))
    return [(_enc(k), _enc(v)) for k, v in pairs]


def rds_canonical_request(vector):
    query = "&".join(f"{k}={v}" for k, v in sorted(rds_query_pairs(vector)))
    host = f"{vector['host'].lower()}:{vector['port']}"
    return "\n".join(["GET", "/", query, f"host:{host}", "", "host", EMPTY_SHA256])


def check_rds_independently(vector):
    signature = sign(vector, "rds-db", rds_canonical_request(vector))
    query = "&".join(f"{k}={v}" for k, v in rds_query_pairs(vector))
    expected = f"{vector['host']}:{vector['port']}/?{query}&X-Amz-Signature={signature}"
    if expected != vector["token"]:
        raise VectorError(f"{vector['name']}: independent SigV4 gives {expected}, "
                          f"botocore gave {vector['token']}")


def get_secret_value_canonical_request(vector):
    names = sorted(vector["signedHeaders"])
    headers = "".join(f"{n}:{vector['signedHeaders'][n]}\n" for n in names)
    return "\n".join([vector["method"], vector["path"], "", headers, ";".join(names),
                      hashlib.sha256(vector["body"].encode("utf-8")).hexdigest()])


def check_get_secret_value_independently(vector):
    names = ";".join(sorted(vector["signedHeaders"]))
    signature = sign(vector, "secretsmanager", get_secret_value_canonical_request(vector))
    expected = (f"AWS4-HMAC-SHA256 Credential={vector['accessKeyId']}/{vector['time'][:8]}/"
                f"{vector['region']}/secretsmanager/aws4_request, SignedHeaders={names}, "
                f"Signature={signature}")
    if expected != vector["authorization"]:
        raise VectorError(f"{vector['name']}: independent SigV4 gives {expected}, "
                          f"botocore gave {vector['authorization']}")


# ---- modes -------------------------------------------------------------------------------------

def compare(expected, actual):
    """Mismatch lines between the recomputed document and the committed one."""
    problems = []
    if actual.get("generator") != expected["generator"]:
        problems.append(f"generator: file has {actual.get('generator')!r}, "
                        f"recomputed {expected['generator']!r}")
    extra_keys = sorted(set(actual) - set(expected))
    if extra_keys:
        problems.append(f"unexpected top-level keys in the file: {', '.join(extra_keys)}")
    for section in ("rdsAuthTokens", "getSecretValue"):
        ours = {v["name"]: v for v in expected[section]}
        theirs_list = actual.get(section)
        if not isinstance(theirs_list, list):
            problems.append(f"{section}: missing or not a list in the file")
            continue
        theirs = {v.get("name"): v for v in theirs_list if isinstance(v, dict)}
        if len(theirs) != len(theirs_list):
            problems.append(f"{section}: entries without a unique name in the file")
        for name in sorted(set(ours) - set(theirs)):
            problems.append(f"{section}[{name}]: missing from the file")
        for name in sorted(set(theirs) - set(ours), key=str):
            problems.append(f"{section}[{name}]: in the file but not generated by this script")
        for name in [v["name"] for v in expected[section]]:
            if name not in theirs:
                continue
            a, b = ours[name], theirs[name]
            for key in sorted(set(a) | set(b)):
                if key not in b:
                    problems.append(f"{section}[{name}].{key}: missing from the file")
                elif key not in a:
                    problems.append(f"{section}[{name}].{key}: unexpected field in the file")
                elif a[key] != b[key]:
                    problems.append(f"{section}[{name}].{key}: file has {json.dumps(b[key], ensure_ascii=False)}, "
                                    f"botocore gives {json.dumps(a[key], ensure_ascii=False)}")
        if [v.get("name") for v in theirs_list if isinstance(v, dict)] != [v["name"] for v in expected[section]] \
                and set(ours) == set(theirs):
            problems.append(f"{section}: vectors are not in the generated order")
    return problems


def main(argv):
    if len(argv) != 2 or argv[1] not in ("generate", "check"):
        print(f"usage: {argv[0]} generate|check", file=sys.stderr)
        return 2
    if botocore.__version__ != BOTOCORE_VERSION:
        print(f"aws-reference: botocore is {botocore.__version__}, need {BOTOCORE_VERSION} "
              f"(run with the python scripts/aws-venv prints)")
        return 2
    try:
        document, unsigned = generate()
    except VectorError as error:
        print(f"aws-reference: {error}")
        return 1
    count = len(document["rdsAuthTokens"]) + len(document["getSecretValue"])
    text = render(document)
    if argv[1] == "generate":
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(text, encoding="utf-8")
        print(f"aws-reference: wrote {count} vectors to {FIXTURE.relative_to(ROOT)}")
        for name, headers in unsigned.items():
            print(f"aws-reference: getSecretValue[{name}] also sends, unsigned: {', '.join(headers)}")
        return 0
    try:
        committed_text = FIXTURE.read_text(encoding="utf-8")
        committed = json.loads(committed_text)
    except (OSError, ValueError) as error:
        print(f"aws-reference: cannot read {FIXTURE.relative_to(ROOT)}: {error}")
        return 1
    problems = compare(document, committed) if isinstance(committed, dict) \
        else ["the file is not a JSON object"]
    if not problems and committed_text != text:
        problems.append("the file's formatting differs from the generator's (2-space indent, sorted "
                        "keys, trailing newline); run generate")
    if problems:
        for line in problems:
            print(f"aws-reference: MISMATCH {line}")
        return 1
    print(f"aws-reference: {count} vectors match {GENERATOR}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
