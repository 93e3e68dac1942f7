"""The project finds its next failures itself: Hypothesis generates hostile product tarballs,
.debs, rpms (mutations of a real one), layers of loaded images, JSON documents and registry
behaviours, and every case must keep the invariants (docs/security.md#invariants) instead of
ending as one case expects:

- no traceback: success, or an `OcibuildError` whose message is one line;
- no hang: each case ends within `BOUND` seconds;
- nothing written outside the root: a directory export writes under its output only (a
  sentinel beside it stays as it was), and no device node or set-uid/set-gid file;
- no store blob whose digest is wrong, no temporary blob left behind;
- no credential in any output: the registry's token never shows in an error.

CI runs the `ci` profile (a fixed seed, a bounded number of cases, a few minutes at most); a
longer run is `OCIBUILD_HYPOTHESIS=long python3 -m pytest tests/hostile/test_properties.py`
(`OCIBUILD_HYPOTHESIS_EXAMPLES=N` to choose how many cases; each test prints how many it ran).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, assume, event, given, note, settings
from hypothesis import strategies as st

from ocibuild import secrets
from ocibuild.compression import Compression
from ocibuild.errors import OcibuildError
from ocibuild.jsonread import read_json
from ocibuild.layer.entry import check_relative
from ocibuild.layer.writer import write_layer
from ocibuild.oci import Descriptor, Manifest, MediaType
from ocibuild.ospkg import alternatives
from ocibuild.ospkg.accounts import IdMap
from ocibuild.ospkg.debfile import data_entries, list_deb, read_deb
from ocibuild.ospkg.install import claim_paths, directory_entries, owned_by
from ocibuild.ospkg.rpmlayer import layer_entries, read_rpm
from ocibuild.remote import pull_image
from ocibuild.remote.lookup import list_tags
from ocibuild.store import Store
from ocibuild.store.export import RootfsOptions, export_image
from ocibuild.store.rootdir import remove_tree
from ocibuild.ups.tarball import ProductTarball, tarball_entries
from tests.hostile.badregistry import BadRegistry, Faults, sha
from tests.hostile.conftest import verify_store
from tests.hostile.debrepo import deb_bytes
from tests.hostile.test_archives import RPM_SPEC
from tests.registry.conftest import fast_options

BOUND = 20.0  # seconds any one case may take
PROFILE = os.environ.get("OCIBUILD_HYPOTHESIS", "ci")
EXAMPLES = int(os.environ.get("OCIBUILD_HYPOTHESIS_EXAMPLES", "0"))
COMMON = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
    "database": None,
}
# CI: the same cases every run, and no shrinking (a failure is reported as found, within the
# time budget; the long run shrinks it)
NO_SHRINK = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
settings.register_profile("ci", derandomize=True, phases=NO_SHRINK, **COMMON)  # type: ignore[arg-type]
settings.register_profile("long", derandomize=False, **COMMON)  # type: ignore[arg-type]
settings.load_profile(PROFILE)
CI_EXAMPLES = {
    "archives": 600,
    "debs": 400,
    "rpms": 400,
    "layers": 400,
    "json": 1500,
    "scripts": 600,
    "registry": 30,
}
LONG_EXAMPLES = 2000


def examples(kind: str) -> int:
    if EXAMPLES:
        return EXAMPLES
    return LONG_EXAMPLES if PROFILE == "long" else CI_EXAMPLES[kind]


RAN: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def count_cases() -> Iterator[None]:
    yield
    print(f"\nproperty cases run: {RAN} (profile {PROFILE})")


def one_case(kind: str) -> None:
    RAN[kind] = RAN.get(kind, 0) + 1


def kept_invariants(call: Callable[[], object], what: str) -> object:
    """`call()`, which must end within BOUND seconds, either well or with a one-line
    OcibuildError; the exception's class and message go to Hypothesis' statistics."""
    started = time.monotonic()
    try:
        result = call()
    except OcibuildError as e:
        message = str(e)
        assert "\n" not in message, f"{what}: a message of several lines: {message!r}"
        assert "Traceback" not in message
        event(f"{what}: {type(e).__name__}")
        result = e
    took = time.monotonic() - started
    assert took < BOUND, f"{what}: {took:.1f} s"
    return result


# -- generators ----------------------------------------------------------------------------------

PART = st.sampled_from(
    ["a", "b", "lib", "..", ".", "", ".wh.x", ".wh..wh..opq", "caf\xe9", "x" * 120, "dev", "etc"]
)
PATHS = st.builds(
    lambda parts, absolute: ("/" if absolute else "") + "/".join(parts),
    st.lists(PART, min_size=1, max_size=5),
    st.booleans(),
)
TYPES = st.sampled_from(
    [
        tarfile.REGTYPE,
        tarfile.REGTYPE,
        tarfile.DIRTYPE,
        tarfile.SYMTYPE,
        tarfile.LNKTYPE,
        tarfile.CHRTYPE,
        tarfile.BLKTYPE,
        tarfile.FIFOTYPE,
    ]
)
MODES = st.sampled_from([0o644, 0o755, 0o4755, 0o2755, 0o1777, 0o6777, 0o000])
PAX = st.dictionaries(
    st.sampled_from(["size", "GNU.sparse.size", "GNU.sparse.map", "path", "linkpath", "uid"]),
    st.sampled_from(["-5", "1099511627776", "0", "x", "../../etc", "1,2", "99999999999999"]),
    max_size=2,
)


@st.composite
def members(draw: st.DrawFn, prefix: str = "") -> list[tarfile.TarInfo]:
    out = []
    for _ in range(draw(st.integers(1, 8))):
        info = tarfile.TarInfo(prefix + draw(PATHS))
        info.type = draw(TYPES)
        info.mode = draw(MODES)
        info.linkname = draw(PATHS) if info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
        info.size = draw(st.integers(0, 2048)) if info.type == tarfile.REGTYPE else 0
        info.devmajor, info.devminor = draw(st.integers(0, 9)), draw(st.integers(0, 9))
        info.pax_headers = draw(PAX) if draw(st.integers(0, 9)) == 0 else {}
        out.append(info)
    return out


def tar_of(infos: list[tarfile.TarInfo], cut: int | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info in infos:
            try:
                tar.addfile(info, io.BytesIO(b"z" * info.size) if info.size else None)
            except (ValueError, UnicodeError, tarfile.TarError):
                continue  # a header tarfile will not write: not a case
    data = buffer.getvalue()
    return data[:cut] if cut is not None else data


COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "bz2": bz2.compress,
    "gz": gzip.compress,
    "none": lambda data: data,
}


# -- product tarballs and .debs ----------------------------------------------------------------


@settings(max_examples=examples("archives"))
@given(
    infos=members("p/v1/"),
    compression=st.sampled_from(sorted(COMPRESS)),
    cut=st.one_of(st.none(), st.integers(0, 4096)),
)
def test_product_tarballs_keep_the_invariants(
    infos: list[tarfile.TarInfo], compression: str, cut: int | None, tmp_path: Path
) -> None:
    one_case("archives")
    data = COMPRESS[compression](tar_of(infos, cut))
    path = tmp_path / f"p-{hashlib.sha256(data).hexdigest()[:12]}.tar"
    path.write_bytes(data)
    tarball = ProductTarball("p", "v1", f"http://mirror/{path.name}", path, len(data), "")

    def build() -> object:
        return write_layer(
            tarball_entries([tarball], "products"), io.BytesIO(), Compression("none")
        )

    kept_invariants(build, "product tarball")


@settings(max_examples=examples("debs"))
@given(infos=members("./"), cut=st.one_of(st.none(), st.integers(0, 4096)))
def test_debs_keep_the_invariants(
    infos: list[tarfile.TarInfo], cut: int | None, tmp_path: Path
) -> None:
    one_case("debs")
    path = tmp_path / "hostile.deb"
    path.write_bytes(deb_bytes({"Package": "hostile"}, [], data=tar_of(infos, cut)))

    def install() -> object:
        deb = read_deb(path, "deb hostile")
        listing = list_deb(deb, "hostile")
        owners = claim_paths([listing.files])
        entries = [
            *directory_entries([listing.files], owners),
            *data_entries(deb, owned_by(owners, 0)),
        ]
        return write_layer(entries, io.BytesIO(), Compression("none"))

    kept_invariants(install, "deb")


@pytest.fixture(scope="module")
def real_rpm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real rpm (rpmbuild) with files, a symlink and a directory: the seed of mutations."""
    root = tmp_path_factory.mktemp("rpm")
    spec = root / "seed.spec"
    spec.write_text(
        RPM_SPEC.format(
            name="seed",
            install="printf x > %{buildroot}/opt/real/x\nln -s real %{buildroot}/opt/alias",
            files="/opt/real\n/opt/real/x\n/opt/alias",
        )
    )
    subprocess.run(
        ["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {root}", "--define",
         "debug_package %{nil}", "--define", "_build_id_links none", str(spec)],
        check=True, capture_output=True,
    )  # fmt: skip
    return next((root / "RPMS").rglob("*.rpm")).read_bytes()


MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "cut", "insert", "zero"]), st.floats(0, 1), st.integers(0, 255)
    ),
    min_size=1,
    max_size=4,
)


def mutated(data: bytes, mutations: list[tuple[str, float, int]]) -> bytes:
    out = bytearray(data)
    for kind, where, value in mutations:
        at = min(int(where * len(out)), max(0, len(out) - 1))
        if kind == "flip" and out:
            out[at] ^= value or 1
        elif kind == "cut":
            del out[at:]
        elif kind == "insert":
            out[at:at] = bytes([value]) * 8
        elif kind == "zero":
            out[at : at + 16] = bytes(len(out[at : at + 16]))
    return bytes(out)


@settings(max_examples=examples("rpms"))
@given(mutations=MUTATIONS)
def test_rpms_keep_the_invariants(
    mutations: list[tuple[str, float, int]], real_rpm: bytes, tmp_path: Path
) -> None:
    one_case("rpms")
    path = tmp_path / "seed.rpm"
    path.write_bytes(mutated(real_rpm, mutations))

    def install() -> object:
        rpm = read_rpm(path, "rpm seed")
        entries = layer_entries([rpm], IdMap.from_files(None, None), lambda n, p: None)
        return write_layer(entries, io.BytesIO(), Compression("none"))

    kept_invariants(install, "rpm")


# -- layers of loaded images, exported as a directory ----------------------------------------


def stored_image(store: Store, layer: bytes, ref: str) -> None:
    """An image of one uncompressed layer, as any tool could have put it in the store."""
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "config": {},
         "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}
    ).encode()  # fmt: skip
    config_descriptor = store.put_json("application/vnd.oci.image.config.v1+json", config)
    layer_descriptor = Descriptor(MediaType.OCI_LAYER, store.put_blob(layer), len(layer))
    manifest = Manifest(config_descriptor, (layer_descriptor,)).to_bytes()
    store.tag([ref], store.put_json(MediaType.OCI_MANIFEST, manifest))


@settings(max_examples=examples("layers"))
@given(infos=members(), keep=st.booleans())
def test_a_directory_export_creates_nothing_the_host_could_use(
    infos: list[tarfile.TarInfo], keep: bool, tmp_path: Path
) -> None:
    """An image's layer is anything its author wrote (a registry, `load`): exported as a
    directory, nothing lands outside it, and without --devices / --keep-setid no device node
    nor set-id file does."""
    one_case("layers")
    work = tmp_path / f"case-{RAN['layers']}"
    sentinel = work / "outside"
    sentinel.mkdir(parents=True)
    (sentinel / "keep").write_text("keep")
    for info in infos:
        if info.type == tarfile.SYMTYPE and info.linkname.startswith("/"):
            info.linkname = str(sentinel) + info.linkname  # absolute links aim at the host
    store = Store.open(work / "store")
    stored_image(store, tar_of(infos), "example.org/case:1")
    out = work / "rootfs"
    options = RootfsOptions(devices=keep, keep_setid=keep)
    try:
        kept_invariants(
            lambda: export_image(store, "example.org/case:1", "dir", out, rootfs=options),
            "dir export",
        )
        assert sorted(p.name for p in sentinel.iterdir()) == ["keep"]
        assert (sentinel / "keep").read_text() == "keep"
        if out.exists() and not keep:
            for dirpath, dirnames, filenames in os.walk(out):
                for name in dirnames + filenames:
                    mode = os.lstat(os.path.join(dirpath, name)).st_mode
                    assert not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)), name
                    assert stat.S_ISDIR(mode) or not mode & (stat.S_ISUID | stat.S_ISGID), name
        assert [p.name for p in work.iterdir() if p.name.startswith(".rootfs")] == []
        verify_store(store.root)
    finally:
        remove_tree(work)


# -- JSON ------------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def json_texts(draw: st.DrawFn) -> bytes:
    """JSON and almost-JSON: valid documents, deep ones, repeated keys, odd numbers and
    escapes, cut or spliced text."""
    kind = draw(st.sampled_from(["value", "deep", "duplicate", "number", "escape", "cut"]))
    if kind == "deep":
        depth = draw(st.integers(90, 5000))
        return b"[" * depth + b"]" * draw(st.integers(0, depth))
    if kind == "duplicate":
        return b'{"a": 1, "a": 2}'
    if kind == "number":
        return draw(
            st.sampled_from([b"1e400", b"-" + b"9" * 5000, b"NaN", b"[Infinity]", b"1.5e-400"])
        )
    if kind == "escape":
        return draw(st.sampled_from([b'"\\ud800"', b'{"\\udfff": 1}', b'"\\u0000"', b'"\xff"']))
    text = json.dumps(draw(JSON_VALUES)).encode()
    if kind == "cut":
        return text[: draw(st.integers(0, len(text)))]
    return text


@settings(max_examples=examples("json"))
@given(text=json_texts())
def test_the_json_reader_keeps_the_invariants(text: bytes) -> None:
    one_case("json")
    value = kept_invariants(lambda: read_json(text, "doc"), "json")
    if not isinstance(value, OcibuildError):
        json.dumps(value, ensure_ascii=False).encode()  # what it gives can be written back


# -- maintainer scripts --------------------------------------------------------------------------

SCRIPT_PATHS = [
    "/usr/bin/cc",
    "/usr/bin/gcc",
    "relative/link",
    "/usr/../../etc/passwd",
    "/a b",
    "/x\x00",
]
SCRIPT_NAMES = ["cc", "awk", "../../etc/evil", "a/b", "a b", "", ".."]
SCRIPT_PRIORITIES = ["20", "-5", "9" * 5000, "\u00b2", "\u0661\u0662", "x", "2147483648"]
SCRIPT_NOISE = ["$(", ")", "`", "for", "in", "do", "done", "echo", "$X", "${X}", "X=1", "'", '"', ";",
         "&&", "#", "\\\n", "\n", "{", "}", "f()", "--quiet"]  # fmt: skip


@st.composite
def postinst_lines(draw: st.DrawFn) -> str:
    """A line of a postinst: an `update-alternatives --install` call whose words are drawn
    from good and hostile ones (with slaves), or shell noise around it."""
    words = ["update-alternatives", "--install"]
    words += [draw(st.sampled_from(SCRIPT_PATHS)), draw(st.sampled_from(SCRIPT_NAMES))]
    words += [draw(st.sampled_from(SCRIPT_PATHS)), draw(st.sampled_from(SCRIPT_PRIORITIES))]
    for _ in range(draw(st.integers(0, 2))):
        words += [
            "--slave",
            draw(st.sampled_from(SCRIPT_PATHS)),
            draw(st.sampled_from(SCRIPT_NAMES)),
        ]
        words.append(draw(st.sampled_from(SCRIPT_PATHS)))
    noise = draw(st.lists(st.sampled_from(SCRIPT_NOISE), max_size=4))
    at = draw(st.integers(0, len(words)))
    return " ".join(words[:at] + noise + words[at:])


@settings(max_examples=examples("scripts"))
@given(lines=st.lists(postinst_lines(), max_size=6))
def test_postinst_scripts_keep_the_invariants(lines: list[str]) -> None:
    """Whatever a package's postinst holds, reading its alternatives never fails, and what it
    makes is where the call says: absolute, plain paths, names without a slash."""
    one_case("scripts")
    calls, notes = alternatives.install_calls("p", "\n".join(lines))
    assert all(len(note) < 1000 for note in notes)
    for call in calls:
        for named in (alternatives.Slave(call.name, call.link, call.path), *call.slaves):
            assert named.name and "/" not in named.name and not named.name.isspace()
            for path in (named.link, named.path):
                assert path.startswith("/") and ".." not in path.split("/")
    present = lambda path: True  # noqa: E731
    made = list(alternatives.entries(alternatives.groups(calls, present), present))
    assert all(check_relative(entry.path) == entry.path for entry in made)


# -- registries ----------------------------------------------------------------------------------

LOCATIONS = st.sampled_from(
    [
        "file:///etc/passwd",
        "file:///dev/zero",
        "ftp://x/y",
        "/v2/t/img/blobs/nothing",
        "http://127.0.0.1:9/x",
        "//",
    ]
)


@st.composite
def faults(draw: st.DrawFn) -> Faults:
    f = Faults()
    if draw(st.booleans()):
        f.slow_headers = draw(st.sampled_from([0.0, 0.05, 0.3]))
    if draw(st.booleans()):
        f.slow_body = draw(st.sampled_from([0.0, 0.05, 0.3]))
    f.endless = draw(st.sampled_from(["", "/blobs/", "/manifests/", "^/token$", "/tags/"]))
    f.declared_size = draw(st.one_of(st.none(), st.sampled_from([0, 1, 1 << 40, 10**20])))
    f.content_length = draw(st.one_of(st.none(), st.sampled_from(["12abc", "-1", "0", "999"])))
    where = draw(st.sampled_from(["", "/v2/$", "/manifests/", "/blobs/", "/token", "/tags/"]))
    if where and draw(st.booleans()):
        status = draw(st.sampled_from([301, 302, 401, 404, 429, 500, 503]))
        retry = draw(st.sampled_from(["", "999999", "1", "soon", "Wed, 21 Oct 2099 07:28:00 GMT"]))
        f.status = {where: (status, {"Retry-After": retry} if retry else {})}
    elif where:
        f.redirect = {where: draw(LOCATIONS)}
    f.next_link = draw(st.sampled_from(["", "loop", "forever", "file:///etc/passwd"]))
    if draw(st.booleans()):
        f.manifest = draw(json_texts())
    if draw(st.booleans()):
        f.config = draw(json_texts())
    f.bearer = draw(st.booleans())
    if f.bearer and draw(st.booleans()):
        f.token = draw(json_texts())
    return f


@pytest.fixture
def quick_net(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "OCIBUILD_NET_ANSWER_SECONDS": "1",
        "OCIBUILD_NET_MIN_RATE": "2000",
        "OCIBUILD_NET_RATE_WINDOW": "1",
        "OCIBUILD_MAX_RETRY_AFTER": "1",
        "OCIBUILD_MAX_PAGES": "20",
    }.items():
        monkeypatch.setenv(name, value)


@settings(max_examples=examples("registry"))
@given(fault=faults())
def test_a_misbehaving_registry_keeps_the_invariants(
    fault: Faults, tmp_path: Path, quick_net: None
) -> None:
    one_case("registry")
    note(repr(fault))
    store = Store.open(tmp_path / f"store-{RAN['registry']}")
    with BadRegistry(fault) as registry:
        options = fast_options(retries=1, read_timeout=2.0, connect_timeout=2.0)
        pulled = kept_invariants(
            lambda: pull_image(store, registry.ref, options, lambda e: None), "pull"
        )
        listed = kept_invariants(lambda: list_tags(f"{registry.address}/t/img", options), "ls")
    for result in (pulled, listed):
        if isinstance(result, OcibuildError):
            assert "t0ken" not in secrets.redact(str(result))
    assume(True)
    assert not list(store.blobs.glob(".tmp-*"))
    verify_store(store.root)
    if not isinstance(pulled, OcibuildError):  # a pull that worked has the image, whole
        image = store.image(registry.ref)
        assert store.verified(image.manifest.layers[0].digest)
        assert image.manifest.config.digest == sha(fault.config or registry.config)
