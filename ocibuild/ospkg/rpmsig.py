"""What `rpm -K` checks of a package, before its payload is used: the OpenPGP signature over
the header (rpm 4's RSAHEADER or DSAHEADER tag, made by `rpm --addsign`), and the payload
against the header's PAYLOADDIGEST; a package without a payload digest (rpm < 4.14) must carry
the older signature over header and payload (SIGPGP or SIGGPG). The signatures are checked by
ocibuild.trust (gpgv) over the header's bytes as the file holds them."""

from __future__ import annotations

import hashlib
import hmac
import io
from pathlib import Path

from ocibuild.errors import SignatureError
from ocibuild.ospkg.rpmfile import DSAHEADER, RSAHEADER, SIGGPG, SIGPGP, RpmHeader
from ocibuild.trust.openpgp import Keyring, Verified, verify_detached

# OpenPGP hash algorithm numbers (RFC 4880 9.4), as rpm's PAYLOADDIGESTALGO gives them
_HASHES = {2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}
_CHUNK = 1 << 20


def verify_package(path: Path, header: RpmHeader, keys: Keyring, what: str) -> Verified:
    """Who signed the package at `path` (its header read as `header`), or a SignatureError.
    SHA-1 signatures are taken, as rpm 4.18 takes them (CentOS 6 signed with SHA-1)."""
    signatures = dict(header.signatures)
    over_header = signatures.get(RSAHEADER) or signatures.get(DSAHEADER)
    over_all = signatures.get(SIGPGP) or signatures.get(SIGGPG)
    with open(path, "rb") as f:
        f.seek(header.header_offset)
        if over_header and header.payload_digest:
            signed = f.read(header.payload_offset - header.header_offset)
            verified = verify_detached(
                io.BytesIO(signed), over_header, keys, f"{what}: header signature", weak_ok=True
            )
            f.seek(header.payload_offset)
            _check_payload(f, header, what)
            return verified
        if over_all:
            return verify_detached(f, over_all, keys, f"{what}: signature", weak_ok=True)
    if over_header:
        raise SignatureError(
            f"{what}: signed header but no payload digest or payload signature: "
            "its payload cannot be verified",
            reason="unsigned",
        )
    raise SignatureError(f"{what}: unsigned package (no header signature)", reason="unsigned")


def _check_payload(f: io.BufferedReader, header: RpmHeader, what: str) -> None:
    name = _HASHES.get(header.payload_digest_algo)
    if name is None:
        raise SignatureError(
            f"{what}: payload digest of unknown algorithm {header.payload_digest_algo}",
            reason="unverifiable",
        )
    h = hashlib.new(name)
    while chunk := f.read(_CHUNK):
        h.update(chunk)
    if not hmac.compare_digest(h.hexdigest(), header.payload_digest.lower()):
        raise SignatureError(
            f"{what}: the payload does not match the signed header's digest "
            f"({name} {h.hexdigest()}, the header says {header.payload_digest})",
            reason="bad",
        )
