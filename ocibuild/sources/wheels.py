"""`wheels`: Python packages from wheels, installed for the image's Python as pip would.

    - wheels: {requirements: ["uproot>=5", "hist"]}
    - wheels: {requirements_file: requirements.txt}     # with --hash lines: hash-checking mode
    - wheels: {lock: pylock.toml}                       # PEP 751: installed as locked

The image's Python (version, glibc, machine) is read from the layers below (dpkg's status or
the rpm database: python3 and libc6/glibc), or given as `python: {version, platform}`; only
wheels for it are taken, and an sdist is never built. Requirements are resolved against the
index pip is configured with (`--index-url`, `PIP_INDEX_URL`, pip.conf, the recipe's
`index_url`) and local `find_links` directories, and the resolution is pinned in the recipe's
lock file (file names, URLs, sha256), so a rebuild needs no index and installs the same files.
A wheel file on a path a package of a lower layer owns is an error (`overlaps: warn` to allow).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.utils import canonicalize_name

from ocibuild.errors import OcibuildError, Origin, SourceError
from ocibuild.fetch import Fetched
from ocibuild.layer.entry import Entry
from ocibuild.net.links import safe_url
from ocibuild.ospkg.dpkgdb import INFO_DIR, STATUS_PATH, parse_status
from ocibuild.ospkg.rpmdb import RPMDB_FILES, read_rpmdb
from ocibuild.progress import Message, plural
from ocibuild.python.bytecode import Compiler, find_interpreter
from ocibuild.python.index import Index, IndexConfig, Link, index_urls
from ocibuild.python.inputs import (
    applies,
    parse_requirement,
    read_pylock,
    read_requirements_file,
)
from ocibuild.python.install import (
    Scheme,
    Target,
    WheelToInstall,
    installed_paths,
    layer_entries,
    system_scheme,
    venv_scheme,
)
from ocibuild.python.metadata import CoreMetadata, parse_metadata
from ocibuild.python.pipconfig import read_pip_indexes
from ocibuild.python.resolve import Chosen, resolve
from ocibuild.python.target import (
    DEBIAN_MACHINES,
    TargetPython,
    parse_platform,
    parse_version,
)
from ocibuild.python.venv import venv_entries
from ocibuild.python.wheel import read_metadata_from_wheel
from ocibuild.sbom import Component
from ocibuild.sources.base import LayerPlan, content_key, fetcher_for, input_key
from ocibuild.sources.packages import Download, download_packages, locked_resolution
from ocibuild.sources.session import LayerContext
from ocibuild.sources.specs import WheelsSpec

DEBIAN_PYTHON = re.compile(r"python3\.(\d+)(-minimal)?")
RPM_MACHINES = {"x86_64": "x86_64", "aarch64": "aarch64"}


@dataclass(frozen=True)
class Resolved:
    """One wheel a layer installs, as the lock file records it."""

    name: str
    version: str
    filename: str
    url: str
    sha256: str
    requested: bool
    licenses: list[str]


def plan(spec: WheelsSpec, ctx: LayerContext) -> list[LayerPlan]:
    origin = spec.origin or ctx.origin
    try:
        return [_plan(spec, ctx, origin)]
    except OcibuildError as e:
        raise e.located(origin) from None


def _plan(spec: WheelsSpec, ctx: LayerContext, origin: Origin) -> LayerPlan:
    venv = spec.target.strip("/") if spec.target else None
    lower = _lower_files(ctx, venv)
    target = _target_python(spec, lower, venv)
    debian = STATUS_PATH in lower
    scheme = venv_scheme(venv, target.short) if venv else system_scheme(target.short, debian)
    installed = _installed(lower, scheme)
    inputs = _inputs_key(spec, ctx)
    key = input_key(
        "wheels",
        inputs,
        target.short,
        target.platform,
        spec.prereleases,
        sorted((name, m.version) for name, m in installed.items()),
    )
    wheels = locked_resolution(
        ctx, key, Resolved, lambda: _resolve(spec, ctx, target, installed, origin)
    )
    if spec.compile and wheels:
        find_interpreter(target.version[:2])  # say now, not while writing, that none is here
    new_venv = venv is not None and f"{venv}/pyvenv.cfg" not in lower
    install_target = Target(scheme, target.interpreter, target.version[:2])
    downloads = _Downloads(ctx, wheels)
    owners = _owners(lower)

    def entries() -> Iterator[Entry]:
        if new_venv:
            assert venv is not None
            base = _base_interpreter(spec, lower, target)
            yield from venv_entries(venv, base, target.version)
        fetched = downloads.result()
        to_install = [
            WheelToInstall(f.path, w.filename, w.name, w.version, w.requested)
            for w, f in zip(wheels, fetched, strict=True)
        ]
        compiler: Callable[[], Compiler] | None = None
        if spec.compile:
            interpreter = find_interpreter(target.version[:2])
            compiler = lambda: Compiler(interpreter)  # noqa: E731
        yield from layer_entries(
            to_install,
            install_target,
            compiler,
            lambda planned: _check_owners(ctx, spec, installed_paths(planned), owners),
        )

    def components() -> list[Component]:
        site = "/" + scheme.purelib
        return [
            Component(
                "wheel",
                w.name,
                w.version,
                purl=f"pkg:pypi/{canonicalize_name(w.name)}@{w.version}",
                sha256=w.sha256,
                url=safe_url(w.url),
                licenses=tuple(w.licenses),
                path=site,
                properties=(("filename", w.filename),),
            )
            for w in wheels
        ]

    shown = ", ".join(w.name for w in wheels if w.requested)[:200] or ", ".join(
        w.name for w in wheels[:4]
    )
    return LayerPlan(
        key=input_key(
            "wheels-layer",
            [w.__dict__ for w in wheels],
            scheme.__dict__,
            target.interpreter,
            target.short,
            spec.compile,
            spec.overlaps,
            new_venv,
            content_key(lower),
        ),
        description=f"wheels: {plural(len(wheels), 'wheel')} for {shown} ({target.describe()})",
        entries=entries,
        created_by=f"ocibuild wheels install {shown}",
        start=downloads.start,
        components=components,
    )


# -- the image below ------------------------------------------------------------------------


def _lower_files(ctx: LayerContext, venv: str | None) -> dict[str, bytes]:
    """What of the image below the source reads, in one pass: dpkg's status and file lists,
    the rpm database, the installed distributions' METADATA, a venv's pyvenv.cfg."""
    if ctx.lower is None:
        return {}
    wanted = {STATUS_PATH, *RPMDB_FILES}
    if venv:
        wanted.add(f"{venv}/pyvenv.cfg")

    def match(path: str) -> bool:
        return (
            path in wanted
            or (path.startswith(INFO_DIR + "/") and path.endswith(".list"))
            or (path.endswith(".dist-info/METADATA") and path.count("/") >= 2)
        )

    return ctx.lower.collect(match)


def _debian_packages(lower: dict[str, bytes]) -> dict[str, dict[str, str]]:
    status = parse_status(lower.get(STATUS_PATH, b"").decode("utf-8", "replace"))
    return {
        p["Package"]: p
        for p in status
        if "Package" in p and p.get("Status", "").endswith(" installed")
    }


def _upstream(version: str) -> str:
    """`2.36-9+deb12u10` -> `2.36`; `1:3.11.2-1` -> `3.11.2` (epoch and revision dropped)."""
    return version.split(":", 1)[-1].rsplit("-", 1)[0].split("+", 1)[0]


def _target_python(spec: WheelsSpec, lower: dict[str, bytes], venv: str | None) -> TargetPython:
    """The image's Python: the recipe's `python:` over what the image's packages say."""
    given = spec.python
    version_text = given.version if given else None
    platform_text = given.platform if given else None
    found_version, found_platform, interpreter = _from_image(lower)
    version_text = version_text or found_version
    platform_text = platform_text or found_platform
    if not version_text or not platform_text:
        missing = " and ".join(
            w for w, v in (("version", version_text), ("platform", platform_text)) if not v
        )
        raise SourceError(
            f"cannot tell the image's Python {missing}: no python3 and libc6 (dpkg) or python3 "
            "and glibc (rpm) in the layers below; give "
            '`python: {version: "3.11", platform: manylinux_2_36_x86_64}`'
        )
    version = parse_version(version_text)
    glibc, machine = parse_platform(platform_text)
    short = f"{version[0]}.{version[1]}"
    if given and given.interpreter:
        interpreter = given.interpreter
    elif found_version is None or parse_version(found_version)[:2] != version[:2]:
        interpreter = f"/usr/bin/python{short}"
    if venv:
        interpreter = f"/{venv}/bin/python"
    return TargetPython(version, glibc, machine, interpreter or f"/usr/bin/python{short}")


def _from_image(lower: dict[str, bytes]) -> tuple[str | None, str | None, str | None]:
    """(python version, manylinux platform, interpreter) from the image's packages."""
    debs = _debian_packages(lower)
    if debs:
        version = interpreter = None
        if "python3" in debs:
            version, interpreter = _upstream(debs["python3"]["Version"]), "/usr/bin/python3"
        else:
            minors = sorted(
                (int(m[1]), name) for name in debs if (m := DEBIAN_PYTHON.fullmatch(name))
            )
            if minors:
                version = _upstream(debs[minors[-1][1]]["Version"])
        platform = None
        if "libc6" in debs:
            libc = debs["libc6"]
            machine = DEBIAN_MACHINES.get(libc.get("Architecture", ""))
            if machine:
                platform = f"manylinux_{_upstream(libc['Version']).replace('.', '_')}_{machine}"
        return version, platform, interpreter
    rpms = {p.name: p for p in read_rpmdb(lower)}
    version = platform = interpreter = None
    if "python3" in rpms:
        version, interpreter = _upstream(rpms["python3"].evr), "/usr/bin/python3"
    if "glibc" in rpms and (machine := RPM_MACHINES.get(rpms["glibc"].arch)):
        platform = f"manylinux_{_upstream(rpms['glibc'].evr).replace('.', '_')}_{machine}"
    return version, platform, interpreter


def _base_interpreter(spec: WheelsSpec, lower: dict[str, bytes], target: TargetPython) -> str:
    """The image's own interpreter a new venv links to."""
    if spec.python and spec.python.interpreter:
        return spec.python.interpreter
    _, _, interpreter = _from_image(lower)
    return interpreter or f"/usr/bin/python{target.short}"


def _installed(lower: dict[str, bytes], scheme: Scheme) -> dict[str, CoreMetadata]:
    """Distributions a lower layer installed into the layer's site directory."""
    out: dict[str, CoreMetadata] = {}
    prefix = scheme.purelib + "/"
    for path, data in sorted(lower.items()):
        depth = path.count("/") == prefix.count("/") + 1
        if path.startswith(prefix) and depth and path.endswith(".dist-info/METADATA"):
            meta = parse_metadata(data, "/" + path)
            out[canonicalize_name(meta.name)] = meta
    return out


USRMERGE = ("bin/", "sbin/", "lib/", "lib32/", "lib64/", "libx32/")


def _owners(lower: dict[str, bytes]) -> dict[str, str]:
    """Image path -> the package (dpkg or rpm) of a lower layer that installed it."""
    owners: dict[str, str] = {}
    for path, data in lower.items():
        if path.startswith(INFO_DIR + "/") and path.endswith(".list"):
            package = path[len(INFO_DIR) + 1 : -len(".list")]
            for line in data.decode("utf-8", "surrogateescape").splitlines():
                owned = _merged(line.strip().lstrip("/"))
                if owned:
                    owners.setdefault(owned, f"deb {package}")
    for rpm in read_rpmdb(lower):
        for owned in rpm.files:
            owners.setdefault(_merged(owned.lstrip("/")), f"rpm {rpm.name}-{rpm.evr}.{rpm.arch}")
    return owners


def _merged(path: str) -> str:
    """The path in a merged-/usr image (`bin/x` is `usr/bin/x`)."""
    return "usr/" + path if path.startswith(USRMERGE) else path


def _check_owners(
    ctx: LayerContext,
    spec: WheelsSpec,
    paths: Iterator[tuple[str, str]],
    owners: dict[str, str],
) -> None:
    clashes = [(path, wheel, owners[path]) for path, wheel in paths if path in owners]
    if not clashes:
        return
    path, wheel, owner = clashes[0]
    more = f" (and {plural(len(clashes) - 1, 'more path')})" if len(clashes) > 1 else ""
    text = f"/{path} of {wheel} is a file of {owner} (a lower layer){more}"
    if spec.overlaps == "refuse":
        raise SourceError(f"{text}; set `overlaps: warn` to install over it")
    ctx.report(Message(f"wheels: {text}", level="warning"))


# -- resolution -----------------------------------------------------------------------------


def _recipe_path(ctx: LayerContext, name: str) -> Path:
    return (ctx.session.recipe_dir / name).resolve()


def _inputs_key(spec: WheelsSpec, ctx: LayerContext) -> object:
    """What the resolution depends on: the requirements, or the content of the file given."""
    if spec.requirements:
        return ["requirements", spec.requirements]
    name = spec.requirements_file or spec.lock
    assert name is not None
    path = _recipe_path(ctx, name)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise SourceError(f"{path}: cannot read ({e.strerror or e})") from None
    return ["requirements_file" if spec.requirements_file else "lock", digest]


def _index(
    spec: WheelsSpec,
    ctx: LayerContext,
    origin: Origin,
    extra: Sequence[str] = (),
    primary: str | None = None,
    links: Sequence[str] = (),
    no_index: bool = False,
) -> Index:
    pip = read_pip_indexes()
    find_links = [
        *(str(_recipe_path(ctx, f)) if "://" not in f else f for f in spec.find_links),
        *links,
        *pip.find_links,
    ]
    if spec.no_index or no_index or pip.no_index:
        urls: tuple[str, ...] = ()
    else:
        chosen = ctx.session.settings.index_url or pip.index_url or spec.index_url or primary
        urls = index_urls(chosen, [*spec.extra_index_urls, *extra, *pip.extra_index_urls])
    config = IndexConfig(urls, tuple(dict.fromkeys(find_links)))
    fetcher = fetcher_for(ctx, origin, "set the index with --index-url or PIP_INDEX_URL")
    return Index(config, fetcher)


def _metadata_loader(index: Index) -> Callable[[Link], CoreMetadata]:
    def load(link: Link) -> CoreMetadata:
        data = index.metadata(link)
        if data is None:
            fetched = index.download(link)
            data = read_metadata_from_wheel(fetched.path, link.filename)
        return parse_metadata(data, link.filename)

    return load


def _resolve(
    spec: WheelsSpec,
    ctx: LayerContext,
    target: TargetPython,
    installed: dict[str, CoreMetadata],
    origin: Origin,
) -> list[Resolved]:
    if spec.lock:
        chosen = _from_pylock(spec, ctx, target, origin)
    else:
        pins = None
        prereleases = spec.prereleases
        if spec.requirements_file:
            file = read_requirements_file(_recipe_path(ctx, spec.requirements_file), target)
            requirements = file.requirements
            pins = file.pins
            prereleases = prereleases or file.prereleases
            index = _index(
                spec,
                ctx,
                origin,
                file.extra_index_urls,
                file.index_url,
                file.find_links,
                file.no_index,
            )
        else:
            requirements = []
            for n, text in enumerate(spec.requirements, 1):
                requirement = parse_requirement(text, f"requirements[{n}]")
                if applies(requirement, target, f"requirements[{n}]"):
                    requirements.append(requirement)
            index = _index(spec, ctx, origin)
        chosen = resolve(
            requirements,
            index,
            target,
            _metadata_loader(index),
            pins=pins,
            installed=installed,
            prereleases=prereleases,
        )
        chosen = [_with_sha256(c, index) for c in chosen]
    ctx.report(
        Message(
            f"wheels: {plural(len(chosen), 'wheel')} for {target.describe()}: "
            + ", ".join(f"{c.name} {c.version}" for c in chosen)
        )
    )
    return [
        Resolved(
            c.name,
            c.version,
            c.link.filename,
            c.link.url,
            c.link.sha256,
            c.requested,
            list(c.licenses),
        )
        for c in chosen
    ]


def _with_sha256(chosen: Chosen, index: Index) -> Chosen:
    """A wheel whose index gave no sha256 (a find-links directory): hashed from its file."""
    if chosen.link.sha256:
        return chosen
    fetched = index.download(chosen.link)
    return replace(chosen, link=replace(chosen.link, sha256=fetched.sha256))


def _from_pylock(
    spec: WheelsSpec, ctx: LayerContext, target: TargetPython, origin: Origin
) -> list[Chosen]:
    assert spec.lock is not None
    path = _recipe_path(ctx, spec.lock)
    locked = read_pylock(path, target)
    index = _index(spec, ctx, origin)
    load = _metadata_loader(index)
    out = []
    for wheel in locked:
        meta = load(wheel.link)
        if canonicalize_name(meta.name) != canonicalize_name(wheel.name):
            raise SourceError(f"{path}: {wheel.link.filename} holds {meta.name}, not {wheel.name}")
        out.append(Chosen(meta.name, meta.version, wheel.link, False, meta.licenses))
    return sorted(out, key=lambda c: canonicalize_name(c.name))


# -- downloads ------------------------------------------------------------------------------


class _Downloads:
    """The layer's wheels fetched in the background once started, each checked against the
    sha256 the lock file records before it is used, and pinned."""

    def __init__(self, ctx: LayerContext, wheels: Sequence[Resolved]) -> None:
        self.ctx = ctx
        self.wheels = wheels
        self._future: Future[list[Fetched]] | None = None
        self._mutex = threading.Lock()

    def start(self) -> None:
        with self._mutex:
            if self._future is not None:
                return
            future: Future[list[Fetched]] = Future()
            self._future = future
        threading.Thread(
            target=self._run, args=(future,), name="wheel-downloads", daemon=True
        ).start()

    def _run(self, future: Future[list[Fetched]]) -> None:
        try:
            downloads = [
                Download(w.url, f"wheel {w.filename}", "sha256", w.sha256) for w in self.wheels
            ]
            future.set_result(download_packages(self.ctx, downloads))
        except BaseException as e:  # handed to whoever writes the layer
            future.set_exception(e)

    def result(self) -> list[Fetched]:
        self.start()
        assert self._future is not None
        return self._future.result()
