"""Key pairs as cosign and `skopeo copy --sign-by-sigstore-private-key` read them.

The private key is PKCS#8, encrypted the way sigstore does (go-tuf's and securesystemslib's
`encrypted` package): a key derived from the passphrase with scrypt (N=32768, r=8, p=1, a
32-byte random salt) seals the key with NaCl's secretbox (XSalsa20-Poly1305, a 24-byte random
nonce); the JSON `{"kdf": ..., "cipher": ..., "ciphertext": ...}` (binary fields base64) is the
body of a PEM block `ENCRYPTED COSIGN PRIVATE KEY` (the type containers/image 5.2x reads; cosign
reads it too). The public key is a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), what policy.json's
`keyPath` and `cosign verify --key` take. New keys are ECDSA P-256, as cosign makes them.

`cryptography` gives scrypt, the key types and the signatures; secretbox's XSalsa20 it does
not have, so that one primitive comes from PyNaCl (libsodium)."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ocibuild.errors import SigningKeyError
from ocibuild.jsonread import read_json

PRIVATE_PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY"
PRIVATE_PEM_TYPES = (PRIVATE_PEM_TYPE, "ENCRYPTED SIGSTORE PRIVATE KEY")  # cosign 2 writes the 2nd
SALT_SIZE, NONCE_SIZE, KEY_SIZE = 32, 24, 32
SCRYPT_N, SCRYPT_R, SCRYPT_P = 32768, 8, 1
# the parameters sigstore's readers accept (securesystemslib's legacy, standard, owasp): any
# other is refused before scrypt runs, so a key file cannot make us spend unbounded memory
SCRYPT_ACCEPTED = {(1 << 15, 8, 1), (1 << 16, 8, 1), (1 << 17, 8, 1)}

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


@dataclass(frozen=True)
class KeyPair:
    private_pem: bytes  # encrypted
    public_pem: bytes


def generate(passphrase: bytes) -> KeyPair:
    """A new ECDSA P-256 key pair, the private key encrypted with `passphrase`."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return KeyPair(_pem(PRIVATE_PEM_TYPE, _encrypt(der, passphrase)), public_pem(key.public_key()))


def public_pem(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private(data: bytes, passphrase: bytes, where: str) -> PrivateKey:
    """The private key of an encrypted key file; SigningKeyError naming `where` for a file of
    another kind, a wrong passphrase or a damaged key."""
    kind, body = _unpem(data, where)
    if kind not in PRIVATE_PEM_TYPES:
        raise SigningKeyError(
            f"{where}: a {kind!r} PEM block, not an encrypted cosign private key "
            f"({PRIVATE_PEM_TYPE})"
        )
    der = _decrypt(body, passphrase, where)
    try:
        key = serialization.load_der_private_key(der, password=None)
    except ValueError as e:
        raise SigningKeyError(f"{where}: the decrypted key is not PKCS#8 ({e})") from None
    if not isinstance(key, PrivateKey):
        raise SigningKeyError(f"{where}: a {type(key).__name__}, not an ECDSA, RSA or Ed25519 key")
    return key


def load_public(data: bytes, where: str) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as e:
        raise SigningKeyError(f"{where}: not a PEM public key ({e})") from None
    if not isinstance(key, PublicKey):
        raise SigningKeyError(f"{where}: a {type(key).__name__}, not an ECDSA, RSA or Ed25519 key")
    return key


def sign(key: PrivateKey, data: bytes) -> bytes:
    """The signature of `data` as sigstore makes it: SHA-256 with ECDSA (DER), RSA PKCS#1
    v1.5, or Ed25519."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data)


def verify(key: PublicKey, data: bytes, signature: bytes) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def _encrypt(plaintext: bytes, passphrase: bytes) -> bytes:
    from nacl.secret import SecretBox

    salt, nonce = os.urandom(SALT_SIZE), os.urandom(NONCE_SIZE)
    box = SecretBox(_scrypt(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P))
    sealed = box.encrypt(plaintext, nonce).ciphertext
    document = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
            "salt": _b64(salt),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": _b64(nonce)},
        "ciphertext": _b64(sealed),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _decrypt(body: bytes, passphrase: bytes, where: str) -> bytes:
    from nacl.exceptions import CryptoError
    from nacl.secret import SecretBox

    try:
        document: Any = read_json(body, where)
        kdf, cipher = document["kdf"], document["cipher"]
        params = kdf["params"]
        n, r, p = int(params["N"]), int(params["r"]), int(params["p"])
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(cipher["nonce"], validate=True)
        sealed = base64.b64decode(document["ciphertext"], validate=True)
        names = (kdf["name"], cipher["name"])
    except (ValueError, KeyError, TypeError) as e:
        raise SigningKeyError(f"{where}: not an encrypted key ({e})") from None
    if names != ("scrypt", "nacl/secretbox"):
        raise SigningKeyError(
            f"{where}: encrypted with {names[0]}/{names[1]}, not scrypt/secretbox"
        )
    if (n, r, p) not in SCRYPT_ACCEPTED:
        raise SigningKeyError(f"{where}: unexpected scrypt parameters N={n} r={r} p={p}")
    if len(nonce) != NONCE_SIZE:
        raise SigningKeyError(f"{where}: a nonce of {len(nonce)} bytes, not {NONCE_SIZE}")
    try:
        return SecretBox(_scrypt(passphrase, salt, n, r, p)).decrypt(sealed, nonce)
    except CryptoError:
        raise SigningKeyError(f"{where}: wrong passphrase (or a damaged key)") from None


def _scrypt(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=KEY_SIZE, n=n, r=r, p=p).derive(passphrase)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _pem(kind: str, body: bytes) -> bytes:
    text = base64.b64encode(body).decode()
    lines = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----\n".encode()


def _unpem(data: bytes, where: str) -> tuple[str, bytes]:
    text = data.decode("ascii", "replace")
    begin = text.find("-----BEGIN ")
    head_end = text.find("-----", begin + 11)
    if begin < 0 or head_end < 0:
        raise SigningKeyError(f"{where}: not a PEM file")
    kind = text[begin + 11 : head_end]
    end = text.find(f"-----END {kind}-----", head_end)
    if end < 0:
        raise SigningKeyError(f"{where}: the PEM block {kind!r} has no end")
    try:
        return kind, base64.b64decode("".join(text[head_end + 5 : end].split()), validate=True)
    except ValueError as e:
        raise SigningKeyError(f"{where}: the PEM block is not base64 ({e})") from None
