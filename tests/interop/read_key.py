"""Read a PKCS#8 PEM private key written by the crate with Python's `cryptography`.

usage: read_key.py <key.pem>
Prints the raw Ed25519 public key as base64url (no padding).
"""
import base64
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key


def main():
    with open(sys.argv[1], "rb") as f:
        key = load_pem_private_key(f.read(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        print(f"not an Ed25519 key: {type(key).__name__}", file=sys.stderr)
        return 1
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    print(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    return 0


if __name__ == "__main__":
    sys.exit(main())
