"""Signed spec files (`.spec.json.sig`, OpenPGP cleartext signatures as `gpg --clearsign`
writes them): the signed JSON, taken from the verifier's output and nothing else of the file,
and who signed it.

`verify_clearsigned` is the interface the project's OpenPGP verifier (`ocibuild/trust/openpgp`,
branch `trust-indexes`, not merged yet) provides. TO BE REPLACED by that module once it is in
main: `_gpgv_clearsigned` below is a private stand-in running the same tool (`gpgv`, in a
private home with only the given keys), so that the Spack source can be written and tested
against the real verifier's behaviour meanwhile.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ocibuild.errors import SourceError

CLEARSIGN_BEGIN = b"-----BEGIN PGP SIGNED MESSAGE-----"


def verify_clearsigned(data: bytes, keys: Sequence[Path | str], what: str) -> tuple[bytes, str]:
    """The signed text of the clearsigned `data` and the fingerprint of the key that signed it,
    one of `keys` (key files, binary or armored, or armored key blocks); `SourceError` naming
    `what` and the reason otherwise (unsigned, bad signature, unknown key)."""
    if not data.startswith(CLEARSIGN_BEGIN):
        raise SourceError(f"{what}: unsigned (no clearsigned message)")
    if data.count(CLEARSIGN_BEGIN) > 1:
        raise SourceError(f"{what}: more than one signed message in one file")
    return _gpgv_clearsigned(data, keys, what)


def _gpgv_clearsigned(
    data: bytes, keys: Sequence[Path | str], what: str
) -> tuple[bytes, str]:  # stand-in: replaced by ocibuild.trust.openpgp.verify_clearsigned
    gpgv, gpg = shutil.which("gpgv"), shutil.which("gpg")
    if gpgv is None or gpg is None:
        raise SourceError(f"{what}: verifying signatures needs gpgv and gpg (Debian gpgv, gnupg)")
    with tempfile.TemporaryDirectory(prefix="ocibuild-gpgv-") as tmp:
        ring = Path(tmp) / "keyring.gpg"
        with open(ring, "wb") as out:
            for key in keys:
                text = key.read_bytes() if isinstance(key, Path) else key.encode()
                dearmored = subprocess.run(
                    [gpg, "--homedir", tmp, "--batch", "--no-options", "--dearmor"],
                    input=text,
                    capture_output=True,
                    check=False,
                )
                out.write(dearmored.stdout if dearmored.returncode == 0 else text)
        signed, payload = Path(tmp) / "signed", Path(tmp) / "payload"
        signed.write_bytes(data)
        done = subprocess.run(
            [
                gpgv,
                "--homedir",
                tmp,
                "--status-fd",
                "1",
                "--keyring",
                str(ring),
                "--output",
                str(payload),
                str(signed),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        status = [
            line.split()[1:] for line in done.stdout.splitlines() if line.startswith("[GNUPG:] ")
        ]
        valid = [words[10] for words in status if words[0] == "VALIDSIG" and len(words) > 10]
        if done.returncode == 0 and any(w[0] == "GOODSIG" for w in status) and valid:
            return payload.read_bytes(), valid[0]
        if any(w[0] == "BADSIG" for w in status):
            raise SourceError(f"{what}: bad signature: the signed content was changed")
        unknown = [w[1] for w in status if w[0] == "ERRSIG" and len(w) > 6 and w[6] == "9"]
        if unknown or any(w[0] == "NO_PUBKEY" for w in status):
            key = unknown[0] if unknown else "?"
            raise SourceError(f"{what}: signed by unknown key {key} (not one of the recipe's keys)")
        detail = done.stderr.strip().splitlines()[-1:] or ["no valid OpenPGP signature"]
        raise SourceError(f"{what}: signature cannot be checked ({detail[0]})")
