"""Sign claims with PyJWT (EdDSA) using a PKCS#8 PEM private key.

usage: pyjwt_make.py <key.pem> <kid> <typ> <claims JSON>
Prints the compact JWS. PyJWT writes the header {"alg":"EdDSA","kid":...,"typ":...}.
"""
import json
import sys

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key


def main():
    pem_path, kid, typ, claims = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    with open(pem_path, "rb") as f:
        key = load_pem_private_key(f.read(), password=None)
    print(jwt.encode(json.loads(claims), key, algorithm="EdDSA", headers={"typ": typ, "kid": kid}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
