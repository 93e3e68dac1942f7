"""Where this machine's apt gets Debian from: /etc/apt/sources.list and sources.list.d/*
(one-line `deb URI SUITE COMPONENTS` files and deb822 `.sources` files)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ocibuild.ospkg.deb822 import paragraphs


@dataclass(frozen=True)
class AptSource:
    uri: str
    suite: str
    components: tuple[str, ...]


def apt_sources(root: Path = Path("/etc/apt")) -> list[AptSource]:
    files = [root / "sources.list"] if (root / "sources.list").exists() else []
    parts = root / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    found: list[AptSource] = []
    for path in files:
        text = path.read_text(errors="replace")
        found += _deb822(text) if path.suffix == ".sources" else _one_line(text)
    return found


def _one_line(text: str) -> list[AptSource]:
    out = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):  # options: [arch=amd64 signed-by=...]
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2:
            out.append(AptSource(words[0].rstrip("/"), words[1], tuple(words[2:])))
    return out


def _deb822(text: str) -> list[AptSource]:
    out = []
    for fields in paragraphs(text.splitlines()):
        if "deb" not in fields.get("Types", "").split() or fields.get("Enabled", "yes") == "no":
            continue
        for uri in fields.get("URIs", "").split():
            for suite in fields.get("Suites", "").split():
                out.append(
                    AptSource(uri.rstrip("/"), suite, tuple(fields.get("Components", "").split()))
                )
    return out


def debian_mirror_environment(sources: list[AptSource]) -> dict[str, str]:
    """DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR and DEBIAN_SUITE for recipes/debian-base.yaml."""
    main = next((s for s in sources if "-" not in s.suite and "main" in s.components), None)
    assert main is not None, f"apt has no Debian source with a release suite and main: {sources}"
    security = next((s for s in sources if s.suite == f"{main.suite}-security"), None)
    assert security is not None, f"apt has no {main.suite}-security source: {sources}"
    return {
        "DEBIAN_MIRROR": main.uri,
        "DEBIAN_SUITE": main.suite,
        "DEBIAN_SECURITY_MIRROR": security.uri,
    }
