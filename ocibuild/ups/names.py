"""UPS naming: bundle specs, versions (`v1_18_03` <-> `1.18.03`), OS -> flavor, qualifiers."""

from __future__ import annotations

import re
from dataclasses import dataclass

# pullProducts' OS names and the UPS flavor each stands for.
OS_FLAVORS = {
    "slf5": "Linux64bit+2.6-2.5",
    "slf6": "Linux64bit+2.6-2.12",
    "slf7": "Linux64bit+3.10-2.17",
    "sl7": "Linux64bit+3.10-2.17",
    "u14": "Linux64bit+3.19-2.19",
    "u16": "Linux64bit+4.4-2.23",
    "u18": "Linux64bit+4.15-2.27",
    "u20": "Linux64bit+5.4-2.31",
    "d13": "Darwin64bit+13",
    "d14": "Darwin64bit+14",
    "d15": "Darwin64bit+15",
    "d16": "Darwin64bit+16",
    "d17": "Darwin64bit+17",
    "d18": "Darwin64bit+18",
}
NULL_FLAVOR = "NULL"
_VERSION = re.compile(r"v\d\w*")
_BUNDLE_SPEC = re.compile(r"(?P<name>[\w.+-]+?)-(?P<version>v\d\w*)")


@dataclass(frozen=True)
class BundleSpec:
    name: str
    version: str  # UPS form: v1_18_03

    def __str__(self) -> str:
        return f"{self.name}-{self.version}"


def parse_bundle_spec(spec: str) -> BundleSpec:
    """`art-v1_18_03` -> BundleSpec("art", "v1_18_03"), as pullProducts' bundle-spec argument."""
    m = _BUNDLE_SPEC.fullmatch(spec.strip())
    if not m:
        raise ValueError(f"bundle {spec!r} is not NAME-vVERSION, like art-v1_18_03")
    return BundleSpec(m["name"], m["version"])


def check_version(version: str) -> str:
    if not _VERSION.fullmatch(version):
        raise ValueError(f"version {version!r} is not a UPS version like v1_18_03")
    return version


def dotted(version: str) -> str:
    """`v1_18_03` -> `1.18.03` (the spelling of manifest and tarball file names)."""
    return check_version(version)[1:].replace("_", ".")


def undotted(version: str) -> str:
    """`1.18.03` -> `v1_18_03`."""
    return "v" + version.removeprefix("v").replace(".", "_")


def flavor_for_os(os_name: str) -> str:
    try:
        return OS_FLAVORS[os_name]
    except KeyError:
        known = ", ".join(OS_FLAVORS)
        raise ValueError(f"unknown OS {os_name!r} (one of {known})") from None


def flavor_platforms(flavor: str) -> tuple[str, ...]:
    """The image platforms a UPS flavor's binaries run on: Linux64bit is x86-64 Linux, and
    UPS has no flavor for another Linux machine; NULL (no binaries) runs anywhere."""
    if flavor.startswith("Linux64bit"):
        return ("linux/amd64",)
    if flavor.startswith("Linux"):
        return ("linux/386",)
    if flavor in ("NULL", ""):
        return ()
    return ("darwin/amd64",) if flavor.startswith("Darwin") else ()


def os_for_flavor(flavor: str) -> str | None:
    return next((os for os, f in OS_FLAVORS.items() if f == flavor), None)


def qualifier_list(qualifiers: str) -> list[str]:
    """`e9:prof`, `e9-prof` or `+e9:+prof` -> ["e9", "prof"] (empty parts dropped)."""
    parts = re.split(r"[:\-]", qualifiers.strip().strip('"'))
    return [p.lstrip("+") for p in parts if p.lstrip("+")]


def colon_qualifiers(qualifiers: str) -> str:
    return ":".join(qualifier_list(qualifiers))


def dash_qualifiers(qualifiers: str) -> str:
    return "-".join(qualifier_list(qualifiers))


def version_file_name(flavor: str, qualifiers: str) -> str:
    """Name of an instance file in `<product>/<version>.version/`: `<flavor>_<q>_<q>`."""
    return flavor + "_" + "_".join(qualifier_list(qualifiers))


def env_name(product: str) -> str:
    """`ifdh_art` -> `IFDH_ART`: the stem of `SETUP_<P>` and `<P>_DIR`."""
    return re.sub(r"\W", "_", product).upper()
