"""OpenPGP keys made by the real `gpg` in a private home directory, and what repositories sign
with them: a clearsigned InRelease, a detached Release.gpg or repomd.xml.asc, rpm packages
signed by `rpmsign --addsign`."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SigningKey:
    home: Path  # GNUPGHOME holding the secret key
    uid: str
    fingerprint: str
    public: Path  # the armored public key, as a recipe's signed_by or gpgkey names it

    def gpg(self, *args: str, faked_time: str = "") -> None:
        extra = [f"--faked-system-time={faked_time}"] if faked_time else []
        subprocess.run(
            ["gpg", "--homedir", str(self.home), "--batch", "--yes", "--quiet", *extra, *args],
            check=True,
            capture_output=True,
        )

    def clearsign(self, src: Path, dst: Path, faked_time: str = "") -> None:
        self.gpg(
            "--local-user",
            self.fingerprint,
            "--clearsign",
            "--output",
            str(dst),
            str(src),
            faked_time=faked_time,
        )

    def detach_sign(self, src: Path, dst: Path, armor: bool = True) -> None:
        armored = ["--armor"] if armor else []
        self.gpg(
            "--local-user",
            self.fingerprint,
            *armored,
            "--detach-sign",
            "--output",
            str(dst),
            str(src),
        )

    def sign_rpms(self, rpms: list[Path]) -> None:
        subprocess.run(
            [
                "rpmsign",
                "--addsign",
                "--define", f"_gpg_name {self.fingerprint}",
                "--define", f"_gpg_path {self.home}",
                "--define", f"__gpg {shutil.which('gpg')}",
                *map(str, rpms),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip


def make_key(
    home: Path, name: str, algo: str = "ed25519", expire: str = "never", faked_time: str = ""
) -> SigningKey:
    """A new signing key in its own GNUPGHOME `home` (`faked_time`: made as of that time, an
    ISO date like 20200101T000000, so `expire` can be in the past today)."""
    home.mkdir(mode=0o700, parents=True)
    uid = f"{name} <{name}@ocibuild.test>"
    key = SigningKey(home, uid, "", home / "public.asc")
    key.gpg("--passphrase", "", "--quick-gen-key", uid, algo, "sign", expire, faked_time=faked_time)
    listing = subprocess.run(
        ["gpg", "--homedir", str(home), "--with-colons", "--list-keys", uid],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fingerprint = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
    )
    key = SigningKey(home, uid, fingerprint, home / "public.asc")
    key.gpg("--armor", "--export", "--output", str(key.public), fingerprint)
    return key
