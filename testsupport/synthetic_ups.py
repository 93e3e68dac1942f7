"""Synthetic UPS products in the real scisoft format, for the demo mirror, tests and benchmarks.

A product tarball unpacks, as scisoft's do, to

    <name>/<version>/ups/<name>.table
    <name>/<version>/<fq dir>/bin/<name>         (a /bin/sh program, when asked for)
    <name>/<version>/<fq dir>/lib/lib<name>*.so  (binary-like data, compressible like binaries)
    <name>/<version>.version/<flavor>_<q1>_<q2>

(the `ups` product also brings `setup` and `.upsfiles/dbconfig`), and a mirror holds

    packages/<name>/<version>/<tarball>
    bundles/<bundle>/<version>/manifest/<bundle>-<dotted>-<flavor>-<quals>-<build>_MANIFEST.txt

The content is synthetic (the programs only print how they were set up), the format is not.
Everything is deterministic: the same products give the same bytes.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import tarfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from ocibuild.atomicfile import atomic_writer
from ocibuild.ups.names import (
    NULL_FLAVOR,
    BundleSpec,
    dash_qualifiers,
    dotted,
    env_name,
    flavor_for_os,
    os_for_flavor,
    qualifier_list,
    version_file_name,
)
from ocibuild.ups.scisoft import manifest_name

MTIME = 1451606400  # 2016-01-01, when the paper's images were built
OWNER = ("products", 1060)  # scisoft tarballs are owned by their build account
_DECLARED = "2016-01-01 00.00.00 GMT"


@dataclass(frozen=True)
class SyntheticProduct:
    name: str
    version: str
    flavor: str = NULL_FLAVOR
    qualifiers: str = ""  # colon-joined, e.g. "e9:prof"
    requires: tuple[str, ...] = ()  # setupRequired arguments: "boost v1_57_0 -q +e9:+prof"
    program: bool = False  # bin/<name>: prints its setup
    payload: int = 0  # bytes of library data
    files: int = 1  # the payload split over this many libraries

    @property
    def fq_dir(self) -> str:
        """Flavor/qualifier subdirectory of the product dir ('' for flavorless products)."""
        if self.flavor == NULL_FLAVOR:
            return ""
        quals = dash_qualifiers(self.qualifiers)
        return f"{self.flavor}-{quals}" if quals else self.flavor

    @property
    def tarball(self) -> str:
        stem = f"{self.name}-{dotted(self.version)}"
        quals = dash_qualifiers(self.qualifiers)
        suffix = f"-{quals}.tar.bz2" if quals else ".tar.bz2"
        if self.flavor == NULL_FLAVOR:
            return f"{stem}-noarch{suffix}"
        if self.name == "ups" or os_for_flavor(self.flavor) is None:
            return f"{stem}-{self.flavor}{suffix}"
        return f"{stem}-{os_for_flavor(self.flavor)}-x86_64{suffix}"

    def manifest_line(self) -> str:
        quals = f"  -q {self.qualifiers}" if self.qualifiers else ""
        return f"{self.name:<20} {self.version:<12} {self.tarball:<60} -f {self.flavor}{quals}"


@dataclass(frozen=True)
class SyntheticBundle:
    name: str
    version: str
    os: str
    qualifiers: str
    build: str
    products: tuple[SyntheticProduct, ...] = field(default_factory=tuple)

    @property
    def manifest(self) -> str:
        flavor = flavor_for_os(self.os)
        return manifest_name(
            BundleSpec(self.name, self.version), flavor, self.qualifiers, self.build
        )

    @property
    def spec(self) -> str:
        return f"{self.name}-{self.version}"


# -- the paper's chain, in miniature ---------------------------------------------------------


def art_bundle(os: str = "slf6", compiler: str = "e9", build: str = "prof") -> SyntheticBundle:
    """An art v1_18_03-like bundle: ups, gcc, a noarch product and a qualified dependency
    chain art -> (fhiclcpp -> cetlib, cetlib -> boost -> gcc, root -> gcc)."""
    flavor = flavor_for_os(os)
    quals = f"{compiler}:{build}"
    req = f"-q +{compiler}:+{build}"

    def qualified(
        name: str, version: str, *requires: str, program: bool = False
    ) -> SyntheticProduct:
        return SyntheticProduct(name, version, flavor, quals, requires, program, 4096)

    products = (
        SyntheticProduct("ups", "v5_1_4", flavor, program=True),
        SyntheticProduct("gcc", "v4_9_3", flavor, program=True, payload=8192),
        SyntheticProduct("cetpkgsupport", "v1_08_07"),
        qualified("boost", "v1_57_0", "gcc v4_9_3"),
        qualified("cetlib", "v1_15_03", f"boost v1_57_0 {req}", "cetpkgsupport v1_08_07"),
        qualified("fhiclcpp", "v3_12_04", f"cetlib v1_15_03 {req}"),
        qualified("root", "v6_04_06", "gcc v4_9_3", program=True),
        qualified(
            "art",
            "v1_18_03",
            f"fhiclcpp v3_12_04 {req}",
            f"cetlib v1_15_03 {req}",
            f"root v6_04_06 {req}",
            program=True,
        ),
    )
    return SyntheticBundle("art", "v1_18_03", os, compiler, build, products)


def nu_bundle(os: str = "slf6", compiler: str = "e9", build: str = "prof") -> SyntheticBundle:
    """A second bundle sharing most of art's products (as uboonecode shares art, ROOT...)."""
    art = art_bundle(os, compiler, build)
    flavor = flavor_for_os(os)
    nutools = SyntheticProduct(
        "nutools",
        "v1_20_02",
        flavor,
        f"{compiler}:{build}",
        (f"art v1_18_03 -q +{compiler}:+{build}",),
        program=True,
        payload=4096,
    )
    return replace(art, name="nu", version="v1_20_02", products=(*art.products, nutools))


def bench_bundle(total: int, count: int = 30, os: str = "slf6") -> SyntheticBundle:
    """About `total` bytes unpacked over `count` products (a few big ones, many small ones,
    sizes following a power law as in real bundles), each with many files."""
    flavor = flavor_for_os(os)
    weights = [1 / (i + 1) ** 1.2 for i in range(count - 1)]
    scale = total / sum(weights)
    products = [SyntheticProduct("ups", "v5_1_4", flavor)]
    for i, weight in enumerate(weights):
        size = int(weight * scale)
        products.append(
            SyntheticProduct(
                f"product{i:02d}",
                f"v1_{i:02d}_00",
                flavor,
                "e9:prof",
                () if i == 0 else (f"product{i // 2:02d} v1_{i // 2:02d}_00 -q +e9:+prof",),
                program=i == 0,
                payload=size,
                files=max(1, size // (4 << 20)),
            )
        )
    return SyntheticBundle("bench", "v1_00_00", os, "e9", "prof", tuple(products))


# -- writing -----------------------------------------------------------------------------------


def write_mirror(
    root: Path, bundles: Sequence[SyntheticBundle], old_location: bool = False, jobs: int = 1
) -> None:
    """Write the bundles' manifests and every product tarball (each once) under `root`."""
    products: dict[tuple[str, str, str], SyntheticProduct] = {}
    for bundle in bundles:
        for product in bundle.products:
            products.setdefault((product.name, product.version, product.tarball), product)
    jobs_list = [
        (product, root / "packages" / product.name / product.version / product.tarball)
        for product in products.values()
    ]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            list(pool.map(_write_tarball_job, jobs_list))
    else:
        for job in jobs_list:
            _write_tarball_job(job)
    for bundle in bundles:
        if old_location:
            directory = root / "manifest" / bundle.name / bundle.version
        else:
            directory = root / "bundles" / bundle.name / bundle.version / "manifest"
        text = "".join(p.manifest_line() + "\n" for p in bundle.products)
        with atomic_writer(directory / bundle.manifest) as out:
            out.write(text.encode())


def _write_tarball_job(job: tuple[SyntheticProduct, Path]) -> None:
    product, path = job
    write_tarball(product, path)


def write_tarball(product: SyntheticProduct, path: Path, compression: str = "bz2") -> None:
    with (
        atomic_writer(path) as raw,
        _compressor(raw, compression) as out,
        tarfile.open(fileobj=out, mode="w|", format=tarfile.GNU_FORMAT) as tar,
    ):
        for info, data in product_members(product):
            tar.addfile(info, data)


@contextmanager
def _compressor(raw: BinaryIO, compression: str) -> Iterator[BinaryIO]:
    if compression == "bz2":
        stream: BinaryIO = bz2.BZ2File(raw, "wb", compresslevel=9)  # type: ignore[assignment]
    elif compression == "gz":
        stream = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0)  # type: ignore[assignment]
    elif compression == "xz":
        stream = lzma.LZMAFile(raw, "wb")  # type: ignore[assignment]
    else:
        yield raw
        return
    with stream:
        yield stream


def product_members(product: SyntheticProduct) -> Iterator[tuple[tarfile.TarInfo, BinaryIO | None]]:
    """The members of a product tarball in order: directories before their contents."""
    base = f"{product.name}/{product.version}"
    files: list[tuple[str, int, bytes | _Payload]] = [
        (f"{base}/ups/{product.name}.table", 0o644, table_text(product).encode())
    ]
    fq = f"{base}/{product.fq_dir}" if product.fq_dir else base
    if product.program:
        files.append((f"{fq}/bin/{product.name}", 0o755, program_text(product).encode()))
    if product.payload:
        per_file = product.payload // product.files
        for i in range(product.files):
            size = per_file if i < product.files - 1 else product.payload - per_file * i
            seed = f"{product.name}-{product.version}-{product.qualifiers}-{i}"
            files.append((f"{fq}/lib/lib{product.name}{i or ''}.so", 0o755, _Payload(seed, size)))
    version_file = f"{base}.version/{version_file_name(product.flavor, product.qualifiers)}"
    files.append((version_file, 0o644, version_text(product).encode()))
    if product.name == "ups":
        files.append(("setup", 0o644, SETUP_STANDIN.encode()))
        files.append((".upsfiles/dbconfig", 0o644, DBCONFIG.encode()))
        chain_file = f"ups/current.chain/{version_file_name(product.flavor, '')}"
        files.append((chain_file, 0o644, chain_text(product).encode()))
    emitted: set[str] = set()
    for name, mode, content in sorted(files, key=lambda f: f[0].split("/")):
        for directory in _parents(name):
            if directory not in emitted:
                emitted.add(directory)
                yield _info(directory + "/", tarfile.DIRTYPE, 0o755, 0), None
        size = len(content) if isinstance(content, bytes) else content.size
        stream = io.BytesIO(content) if isinstance(content, bytes) else content
        yield _info(name, tarfile.REGTYPE, mode, size), stream


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = MTIME
    info.uname = info.gname = OWNER[0]
    info.uid = info.gid = OWNER[1]
    return info


class _Payload:
    """Deterministic binary-like bytes (bzip2 about 5x, gzip about 3x), produced as read."""

    def __init__(self, seed: str, size: int) -> None:
        self.size = size
        self._left = size
        self._rng = random.Random(seed)
        self._pool = self._rng.randbytes(16 << 10)
        self._buffer = bytearray()

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        rng, pool = self._rng, self._pool
        while len(self._buffer) < n:
            r = rng.random()
            if r < 0.45:
                length = rng.randrange(16, 256)
                offset = rng.randrange(0, len(pool) - length)
                self._buffer += pool[offset : offset + length]
            elif r < 0.75:
                self._buffer += rng.randbytes(rng.randrange(8, 64))
            else:
                self._buffer += bytes(rng.randrange(4, 128))
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        self._left -= n
        return data


# -- file contents -----------------------------------------------------------------------------


def version_text(product: SyntheticProduct) -> str:
    return (
        f"FILE = version\nPRODUCT = {product.name}\nVERSION = {product.version}\n\n"
        "#*************************************************\n#\n"
        f"FLAVOR = {product.flavor}\n"
        f'QUALIFIERS = "{product.qualifiers}"\n'
        f"  DECLARER = products\n  DECLARED = {_DECLARED}\n"
        f"  MODIFIER = products\n  MODIFIED = {_DECLARED}\n"
        f"  PROD_DIR = {product.name}/{product.version}\n"
        "  UPS_DIR = ups\n"
        f"  TABLE_FILE = {product.name}.table\n"
    )


def chain_text(product: SyntheticProduct) -> str:
    """The current chain of the ups product, which `source <products>/setup` sets up."""
    return (
        f"FILE = chain\nPRODUCT = {product.name}\nCHAIN = current\n\n"
        "#*************************************************\n#\n"
        f"FLAVOR = {product.flavor}\nVERSION = {product.version}\n"
        f'QUALIFIERS = "{product.qualifiers}"\n'
        f"  DECLARER = products\n  DECLARED = {_DECLARED}\n"
        f"  MODIFIER = products\n  MODIFIED = {_DECLARED}\n"
    )


def table_text(product: SyntheticProduct) -> str:
    """A table in the form of scisoft's products: per-qualifier DefineFQ in a Group, the setup
    action in Common, dependencies through setupRequired."""
    name = env_name(product.name)
    quals = ":".join(qualifier_list(product.qualifiers))
    fq = "${UPS_PROD_DIR}"
    if product.flavor != NULL_FLAVOR:
        fq += "/${UPS_PROD_FLAVOR}" + (f"-{dash_qualifiers(quals)}" if quals else "")
    requires = "".join(f"    setupRequired( {r} )\n" for r in product.requires)
    requires = requires or "    # no dependencies\n"
    libs = ""
    if product.payload:
        libs = (
            f"    envSet({name}_LIB, ${{{name}_FQ_DIR}}/lib)\n"
            '    if ( test `uname` = "Darwin" )\n'
            f"      envPrepend(DYLD_LIBRARY_PATH, ${{{name}_FQ_DIR}}/lib)\n"
            "    else()\n"
            f"      envPrepend(LD_LIBRARY_PATH, ${{{name}_FQ_DIR}}/lib)\n"
            '    endif ( test `uname` = "Darwin" )\n'
        )
    path = f"    pathPrepend(PATH, ${{{name}_FQ_DIR}}/bin)\n" if product.program else ""
    return (
        f"File=Table\nProduct={product.name}\n\n"
        "#*************************************************\n# Starting Group definition\n"
        "Group:\n\n"
        f"Flavor={'ANY' if product.flavor != NULL_FLAVOR else 'NULL'}\n"
        f'Qualifiers="{quals}"\n\n'
        "  Action=DefineFQ\n"
        f"    envSet({name}_FQ_DIR, {fq})\n\n"
        "  Action=ExtraSetup\n"
        f"{requires}\n"
        "Common:\n"
        "  Action=setup\n"
        "    setupEnv()\n"
        "    prodDir()\n"
        "    ExeActionRequired(DefineFQ)\n"
        f"    envSet({name}_VERSION, ${{UPS_PROD_VERSION}})\n"
        f"{libs}{path}"
        "    exeActionRequired(ExtraSetup)\n"
        "End:\n"
        "# End Group definition\n"
        "#*************************************************\n"
    )


def program_text(product: SyntheticProduct) -> str:
    name = env_name(product.name)
    return (
        "#!/bin/sh\n"
        f"# synthetic UPS product {product.name} {product.version}: prints how it was set up\n"
        f'echo "{product.name} {product.version} {product.qualifiers}"\n'
        f'echo "{name}_DIR=${{{name}_DIR}}"\n'
        'echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH}"\n'
    )


SETUP_STANDIN = """\
# Stand-in for the `setup` script of scisoft's ups product, in a synthetic products area:
# the real one defines the `setup` command of UPS. Images built by ocibuild carry the
# environment `setup` gives in their config; this stand-in only says so.
setup() {
    echo "synthetic ups: 'setup $*' is not available; the image's environment is already set up" >&2
}
"""

DBCONFIG = """\
FILE = DBCONFIG
AUTHORIZED_NODES = *
VERSION_SUBDIR = 1
PROD_DIR_PREFIX = ${UPS_THIS_DB}
UPD_USERCODE_DIR = ${UPS_THIS_DB}/.updfiles
SETUPS_DIR = ${UPS_THIS_DB}
"""
