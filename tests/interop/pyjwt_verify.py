"""Verify a compact JWS with PyJWT (EdDSA) under a raw Ed25519 public key.

usage: pyjwt_verify.py <token> <x: base64url public key> <expected typ>
Prints the verified claims as JSON and exits 0; exits 1 if verification fails.
The clock is not checked here (the vectors use a fixed instant); the typ is, since PyJWT
does not check it itself.
"""
import base64
import json
import sys

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def main():
    token, x, typ = sys.argv[1], sys.argv[2], sys.argv[3]
    key = Ed25519PublicKey.from_public_bytes(b64d(x))
    try:
        decoded = jwt.decode_complete(
            token,
            key,
            algorithms=["EdDSA"],
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
        )
    except jwt.PyJWTError as e:
        print(f"rejected: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if decoded["header"].get("typ") != typ:
        print(f"rejected: typ {decoded['header'].get('typ')!r}", file=sys.stderr)
        return 1
    print(json.dumps(decoded["payload"], sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
