"""dpkg's database: `/var/lib/dpkg/status` and `/var/lib/dpkg/info/<package>.*`.

Written so `dpkg -l` and `dpkg -L` inside the image know the packages a layer unpacked.
They are marked `install ok installed` although their maintainer scripts did not run (the
record in /var/lib/ocibuild/packages.json says which were skipped).
"""

from __future__ import annotations

from ocibuild.ospkg.deb822 import format_paragraph, paragraphs
from ocibuild.ospkg.debresolve import InstalledDeb
from ocibuild.ospkg.debver import parse_relations

STATUS_PATH = "var/lib/dpkg/status"
INFO_DIR = "var/lib/dpkg/info"
INFO_FORMAT = ("var/lib/dpkg/info/format", b"1\n")  # multiarch names: info/<name>:<arch>.*
DPKG_DIRS = ("var/lib/dpkg", "var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers")
SCRIPT_FILES = ("preinst", "postinst", "prerm", "postrm", "config")
_FIRST = ("Package", "Status")


def parse_status(text: str) -> list[dict[str, str]]:
    return list(paragraphs(text.splitlines()))


def installed_packages(status: list[dict[str, str]]) -> list[InstalledDeb]:
    out = []
    for p in status:
        state = p.get("Status", "").split()
        if len(state) == 3 and state[2] == "installed" and "Package" in p:
            provides = tuple(g[0] for g in parse_relations(p.get("Provides", "")))
            out.append(
                InstalledDeb(
                    p["Package"], p.get("Version", ""), p.get("Architecture", ""), provides
                )
            )
    return out


def status_paragraph(control: dict[str, str], conffile_md5: dict[str, str]) -> dict[str, str]:
    """The status entry of an unpacked package: its control fields with Status and Conffiles."""
    fields = {"Package": control["Package"], "Status": "install ok installed"}
    for name, value in control.items():
        if name == "Description" and conffile_md5:
            fields["Conffiles"] = _conffiles(conffile_md5)
        if name not in _FIRST:
            fields[name] = value
    if conffile_md5 and "Conffiles" not in fields:
        fields["Conffiles"] = _conffiles(conffile_md5)
    return fields


def _conffiles(md5s: dict[str, str]) -> str:
    return "\n" + "\n".join(f" /{path} {md5}" for path, md5 in md5s.items())


def status_bytes(base: list[dict[str, str]], added: list[dict[str, str]]) -> bytes:
    """The base image's status with `added` (replacing entries of the same package), sorted."""

    def key(p: dict[str, str]) -> tuple[str, str]:
        same = p.get("Multi-Arch") == "same"
        return (p.get("Package", ""), p.get("Architecture", "") if same else "")

    merged = {key(p): p for p in base}
    merged.update((key(p), p) for p in added)
    return "\n".join(format_paragraph(merged[k]) for k in sorted(merged)).encode()


def info_name(control: dict[str, str]) -> str:
    """`name`, or `name:arch` for Multi-Arch: same packages (dpkg's info file naming)."""
    if control.get("Multi-Arch") == "same":
        return f"{control['Package']}:{control.get('Architecture', '')}"
    return control["Package"]


def list_file(paths: list[str]) -> bytes:
    return ("/.\n" + "".join(f"/{p}\n" for p in paths)).encode()


def md5sums_file(md5s: dict[str, str]) -> bytes:
    """info/<package>.md5sums as dpkg writes it for a package that ships none."""
    return "".join(f"{md5}  {path}\n" for path, md5 in md5s.items()).encode()
