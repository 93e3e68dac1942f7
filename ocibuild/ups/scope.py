"""One product instance being set up: the request, the declared and table instances, the action
walked, and the variables UPS replaces in its table lines before parsing them (upsget.c):
`${UPS_...}` (those UPS knows), `${_name}` (the instance's own) and `${PRODUCTS}`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ocibuild.ups.database import Database
from ocibuild.ups.declaration import Instance
from ocibuild.ups.lookup import Found, Lookup
from ocibuild.ups.request import Request
from ocibuild.ups.table import TableInstance

_TRANSLATED = re.compile(r"\$\{(UPS_[^}]*|_[^}]*|PRODUCTS)\}")


@dataclass(frozen=True)
class Scope:
    request: Request
    instance: Instance
    table: TableInstance | None
    table_path: str
    action: str  # the action walked: setup, or unsetup before a new setup
    translations: Mapping[str, str]

    @property
    def setup_string(self) -> str:
        """SETUP_<PRODUCT>'s value."""
        return self.translations["UPS_SETUP"]

    def translate(self, text: str) -> str:
        """The line with UPS's variables replaced."""
        version_variables = dict(self.instance.variables)
        table_variables = self.table.variables if self.table else {}

        def value(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("_"):
                return version_variables.get(name, table_variables.get(name, ""))
            return self.translations.get(name, m.group())

        return _TRANSLATED.sub(value, text)


def enter_scope(lookup: Lookup, request: Request, found: Found, action: str = "setup") -> Scope:
    """The scope of `found` for `request`; NoTableInstance when its table has no instance
    for it."""
    table = lookup.table(request, found.instance)
    translations = _translations(lookup.db, lookup.flavors[0], request, found)
    return Scope(request, found.instance, table.instance, table.path, action, translations)


def _translations(db: Database, os_flavor: str, request: Request, found: Found) -> dict[str, str]:
    i = found.instance
    return {
        "UPS_PROD_NAME_UC": i.product.upper(),
        "UPS_PROD_NAME": i.product,
        "UPS_PROD_VERSION": i.version,
        "UPS_PROD_DIR": db.prod_dir(i),
        "UPS_UPS_DIR": db.ups_dir(i),
        "UPS_VERBOSE": "",
        "UPS_EXTENDED": "1" if request.extended else "",
        "UPS_THIS_DB": db.path,
        "UPS_OS_FLAVOR": os_flavor,
        "UPS_PROD_FLAVOR": i.flavor,
        "UPS_REQ_QUALIFIERS": found.qualifiers,
        "UPS_PROD_QUALIFIERS": _sorted(i.qualifiers),
        "UPS_SHELL": "sh",
        "UPS_OPTIONS": "",
        "UPS_SETUP": _setup_string(db, request, i),
        "UPS_COMPILE": f"{db.path}/{i.product}/{i.version}.{i.flavor}.compile",
        "UPS_ORIGIN": "",
        "UPS_SOURCE": ".",
        "UPS_REQ_CHAIN": "" if request.version else request.chain,
        "PRODUCTS": db.path,
    }


def _setup_string(db: Database, request: Request, i: Instance) -> str:
    """SETUP_<P>: `product version -f FLAVOR -z DB`, then `-q QUALS` (sorted) when
    qualified."""
    out = f"{i.product} {i.version} -f {i.flavor} -z {db.path}"
    if i.qualifiers:
        out += f" -q {_sorted(i.qualifiers)}"
    if request.just_this:
        out += " -j"
    if request.extended:
        out += " -e"
    return out


def _sorted(qualifiers: str) -> str:
    """UPS reads qualifiers sorted (upsfil.c trim_qualifiers): `prof:e19` is `e19:prof`."""
    return ":".join(sorted(q for q in re.sub(r"[\s\"']", "", qualifiers).split(":") if q))
