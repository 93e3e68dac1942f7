"""The OpenPGP verifier (ocibuild.trust.openpgp, over the real gpgv) against signatures made by
the real gpg: each reason a signature is refused, and hostile input (garbage signatures, huge
data, text around a clearsigned message) giving one clean error."""

from __future__ import annotations

import io
import os
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocibuild.errors import SignatureError
from ocibuild.limits import LimitError
from ocibuild.trust.openpgp import Keys, keyring, verify_clearsigned, verify_detached
from tests.ospkg.signing import SigningKey, make_key

TEXT = b"Origin: test\nSuite: test\n-dash line\n"


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    return make_key(tmp_path_factory.mktemp("openpgp") / "k", "verifier")


@pytest.fixture
def signed(key: SigningKey, tmp_path: Path) -> Path:
    (tmp_path / "text").write_bytes(TEXT)
    key.clearsign(tmp_path / "text", tmp_path / "signed")
    return tmp_path / "signed"


def test_clearsigned_and_detached_give_the_text_and_the_signer(
    key: SigningKey, signed: Path, tmp_path: Path
) -> None:
    ring = keyring(Keys("k", files=(key.public,)))
    text, verified = verify_clearsigned(signed, ring, "doc")
    assert text == TEXT and verified.fingerprint == key.fingerprint
    for armor in (True, False):
        key.detach_sign(tmp_path / "text", tmp_path / "sig", armor=armor)
        sig = (tmp_path / "sig").read_bytes()
        assert verify_detached(tmp_path / "text", sig, ring, "doc").signers == (key.fingerprint,)
        stream = io.BytesIO(TEXT)
        assert verify_detached(stream, sig, ring, "doc").fingerprint == key.fingerprint
    # a binary keyring, and the armored key inline, are the same keys
    binary = tmp_path / "k.gpg"
    key.gpg("--export", "--output", str(binary), key.fingerprint)
    assert keyring(Keys("b", files=(binary,))).data == ring.data
    assert keyring(Keys("i", armored=(key.public.read_text(),))).data == ring.data


def test_each_reason(key: SigningKey, signed: Path, tmp_path: Path) -> None:
    ring = keyring(Keys("the keys", files=(key.public,)))

    def reason(path: Path, keys: Keys | None = None) -> tuple[str, str]:
        with pytest.raises(SignatureError) as e:
            verify_clearsigned(path, keyring(keys) if keys else ring, "doc")
        return e.value.reason, e.value.key

    changed = tmp_path / "changed"
    changed.write_bytes(signed.read_bytes().replace(b"Suite: test", b"Suite: evil"))
    assert reason(changed) == ("bad", key.fingerprint)
    other = make_key(tmp_path / "other", "other")
    assert reason(signed, Keys("o", files=(other.public,))) == ("unknown-key", key.fingerprint)
    plain = tmp_path / "plain"
    plain.write_bytes(TEXT)
    assert reason(plain) == ("unsigned", "")

    old = make_key(tmp_path / "old", "old", expire="1y", faked_time="20200101T000000")
    (tmp_path / "text").write_bytes(TEXT)
    old.clearsign(tmp_path / "text", tmp_path / "by-old", faked_time="20200601T000000")
    assert reason(tmp_path / "by-old", Keys("old", files=(old.public,))) == (
        "expired-key",
        old.fingerprint,
    )
    dated = make_key(tmp_path / "dated", "dated", faked_time="20200101T000000")
    dated.gpg(
        "--local-user", dated.fingerprint, "--default-sig-expire", "1d", "--clearsign",
        "--output", str(tmp_path / "short"), str(tmp_path / "text"),
        faked_time="20200601T000000",
    )  # fmt: skip
    assert reason(tmp_path / "short", Keys("d", files=(dated.public,))) == (
        "expired-signature",
        dated.fingerprint,
    )

    key.gpg(
        "--local-user", key.fingerprint, "--digest-algo", "SHA1", "--detach-sign",
        "--output", str(tmp_path / "sha1.sig"), str(tmp_path / "text"),
    )  # fmt: skip
    sha1 = (tmp_path / "sha1.sig").read_bytes()
    with pytest.raises(SignatureError, match="weak digest SHA-1, which apt refuses"):
        verify_detached(tmp_path / "text", sha1, ring, "doc")
    assert verify_detached(tmp_path / "text", sha1, ring, "doc", weak_ok=True).signers

    revoked = make_key(tmp_path / "revoked", "revoked")
    revoked.clearsign(tmp_path / "text", tmp_path / "by-revoked")
    certificate = revoked.home / "openpgp-revocs.d" / f"{revoked.fingerprint}.rev"
    certificate.write_text(certificate.read_text().replace(":-----BEGIN", "-----BEGIN"))
    revoked.gpg("--import", str(certificate))
    revoked.gpg("--armor", "--export", "--output", str(revoked.public), revoked.fingerprint)
    assert reason(tmp_path / "by-revoked", Keys("r", files=(revoked.public,)))[0] == "revoked-key"


def test_text_around_or_a_second_message_is_refused(
    key: SigningKey, signed: Path, tmp_path: Path
) -> None:
    ring = keyring(Keys("k", files=(key.public,)))
    before = tmp_path / "before"
    before.write_bytes(b"Suite: evil\n\n" + signed.read_bytes())
    with pytest.raises(SignatureError, match="doc: unsigned"):
        verify_clearsigned(before, ring, "doc")
    twice = tmp_path / "twice"
    twice.write_bytes(signed.read_bytes() + signed.read_bytes())
    with pytest.raises(SignatureError, match="more than one signed message"):
        verify_clearsigned(twice, ring, "doc")
    after = tmp_path / "after"  # what follows the signature is never returned
    after.write_bytes(signed.read_bytes() + b"Suite: evil\n")
    assert verify_clearsigned(after, ring, "doc")[0] == TEXT


def test_unusable_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(SignatureError, match=r"^k: cannot read key file /nonexistent.gpg"):
        keyring(Keys("k", files=(Path("/nonexistent.gpg"),)))
    with pytest.raises(SignatureError, match="armored key block without its END line"):
        keyring(Keys("k", armored=("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n",)))
    with pytest.raises(SignatureError, match="k: no armored key block"):
        keyring(Keys("k", armored=("not a key",)))
    with pytest.raises(SignatureError, match="k: no keys"):
        keyring(Keys("k"))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(garbage=st.binary(max_size=4096))
def test_garbage_signatures_are_clean_errors(
    key: SigningKey, garbage: bytes, tmp_path: Path
) -> None:
    ring = keyring(Keys("k", files=(key.public,)))
    (tmp_path / "data").write_bytes(TEXT)
    with pytest.raises(SignatureError) as e:
        verify_detached(tmp_path / "data", garbage, ring, "doc")
    assert e.value.reason in ("unsigned", "unverifiable", "bad", "unknown-key")
    (tmp_path / "g").write_bytes(b"-----BEGIN PGP SIGNED MESSAGE-----\n" + garbage)
    with pytest.raises(SignatureError):
        verify_clearsigned(tmp_path / "g", ring, "doc")


class Zeros(io.RawIOBase):
    """`size` zero bytes, made as they are read."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def test_huge_input_streams_and_a_huge_signed_text_is_limited(
    key: SigningKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = keyring(Keys("k", files=(key.public,)))
    size = 256 << 20
    with open(tmp_path / "zeros", "wb") as f:
        f.truncate(size)
    key.detach_sign(tmp_path / "zeros", tmp_path / "zeros.sig")
    sig = (tmp_path / "zeros.sig").read_bytes()
    tracemalloc.start()
    try:
        assert verify_detached(io.BufferedReader(Zeros(size)), sig, ring, "big").signers
        with pytest.raises(SignatureError, match="bad signature"):
            verify_detached(io.BufferedReader(Zeros(size + 1)), sig, ring, "big")
        assert tracemalloc.get_traced_memory()[1] < 16 << 20  # streamed, not held
    finally:
        tracemalloc.stop()
    os.remove(tmp_path / "zeros")

    (tmp_path / "text").write_bytes(TEXT * 1000)
    key.clearsign(tmp_path / "text", tmp_path / "signed")
    monkeypatch.setenv("OCIBUILD_MAX_SIGNED_TEXT_SIZE", "1000")
    with pytest.raises(LimitError, match="OCIBUILD_MAX_SIGNED_TEXT_SIZE"):
        verify_clearsigned(tmp_path / "signed", ring, "doc")


def test_no_gpgv_is_a_clear_error(
    key: SigningKey, signed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = keyring(Keys("k", files=(key.public,)))
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SignatureError, match=r"needs gpgv \(Debian package gpgv"):
        verify_clearsigned(signed, ring, "doc")
