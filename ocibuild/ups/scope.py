"""One matched instance as its table lines see it (upsget.c): the chain, version and table
instances ups matched, and the variables it replaces in a line before parsing it
(`upsget_translation`): `${UPS_...}` (those upsget.c knows), `${_name}` (the chain's, else the
version's, else the table's user key), `${PRODUCTS}` (the command's databases) and `~/`.

A value comes from the chain instance if a chain was used, else the version instance, else the
table instance (`get_element`): SETUP_<P> is `<product> <version> -f <flavor> -z <database>
[-q <qualifiers>][ -j][ -e]`, <P> the upper-cased product of that instance, so a `.version` or
`.chain` file naming another PRODUCT renames the setup.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ocibuild.ups.request import Request
from ocibuild.ups.upsfile import UpsInstance

_TRANSLATED = re.compile(r"\$\{(UPS_[^}]*|_[^}]*|PRODUCTS)\}")


@dataclass(frozen=True)
class Match:
    """What upsmat.c matched for a request: its instances and the database."""

    db: str
    config: Mapping[str, str]  # the database's dbconfig
    chain: UpsInstance | None
    version: UpsInstance | None
    table: UpsInstance | None
    table_path: str  # the table file, "" without one

    def element(self, key: str) -> str | None:
        """upsget.c get_element: the chain's value, else the version's, else the table's."""
        for instance in (self.chain, self.version, self.table):
            if instance is not None and instance.get(key) is not None:
                return instance.get(key)
        return None

    def user_value(self, name: str) -> str | None:
        for instance in (self.chain, self.version, self.table):
            if instance is not None:
                value = instance.user_value(name)
                if value is not None:
                    return value
        return None

    @property
    def declared_in(self) -> str:
        """The file that declared the instance (for messages)."""
        for instance in (self.version, self.chain, self.table):
            if instance is not None:
                return instance.source
        return self.db

    def product(self, requested: str) -> str:
        return self.element("PRODUCT") or requested


@dataclass(frozen=True)
class Variables:
    """upsget.c's g_var_subs for a matched instance, each computed when a line asks for it
    (as upsget.c does: ${UPS_PROD_DIR} translates PROD_DIR again each time)."""

    request: Request
    match: Match
    databases: tuple[str, ...]
    prod_dir: Callable[[Match], str]
    ups_dir: Callable[[Match], str]

    def get(self, name: str) -> str | None:
        request, match = self.request, self.match
        product = match.product(request.product)
        simple = {
            "UPS_PROD_NAME_UC": product.upper(),
            "UPS_PROD_NAME": product,
            "UPS_PROD_VERSION": match.element("VERSION") or "",
            "UPS_VERBOSE": "",
            "UPS_EXTENDED": "1" if request.extended else "",
            "UPS_THIS_DB": match.db,
            "UPS_OS_FLAVOR": request.hosts[0] if request.hosts else "",
            "UPS_PROD_FLAVOR": match.element("FLAVOR") or "",
            "UPS_REQ_QUALIFIERS": request.qualifiers,
            "UPS_PROD_QUALIFIERS": match.element("QUALIFIERS") or "",
            "UPS_SHELL": "sh",
            "UPS_OPTIONS": "",
            "UPS_ORIGIN": match.element("ORIGIN") or "",
            "UPS_SOURCE": ".",
            "UPS_REQ_CHAIN": request.req_chain,
            "PRODUCTS": ":".join(self.databases),
        }
        if name in simple:
            return simple[name]
        if name == "UPS_PROD_DIR":
            return self.prod_dir(match)
        if name == "UPS_UPS_DIR":
            return self.ups_dir(match)
        if name == "UPS_SETUP":
            return setup_string(request, match)
        if name == "UPS_COMPILE":
            return _compile_file(match, product)
        return None


@dataclass(frozen=True)
class Scope:
    """A matched instance, as its actions' lines see it."""

    variables: Variables
    home: str

    @property
    def request(self) -> Request:
        return self.variables.request

    @property
    def match(self) -> Match:
        return self.variables.match

    @property
    def product(self) -> str:
        """The product as SETUP_<P> names it."""
        return self.match.product(self.request.product)

    @property
    def setup_string(self) -> str:
        return setup_string(self.request, self.match)

    @property
    def table_path(self) -> str:
        return self.match.table_path or self.match.declared_in

    def translate(self, text: str) -> str:
        """upsget_translation: the line with ups's variables replaced."""

        def value(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("_"):
                return self.match.user_value(name) or ""
            found = self.variables.get(name)
            return m.group() if found is None else found

        text = _TRANSLATED.sub(value, text)
        return re.sub(r"~(?=/)", self.home, text) if "~" in text else text


def setup_string(request: Request, match: Match) -> str:
    """upsget.c upsget_envstr: SETUP_<P>'s value."""
    product = match.product(request.product)
    out = f"{product} {match.element('VERSION') or ''} -f {match.element('FLAVOR') or ''}"
    out += f" -z {match.db}"
    quals = match.element("QUALIFIERS")
    if quals:
        out += f" -q {quals}"
    if request.just_this:
        out += " -j"
    if request.extended:
        out += " -e"
    return out


def _compile_file(match: Match, product: str) -> str:
    """upsget.c upsget_compile: ${UPS_COMPILE}."""
    directory = match.element("COMPILE_DIR") or f"{match.db}/{product}"
    name = match.element("COMPILE_FILE")
    if name:
        return f"{directory}/{name}"
    parts = [p for p in (match.element("VERSION"), match.element("FLAVOR")) if p]
    return f"{directory}/{'.'.join([*parts, 'compile'])}"
