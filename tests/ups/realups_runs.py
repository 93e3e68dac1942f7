"""The runs of the real ups v6_0_8 recorded in tests/ups/realups/ (README.md there), and what
ocibuild needs to redo each: the probe's databases as an image's files, the recipe's `setup:`
for its command, the image's environment (UPS_OVERRIDE, PRODUCTS)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from ocibuild.errors import Origin
from ocibuild.sources.specs import SetupSpec

PROBES = Path(__file__).resolve().parent / "realups"
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# what the recorder adds to each probe's /products: the real ups binary and setup script
UPS_ADDED = ("products/ups/v6_0_8/Linux64bit+3.10-2.17/bin/ups", "products/setup")
LEFT_OUT = (
    "export UPS_DIR="  # a `pre` a recipe cannot give (ups's own UPS_DIR changed after source)
)


@dataclass(frozen=True)
class Run:
    probe: str
    command: tuple[str, ...]
    override: str | None
    products: str | None
    pre: str | None
    hostname: str
    exit: int
    stdout: str
    stderr: str
    env: dict[str, str] = field(hash=False)

    @property
    def name(self) -> str:
        extra = [f"H={self.override}"] if self.override != "-H Linux64bit+3.10-2.17" else []
        extra += [f"PRODUCTS={self.products}"] if self.products else []
        extra += [self.pre] if self.pre else []
        extra += [self.hostname] if self.hostname != "probehost" else []
        return f"{self.probe}: setup {' '.join(self.command)} {' '.join(extra)}".strip()

    @property
    def refused(self) -> bool:
        """ups refused it: nothing applied, its messages after `Error encountered ...`."""
        return self.stderr.startswith("Error encountered when setting up product:")

    @property
    def ups_messages(self) -> list[str]:
        """What ups printed (ERROR:/WARNING:/INFORMATIONAL: messages, a message may span
        lines), without its first line on a refusal nor the shell's lines."""
        text = self.stderr.split("\n", 1)[1] if self.refused else self.stderr
        if self.exit == 127:  # `source /products/setup` failed: then the shell's own lines
            text = "\n".join(line for line in text.splitlines() if line.startswith("ERROR"))
        return _messages(text)


def _messages(text: str) -> list[str]:
    out: list[str] = []
    for line in text.rstrip("\n").split("\n") if text.strip() else []:
        if line.startswith(("ERROR: ", "WARNING: ", "INFORMATIONAL: ")) or not out:
            out.append(line)
        else:
            out[-1] += "\n" + line
    return out


@cache
def runs() -> tuple[Run, ...]:
    out = []
    for expected in sorted(PROBES.glob("*/expected.jsonl")):
        for line in expected.read_text().splitlines():
            r = json.loads(line)
            where = (expected.parent.name, tuple(r["command"]))
            recorded = (r.get("override"), r.get("products"), r.get("pre"), r["hostname"])
            result = (r["exit"], r["stdout"], r["stderr"], r["env"])
            out.append(Run(*where, *recorded, *result))
    return tuple(out)


def comparable(run: Run) -> bool:
    return not (run.pre or "").startswith(LEFT_OUT)


class ProbeImage:
    """A probe's databases as an image's files (`LowerFS`): `products/` at /products,
    `products2/` at /products2."""

    def __init__(self, probe: str) -> None:
        self.files = dict(_files(probe))

    def read(self, path: str) -> bytes | None:
        return self.files.get(path.lstrip("/"))

    def collect(self, match: Callable[[str], bool]) -> dict[str, bytes]:
        return {p: data for p, data in self.files.items() if match(p)}


@cache
def _files(probe: str) -> tuple[tuple[str, bytes], ...]:
    out = dict.fromkeys(UPS_ADDED, b"")
    for tree in (PROBES / probe).iterdir():
        if tree.is_dir() and tree.name.startswith("products"):
            for path in tree.rglob("*"):
                if path.is_file() and not path.is_symlink():
                    out[f"{tree.name}/{path.relative_to(tree)}"] = path.read_bytes()
    return tuple(out.items())


def setup_spec(run: Run, origin: Origin | None = None) -> SetupSpec:
    """The recipe's `setup:` for the recorded command."""
    words = list(run.command)
    options: dict[str, str] = {}
    chain = ""
    positional = []
    while words:
        word = words.pop(0)
        if word in ("-q", "-f", "-H", "-g", "-z"):
            options[word] = words.pop(0)
        elif word in ("-c", "-n", "-t", "-d", "-o"):
            chain = word
        else:
            positional.append(word)
    return SetupSpec(
        positional[0],
        positional[1] if len(positional) > 1 else "",
        options.get("-q", ""),
        chain=options.get("-g", chain),
        flavor=options.get("-f", ""),
        host_flavor=options.get("-H", ""),
        databases=options["-z"].split(":") if "-z" in options else [],
        origin=origin,
    )


def base_env(run: Run) -> dict[str, str]:
    """The image's environment: what the run's shell had before `source /products/setup`
    (an `export PRODUCTS=...` after it gives the same PRODUCTS, as it holds /products)."""
    env = {"PATH": BASE_PATH}
    if run.override is not None:
        env["UPS_OVERRIDE"] = run.override
    if run.products is not None:
        env["PRODUCTS"] = run.products
    if run.pre and run.pre.startswith("export PRODUCTS="):
        env["PRODUCTS"] = run.pre.removeprefix("export PRODUCTS=")
    return env


def recorded_env(env: dict[str, str]) -> dict[str, str]:
    """An environment as the recorder keeps it (UPS_OVERRIDE left out)."""
    return {k: v for k, v in env.items() if k != "UPS_OVERRIDE"}
