"""OpenPGP signatures checked by `gpgv`, the verifier apt itself runs (Debian package gpgv).

Two shapes of signed input: a clearsigned document (apt's `InRelease`, Spack's `spec.json.sig`),
whose signed text is what `gpgv --output` writes and nothing else of the file, and a detached
signature over data (`Release.gpg`, `repomd.xml.asc`, an rpm header signature). The keys are
`Keys`: keyring files, binary or armored, and armored key blocks given inline in a recipe;
gpgv reads only binary keyrings, so armored ones are dearmored by `gpg --dearmor`.

gpgv runs with a private home directory and only the given keyring: the user's ~/.gnupg and
its trust database play no part. A signature is accepted as apt accepts one: at least one good
signature (GOODSIG and VALIDSIG) by a key of the keyring, with a strong digest, and no bad
signature among the others; signatures by keys not in the keyring are ignored when another is
good (Debian signs InRelease with several keys). Otherwise `SignatureError` says why.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ocibuild.errors import SignatureError
from ocibuild.limits import SIGNED_TEXT_SIZE

ARMOR_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
ARMOR_END = "-----END PGP PUBLIC KEY BLOCK-----"
CLEARSIGN_BEGIN = b"-----BEGIN PGP SIGNED MESSAGE-----"
# digest algorithms (RFC 4880 9.4) apt calls weak and refuses: MD5, SHA-1, RIPEMD-160
WEAK_DIGESTS = {"1": "MD5", "2": "SHA-1", "3": "RIPEMD-160"}
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Keys:
    """The keys a signature may be made by. `what` names them in messages (a keyring's path,
    "the recipe's signed-by key")."""

    what: str
    files: tuple[Path, ...] = ()
    armored: tuple[str, ...] = ()  # armored key blocks, as a recipe gives them inline

    @staticmethod
    def is_armored(text: str) -> bool:
        return ARMOR_BEGIN in text


@dataclass(frozen=True)
class Keyring:
    """`Keys` as gpgv reads them: one binary keyring, dearmored once."""

    what: str
    data: bytes


@dataclass(frozen=True)
class Verified:
    """Who signed: the primary-key fingerprints of the good signatures, in signature order."""

    signers: tuple[str, ...]

    @property
    def fingerprint(self) -> str:
        return self.signers[0]


def keyring(keys: Keys) -> Keyring:
    """Read and dearmor `keys`: a missing or unreadable key file is a `SignatureError`."""
    parts = []
    for path in keys.files:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise SignatureError(
                f"{keys.what}: cannot read key file {path}: {e.strerror}"
            ) from None
        head = data[:4096].decode("ascii", "replace")
        parts.append(
            _dearmor(data.decode("ascii", "replace"), keys.what) if Keys.is_armored(head) else data
        )
    parts += [_dearmor(text, keys.what) for text in keys.armored]
    if not any(parts):
        raise SignatureError(f"{keys.what}: no keys")
    return Keyring(keys.what, b"".join(parts))


def _dearmor(text: str, what: str) -> bytes:
    """Every armored key block of `text` as binary key packets, through `gpg --dearmor`."""
    blocks = []
    rest = text
    while ARMOR_BEGIN in rest:
        start = rest.index(ARMOR_BEGIN)
        end = rest.find(ARMOR_END, start)
        if end < 0:
            raise SignatureError(f"{what}: armored key block without its END line")
        blocks.append(rest[start : end + len(ARMOR_END)] + "\n")
        rest = rest[end + len(ARMOR_END) :]
    if not blocks:
        raise SignatureError(f"{what}: no armored key block ({ARMOR_BEGIN})")
    gpg = shutil.which("gpg")
    if gpg is None:
        raise SignatureError(
            f"{what}: reading an armored key needs gpg (Debian package gnupg); "
            "install it or give a binary keyring"
        )
    out = []
    with tempfile.TemporaryDirectory(prefix="ocibuild-gpg-") as home:
        for block in blocks:
            done = subprocess.run(
                [gpg, "--homedir", home, "--batch", "--no-options", "--dearmor"],
                input=block.encode("ascii", "replace"),
                capture_output=True,
                check=False,
            )
            if done.returncode != 0 or not done.stdout:
                raise SignatureError(
                    f"{what}: not a valid armored key ({_first_line(done.stderr)})"
                )
            out.append(done.stdout)
    return b"".join(out)


def verify_clearsigned(path: Path, keys: Keyring, what: str) -> tuple[bytes, Verified]:
    """The signed text of the clearsigned document at `path`, and who signed it. Only what the
    signature covers is returned: text around the signed message is never read as content."""
    with open(path, "rb") as f:
        starts = _clearsigned_starts(f)
    if starts == 0:
        raise SignatureError(f"{what}: unsigned (no clearsigned message)", reason="unsigned")
    if starts > 1:
        raise SignatureError(f"{what}: more than one signed message in one file", reason="bad")
    with tempfile.TemporaryDirectory(prefix="ocibuild-gpgv-") as tmp:
        payload = Path(tmp) / "payload"
        verified = _gpgv(keys, what, tmp, [str(path)], output=payload)
        SIGNED_TEXT_SIZE.check(payload.stat().st_size, what)
        return payload.read_bytes(), verified


def verify_detached(
    data: Path | BinaryIO, signature: bytes, keys: Keyring, what: str, weak_ok: bool = False
) -> Verified:
    """Check the detached `signature` (binary or armored) over `data`, a file or a stream read
    to its end (streamed to gpgv, never held). `weak_ok` takes SHA-1 signatures too (old rpm
    packages); apt's rule, the default, refuses them."""
    if not signature.strip():
        raise SignatureError(f"{what}: unsigned (empty signature)", reason="unsigned")
    with tempfile.TemporaryDirectory(prefix="ocibuild-gpgv-") as tmp:
        sig = Path(tmp) / "signature"
        sig.write_bytes(signature)
        if isinstance(data, Path):
            return _gpgv(keys, what, tmp, [str(sig), str(data)], weak_ok=weak_ok)
        return _gpgv(keys, what, tmp, [str(sig), "-"], stdin=data, weak_ok=weak_ok)


def _clearsigned_starts(f: BinaryIO) -> int:
    """How many clearsigned messages begin in the file (0 when it does not start with one)."""
    first = f.readline(len(CLEARSIGN_BEGIN) + 4).rstrip(b"\r\n")
    if first != CLEARSIGN_BEGIN:
        return 0
    count = 1
    for line in f:
        count += line.rstrip(b"\r\n") == CLEARSIGN_BEGIN
    return count


def _gpgv(
    keys: Keyring,
    what: str,
    tmp: str,
    args: list[str],
    output: Path | None = None,
    stdin: BinaryIO | None = None,
    weak_ok: bool = False,
) -> Verified:
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise SignatureError(
            f"{what}: verifying signatures needs gpgv (Debian package gpgv, what apt runs)"
        )
    ring = Path(tmp) / "keyring.gpg"
    ring.write_bytes(keys.data)
    command = [gpgv, "--homedir", tmp, "--status-fd", "1", "--keyring", str(ring)]
    if output is not None:
        command += ["--output", str(output)]
    status_file, errors_file = Path(tmp) / "status", Path(tmp) / "errors"
    with open(status_file, "wb") as out, open(errors_file, "wb") as err:
        process = subprocess.Popen(
            [*command, *args],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        if stdin is not None:
            assert process.stdin is not None
            # gpgv may stop reading early (a bad signature): its status then says why
            with contextlib.suppress(BrokenPipeError):
                while chunk := stdin.read(_CHUNK):
                    process.stdin.write(chunk)
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
        process.wait()
    status, errors = status_file.read_bytes(), errors_file.read_bytes()
    try:
        return judge(list(_status_lines(status)), what, keys.what, errors, weak_ok)
    except SignatureError as e:
        if len(e.key) == 16:  # gpgv named a key of the keyring by its long key id only
            full = next((f for f in _fingerprints(ring, tmp) if f.endswith(e.key)), "")
            if full:
                e.message, e.key = e.message.replace(e.key, full), full
        raise


def _fingerprints(ring: Path, home: str) -> list[str]:
    """The fingerprints of the keys and subkeys of a keyring (for messages; [] without gpg)."""
    gpg = shutil.which("gpg")
    if gpg is None:
        return []
    listing = subprocess.run(
        [gpg, "--homedir", home, "--batch", "--with-colons", "--show-keys", str(ring)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]


def _status_lines(status: bytes) -> Iterator[list[str]]:
    for line in status.decode("utf-8", "replace").splitlines():
        if line.startswith("[GNUPG:] "):
            yield line[9:].split()


@dataclass(frozen=True)
class _Signature:
    """One signature of the input, as gpgv's status lines describe it."""

    verdict: str = ""  # GOODSIG, BADSIG, EXPSIG, EXPKEYSIG, REVKEYSIG, ERRSIG
    key: str = ""  # long key id, or fingerprint where gpgv gives one
    primary: str = ""  # VALIDSIG's primary-key fingerprint
    digest: str = ""  # VALIDSIG's hash algorithm number
    error: str = ""  # ERRSIG's return code: 9 no public key, 4 unknown algorithm


_VERDICTS = ("GOODSIG", "BADSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG", "ERRSIG")


def signatures(lines: list[list[str]]) -> list[_Signature]:
    """The signatures gpgv saw, one per NEWSIG (status lines split into words)."""
    found: list[dict[str, str]] = []
    for words in lines:
        keyword, args = words[0], words[1:]
        if keyword == "NEWSIG" or (
            keyword in _VERDICTS and (not found or found[-1].get("verdict"))
        ):
            found.append({})
        if not found:
            continue
        current = found[-1]
        if keyword in _VERDICTS and args:
            current["verdict"] = keyword
            current["key"] = args[0]
            if keyword == "ERRSIG":
                current["error"] = args[5] if len(args) > 5 else ""
                if len(args) > 6 and len(args[6]) >= 40:
                    current["key"] = args[6]
        elif keyword == "VALIDSIG" and len(args) >= 10:
            current["primary"] = args[9]
            current["digest"] = args[7]
    return [_Signature(**s) for s in found if s]


def judge(
    lines: list[list[str]], what: str, keys: str, errors: bytes = b"", weak_ok: bool = False
) -> Verified:
    """gpgv's status lines -> who signed, or a `SignatureError` with the reason."""
    sigs = signatures(lines)
    if not sigs:
        raise SignatureError(f"{what}: unsigned (no valid OpenPGP signature)", reason="unsigned")
    bad = [s for s in sigs if s.verdict == "BADSIG"]
    if bad:
        raise SignatureError(
            f"{what}: bad signature by key {bad[0].key}: the signed content was changed",
            reason="bad",
            key=bad[0].key,
        )
    good = [s for s in sigs if s.verdict == "GOODSIG" and s.primary]
    weak = {} if weak_ok else WEAK_DIGESTS
    strong = [s for s in good if s.digest not in weak]
    if strong:
        return Verified(tuple(s.primary for s in strong))
    if good:
        s = good[0]
        raise SignatureError(
            f"{what}: signed by {s.primary} with the weak digest {WEAK_DIGESTS[s.digest]}, "
            "which apt refuses",
            reason="weak-digest",
            key=s.primary,
        )
    reasons = {
        "EXPKEYSIG": ("expired-key", "signed by the expired key {key}"),
        "REVKEYSIG": ("revoked-key", "signed by the revoked key {key}"),
        "EXPSIG": ("expired-signature", "the signature by key {key} has expired"),
    }
    for verdict, (reason, text) in reasons.items():
        for s in sigs:
            if s.verdict == verdict:
                key = s.primary or s.key
                raise SignatureError(f"{what}: {text.format(key=key)}", reason=reason, key=key)
    unknown = [s for s in sigs if s.verdict == "ERRSIG" and s.error == "9"]
    if unknown:
        names = ", ".join(s.key for s in unknown)
        raise SignatureError(
            f"{what}: signed by unknown key {names} (not in {keys})",
            reason="unknown-key",
            key=unknown[0].key,
        )
    s = sigs[0]
    raise SignatureError(
        f"{what}: signature by key {s.key or '?'} cannot be checked "
        f"({_first_line(errors) or 'gpgv error ' + (s.error or '?')})",
        reason="unverifiable",
        key=s.key,
    )


def _first_line(stderr: bytes) -> str:
    lines = [
        line.removeprefix("gpgv: ").removeprefix("gpg: ").strip()
        for line in stderr.decode("utf-8", "replace").splitlines()
    ]
    return next((line for line in lines if line), "")
