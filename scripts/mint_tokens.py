"""Mints bearer tokens independently of the service (PyJWT + cryptography, scripts/auth-venv):
one signing key made here, its JWKS written to DIR/jwks.json, and COUNT tokens printed one per
line, each with its own jti (so no two are the same token). Used by the contract run in
scripts/test (one RS256 token) and by `scripts/bench auth` (thousands, RS256 or ES256).

usage: "$(scripts/auth-venv)" scripts/mint_tokens.py DIR [--count N] [--alg RS256|ES256]
       [--issuer URL] [--audience A] [--sub S] [--hours H]
"""
import argparse
import json
import os
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

parser = argparse.ArgumentParser()
parser.add_argument("directory")
parser.add_argument("--count", type=int, default=1)
parser.add_argument("--alg", choices=["RS256", "ES256"], default="RS256")
parser.add_argument("--issuer", default="https://contract.test")
parser.add_argument("--audience", default="todo-api-contract")
parser.add_argument("--sub", default="contract-user")
parser.add_argument("--hours", type=float, default=2)
args = parser.parse_args()

if args.alg == "RS256":
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
else:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
jwk.update({"kid": "minted", "alg": args.alg, "use": "sig"})
with open(os.path.join(args.directory, "jwks.json"), "w") as f:
    json.dump({"keys": [jwk]}, f)
now = int(time.time())
for n in range(args.count):
    claims = {"iss": args.issuer, "aud": args.audience, "sub": args.sub, "iat": now, "exp": now + int(args.hours * 3600), "jti": str(n)}
    print(jwt.encode(claims, key, algorithm=args.alg, headers={"kid": "minted"}))
