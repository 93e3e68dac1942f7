"""What each layer source's entry in a recipe looks like: the spec types the recipe decoder
fills (unknown keys refused, values checked here, where they are read), kept apart from the
sources' implementations so that reading a recipe loads none of them."""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from ocibuild.errors import Origin, UnsafePathError
from ocibuild.layer.entry import clean_path
from ocibuild.progress import plural
from ocibuild.spack.layering import DEFAULT_MAX_LAYERS, check_max_layers
from ocibuild.spack.layering import check_layering as check_spack_layering
from ocibuild.ups.layering import check_layering
from ocibuild.ups.names import check_version, flavor_for_os, parse_bundle_spec


def nonempty(values: list[Any]) -> list[Any]:
    """Recipe check of the `repos:` and `packages:` lists."""
    if not values:
        raise ValueError("must not be empty")
    return values


# -- files ----------------------------------------------------------------------------------


def parse_mode(value: str | int) -> int:
    if isinstance(value, int):
        mode = value
    else:
        try:
            mode = int(value, 8)
        except ValueError:
            raise ValueError(f'{value!r} is not an octal number like "0644"') from None
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"mode {oct(mode)} is out of range")
    return mode


MAX_OWNER_ID = 2**31 - 1  # what every tar reader and container runtime takes as a uid or gid


def parse_owner(value: str | int) -> tuple[int, int]:
    text = str(value)
    uid, _, gid = text.partition(":")
    try:
        ids = int(uid), int(gid or uid)
    except ValueError:
        raise ValueError(f'{text!r} must be numeric, like "1000:1000"') from None
    if not all(0 <= i <= MAX_OWNER_ID for i in ids):
        raise ValueError(f"{text!r}: uid and gid must be in 0..{MAX_OWNER_ID}")
    return ids


@dataclass(frozen=True)
class FileItem:
    dest: str
    src: str | None = None
    content: str | None = field(default=None, metadata={"verbatim": True})
    mode: str | int | None = field(
        default=None, metadata={"check": lambda v: None if v is None else parse_mode(v)}
    )
    owner: str | int | None = field(
        default=None, metadata={"check": lambda v: None if v is None else parse_owner(v)}
    )
    exclude: list[str] = field(default_factory=list)
    preserve_modes: bool = False
    hint: str | None = None  # what to do when src does not exist (a build step, a download)
    origin: Origin | None = None

    def __post_init__(self) -> None:
        if (self.src is None) == (self.content is None):
            raise ValueError("give exactly one of 'src' or 'content'")


# -- profile --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileSpec:
    lines: str
    name: str = ""


# -- ups ------------------------------------------------------------------------------------


def _check_bundle(value: str | None) -> str | None:
    if value is not None:
        parse_bundle_spec(value)
    return value


def _check_os(value: str) -> str:
    flavor_for_os(value)
    return value


def _check_products(value: list[list[str]]) -> list[list[str]]:
    for item in value:
        if not 2 <= len(item) <= 4:
            raise ValueError(
                f"{item!r}: each product is [name, version, qualifiers] (and optionally the "
                "tarball file name)"
            )
        check_version(item[1])
    return value


@dataclass(frozen=True)
class UpsSpec:
    os: str = field(metadata={"check": _check_os})
    bundle: str | None = field(default=None, metadata={"check": _check_bundle})
    qualifiers: str = ""
    build: str = ""
    products: list[list[str]] = field(default_factory=list, metadata={"check": _check_products})
    into: str = "/products"
    layering: str = field(default="auto", metadata={"check": check_layering})
    origin: Origin | None = None

    def __post_init__(self) -> None:
        if (self.bundle is None) == (not self.products):
            raise ValueError("give exactly one of 'bundle' or 'products'")
        if self.products and (self.qualifiers or self.build):
            raise ValueError("'qualifiers' and 'build' go with 'bundle'; give each product's own")
        try:
            clean_path(self.into, "into")
        except UnsafePathError as e:
            raise ValueError(str(e)) from None

    @property
    def what(self) -> str:
        if self.bundle:
            words = [self.bundle, self.os, self.qualifiers, self.build]
            return " ".join(w for w in words if w)
        return f"{plural(len(self.products), 'product')} ({self.os})"


# -- spack ----------------------------------------------------------------------------------


def _check_roots(value: list[str]) -> list[str]:
    from ocibuild.spack.dag import parse_root

    for text in value:
        parse_root(text)
    return value


def _check_padding(value: int | bool) -> int | bool:
    if not isinstance(value, bool) and not 0 <= value <= 4096:
        raise ValueError(f"padded_length {value} is out of range (0..4096, or true)")
    return value


@dataclass(frozen=True)
class SpackInto:
    """Spack's own `install_tree` keys (default projections)."""

    root: str = "/opt/spack"
    padded_length: int | bool = field(default=False, metadata={"check": _check_padding})

    def __post_init__(self) -> None:
        if not self.root.startswith("/"):
            raise ValueError(f"root {self.root!r} must be an absolute path")
        try:
            clean_path(self.root, "root")
        except UnsafePathError as e:
            raise ValueError(str(e)) from None


@dataclass(frozen=True)
class SpackSpec:
    mirror: str = field(metadata={"verbatim": True})  # expanded by plan(): a mirror
    specs: list[str] = field(default_factory=list, metadata={"check": _check_roots})
    lock: str | None = None  # a spack.lock, relative to the recipe
    keys: list[str] = field(default_factory=list)  # public key files that may sign the specs
    mirror_keys: bool = False  # also trust the keys the mirror publishes (build_cache/_pgp)
    trusted: bool = False  # an unsigned cache, trusted as it is
    into: SpackInto = field(default_factory=SpackInto)
    view: str | None = None
    layering: str = field(default="auto", metadata={"check": check_spack_layering})
    max_layers: int = field(default=DEFAULT_MAX_LAYERS, metadata={"check": check_max_layers})
    origin: Origin | None = None

    def __post_init__(self) -> None:
        if bool(self.specs) == (self.lock is not None):
            raise ValueError("give exactly one of 'specs' or 'lock'")
        if not (self.keys or self.mirror_keys or self.trusted):
            raise ValueError(
                "give 'keys' (the public keys that sign the cache's specs), 'mirror_keys: true' "
                "or, for an unsigned cache, 'trusted: true'"
            )
        if self.view is not None:
            try:
                clean_path(self.view, "view")
            except UnsafePathError as e:
                raise ValueError(str(e)) from None

    @property
    def what(self) -> str:
        roots = self.specs if self.specs else [f"lock {self.lock}"]
        listed = ", ".join(roots[:3]) + (f" and {len(roots) - 3} more" if len(roots) > 3 else "")
        return f"{listed} from {self.mirror}"


# -- setup ----------------------------------------------------------------------------------


def check_chain(value: str) -> str:
    """`setup:`'s chain: a chain name, or one of setup's chain flags."""
    if value.startswith("-") and value not in ("-c", "-n", "-t", "-d", "-o"):
        raise ValueError(f"{value!r} is a chain name, or one of -c -n -t -d -o")
    return value


@dataclass(frozen=True)
class SetupSpec:
    """`setup PRODUCT [VERSION] [-q QUALIFIERS] [-g CHAIN] [-f FLAVOR] [-H HOST_FLAVOR]
    [-z DATABASES]` after `source INTO/setup` (docs/ups.md)."""

    product: str
    version: str = ""
    qualifiers: str = ""
    # -g NAME, or -c -n -t -d -o; without a version the default is current (as -g current)
    chain: str = field(default="", metadata={"check": check_chain})
    flavor: str = ""  # -f: this flavor only (and ANY)
    host_flavor: str = ""  # -H: the flavor the image runs as (A:B for two)
    databases: list[str] = field(default_factory=list)  # -z: instead of PRODUCTS
    into: str = "/products"
    # what the real setup cannot resolve (a required product, action or line): ups fails as
    # it does; refuse always; warn never
    missing: Literal["ups", "refuse", "warn"] = "ups"
    origin: Origin | None = None


# -- rpm ------------------------------------------------------------------------------------


def _one_of_keys_or_trusted(keys: str | None, trusted: bool, word: str) -> None:
    if keys is not None and trusted:
        raise ValueError(f"give '{word}' or 'trusted: true', not both")


@dataclass(frozen=True)
class RpmRepo:
    """A yum repository as dnf's .repo files describe one. `gpgkey`: a key file (relative to
    the recipe) or an armored key block; `gpgcheck` checks each package's header signature,
    `repo_gpgcheck` the index's (`repodata/repomd.xml.asc`); `trusted: true` checks nothing."""

    url: str  # expanded by plan(): a mirror
    gpgkey: str | None = None
    gpgcheck: bool = True
    repo_gpgcheck: bool = False
    trusted: bool = False
    origin: Origin | None = None

    def __post_init__(self) -> None:
        _one_of_keys_or_trusted(self.gpgkey, self.trusted, "gpgkey")
        if self.gpgkey is not None and not (self.gpgcheck or self.repo_gpgcheck):
            raise ValueError("'gpgcheck' and 'repo_gpgcheck' are both off: the key checks nothing")


def rpm_repo(value: str | RpmRepo) -> RpmRepo:
    """A `repos:` item: a URL alone is a repository with no key given."""
    return RpmRepo(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class RpmSpec:
    repos: list[str | RpmRepo] = field(metadata={"check": nonempty, "verbatim": True})
    packages: list[str] = field(metadata={"check": nonempty})
    exclude: list[str] = field(default_factory=list)
    arch: str | None = None  # rpm's name [default: the image's platform's: x86_64, aarch64]
    origin: Origin | None = None


# -- deb ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DebRepo:
    url: str = field(metadata={"verbatim": True})  # expanded by plan(): a mirror
    suite: str = field(metadata={"verbatim": True})
    components: list[str] = field(default_factory=lambda: ["main"])
    # deb822's Signed-By: a keyring file (relative to the recipe) or an armored key block
    signed_by: str | None = None
    trusted: bool = False  # apt's word: the repository's indexes are not verified
    check_valid_until: bool = True  # apt's Check-Valid-Until (off for archive.debian.org)
    origin: Origin | None = None

    def __post_init__(self) -> None:
        _one_of_keys_or_trusted(self.signed_by, self.trusted, "signed_by")


@dataclass(frozen=True)
class DebSpec:
    repos: list[DebRepo] = field(metadata={"check": nonempty})
    packages: list[str] = field(metadata={"check": nonempty})
    exclude: list[str] = field(default_factory=list)
    arch: str | None = None  # Debian's name [default: the image's platform's: amd64, arm64]
    origin: Origin | None = None


# -- configure ------------------------------------------------------------------------------

ConfigureEffect = Literal["base-files", "alternatives", "ca-certificates", "bytecode"]
CONFIGURE_EFFECTS: tuple[ConfigureEffect, ...] = typing.get_args(ConfigureEffect)


@dataclass(frozen=True)
class ConfigureSpec:
    """What the maintainer scripts of the image's Debian packages would have made."""

    effects: list[ConfigureEffect] = field(default_factory=lambda: list(CONFIGURE_EFFECTS))
    origin: Origin | None = None


# -- user -----------------------------------------------------------------------------------

USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
MAX_ID = 2**31 - 2


def _user_name(value: str) -> str:
    if not USER_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid user name (lower case, digits, _ and -)")
    return value


def _passwd_field(value: str) -> str:
    """A field of /etc/passwd: a ':' or a line break would add fields or whole accounts."""
    bad = next((c for c in value if c == ":" or ord(c) < 0x20 or ord(c) == 0x7F), None)
    if bad is not None:
        raise ValueError(f"{value!r} contains {bad!r}, which /etc/passwd cannot hold")
    return value


def _optional_passwd_field(value: str | None) -> str | None:
    return None if value is None else _passwd_field(value)


def _id(value: int | None) -> int | None:
    if value is not None and not 0 < value <= MAX_ID:
        raise ValueError(f"{value} is not a non-root id (1..{MAX_ID})")
    return value


@dataclass(frozen=True)
class UserSpec:
    name: str = field(metadata={"check": _user_name})
    uid: int = field(default=1000, metadata={"check": _id})
    gid: int | None = field(default=None, metadata={"check": _id})
    home: str | None = field(default=None, metadata={"check": _optional_passwd_field})
    shell: str = field(default="/bin/sh", metadata={"check": _passwd_field})
    groups: list[str] = field(default_factory=list)
    gecos: str = field(default="", metadata={"check": _passwd_field})
    set_user: bool = True
    origin: Origin | None = None


# -- wheels ---------------------------------------------------------------------------------


def _python_version(value: str | None) -> str | None:
    if value is not None:
        from ocibuild.python.target import parse_version

        parse_version(value)
    return value


def _python_platform(value: str | None) -> str | None:
    if value is not None:
        from ocibuild.python.target import parse_platform

        parse_platform(value)
    return value


def _absolute(value: str | None) -> str | None:
    if value is not None and not value.startswith("/"):
        raise ValueError(f"{value!r} must be an absolute path in the image")
    return value


@dataclass(frozen=True)
class PythonSpec:
    """The image's Python, where it cannot be read from the image (or should not be)."""

    version: str | None = field(default=None, metadata={"check": _python_version})  # "3.11"
    platform: str | None = field(default=None, metadata={"check": _python_platform})
    interpreter: str | None = field(default=None, metadata={"check": _absolute})
    origin: Origin | None = None


@dataclass(frozen=True)
class WheelsSpec:
    requirements: list[str] = field(default_factory=list)
    requirements_file: str | None = None  # relative to the recipe
    lock: str | None = None  # a pylock.toml (PEP 751), relative to the recipe
    index_url: str | None = field(default=None, metadata={"verbatim": True})
    extra_index_urls: list[str] = field(default_factory=list)
    find_links: list[str] = field(default_factory=list)  # directories relative to the recipe
    no_index: bool = False
    target: str | None = field(default=None, metadata={"check": _absolute})  # a venv
    compile: bool = True
    python: PythonSpec | None = None
    overlaps: Literal["refuse", "warn"] = "refuse"
    prereleases: bool = False
    origin: Origin | None = None

    def __post_init__(self) -> None:
        given = [bool(self.requirements), self.requirements_file is not None, self.lock is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of 'requirements', 'requirements_file' or 'lock'")
