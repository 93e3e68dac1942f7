"""DSSE envelopes (github.com/secure-systems-lab/dsse), the signed form of in-toto statements:
the signature covers the pre-authentication encoding of the payload type and bytes, so a
payload cannot be read as another type."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from ocibuild.errors import VerificationError
from ocibuild.jsonread import read_json
from ocibuild.signing.keys import PrivateKey, PublicKey, sign, verify

IN_TOTO = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSEv1's pre-authentication encoding."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def envelope(payload: bytes, key: PrivateKey, payload_type: str = IN_TOTO) -> bytes:
    signature = sign(key, pae(payload_type, payload))
    document = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}],
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Opened:
    payload_type: str
    payload: bytes


def open_envelope(data: bytes, key: PublicKey, where: str) -> Opened:
    """The payload of an envelope one of whose signatures `key` made; VerificationError else."""
    try:
        document: Any = read_json(data, where)
        payload_type = document["payloadType"]
        payload = base64.b64decode(document["payload"], validate=True)
        signatures = [base64.b64decode(s["sig"], validate=True) for s in document["signatures"]]
        if not isinstance(payload_type, str):
            raise TypeError("payloadType is not a string")
    except (ValueError, TypeError, KeyError) as e:
        raise VerificationError(f"{where}: not a DSSE envelope ({e})") from None
    signed = pae(payload_type, payload)
    if not any(verify(key, signed, s) for s in signatures):
        raise VerificationError(f"{where}: no signature of the envelope verifies with the key")
    return Opened(payload_type, payload)
