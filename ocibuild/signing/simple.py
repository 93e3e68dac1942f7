"""The payload of an image signature, as containers/image and cosign write and read it (the
"simple signing" format of sigstore attachments):

    {"critical": {"identity": {"docker-reference": "site:5000/hep/art:1"},
                  "image": {"docker-manifest-digest": "sha256:..."},
                  "type": "cosign container image signature"},
     "optional": {"creator": "ocibuild 0.1.0", "timestamp": 1700000000}}

The signature (base64, of the payload's exact bytes) travels beside it, in the layer annotation
`SIGNATURE_ANNOTATION`. A reader takes `critical` as containers/image does: exactly these keys,
nothing else in it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ocibuild.errors import VerificationError
from ocibuild.jsonread import read_json

SIGNATURE_TYPE = "cosign container image signature"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"


@dataclass(frozen=True)
class Claim:
    """What a signature says: this manifest digest is the image named `reference`."""

    digest: str
    reference: str


def payload(claim: Claim, creator: str, timestamp: int) -> bytes:
    document = {
        "critical": {
            "identity": {"docker-reference": claim.reference},
            "image": {"docker-manifest-digest": claim.digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": {"creator": creator, "timestamp": timestamp},
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def read_payload(data: bytes, where: str) -> Claim:
    """The claim of a payload; VerificationError naming `where` for anything else."""
    try:
        document: Any = read_json(data, where)
        critical = _exactly(document, {"critical", "optional"}, "payload")["critical"]
        critical = _exactly(critical, {"identity", "image", "type"}, "critical")
        if critical["type"] != SIGNATURE_TYPE:
            raise ValueError(f"signature type {critical['type']!r}")
        image = _exactly(critical["image"], {"docker-manifest-digest"}, "image")
        identity = _exactly(critical["identity"], {"docker-reference"}, "identity")
        digest, reference = image["docker-manifest-digest"], identity["docker-reference"]
        if not isinstance(digest, str) or not isinstance(reference, str):
            raise ValueError("digest and reference must be strings")
    except (ValueError, TypeError, KeyError) as e:
        raise VerificationError(f"{where}: not a simple-signing payload ({e})") from None
    return Claim(digest, reference)


def _exactly(value: Any, keys: set[str], what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != keys:
        raise ValueError(f"{what} must be an object of exactly {', '.join(sorted(keys))}")
    return value
