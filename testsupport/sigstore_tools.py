"""skopeo and podman that verify sigstore signatures (Debian 13's, unpacked beside Debian 12:
testsupport/sigstore-containers-tools says why and how)."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).with_name("sigstore-containers-tools")


def sigstore_tools(cache: Path | None = None) -> Path:
    """The directory holding `skopeo` and `podman` (fetched into the cache once)."""
    args = [str(SCRIPT)] + ([str(cache)] if cache else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=1800).stdout
    return Path(out.strip().splitlines()[-1])
