"""A `setup` request, from a recipe, a SETUP_<PRODUCT> value or a table's setupRequired(), read
as upsugo.c reads a command line:

    prod [version] [-q quals] [-f flavor] [-H host[:host]] [-g chain|-c|-d|-n|-o|-t]
         [-z db[:db]] [-j] [-e] [-B]

an option's value attached (`-q+e9:+prof`) or not; words are split at blanks. What the request
tries: its chain (`current` when it names neither a version nor a chain), its flavors
(flavors.py: `-f F` gives `F ANY`, else the host flavors' list), its qualifier sets
(qualifiers.py), UPS_OVERRIDE's defaults (`-H`, `-q`, `-B`) added as upsugo.c adds them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocibuild.errors import SourceError
from ocibuild.ups.flavors import ANY, host_flavors
from ocibuild.ups.qualifiers import qualifier_sets

_WITH_VALUE = {"-f", "-g", "-H", "-m", "-M", "-O", "-q", "-r", "-U", "-z"}
_CHAINS = {"c": "current", "d": "development", "n": "new", "o": "old", "t": "test"}


@dataclass(frozen=True)
class Override:
    """UPS_OVERRIDE's options (upsuname.c ups_have_flavor_override): `-H`, `-q`, `-B`."""

    hosts: tuple[str, ...] = ()
    qualifiers: str = ""
    exact: bool = False


def parse_override(text: str) -> Override:
    words = text.split()
    values = {w: words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-H", "-q")}
    hosts = tuple(h for h in values.get("-H", "").split(":") if h)
    return Override(hosts, values.get("-q", ""), any(w.startswith("-B") for w in words))


@dataclass(frozen=True)
class Request:
    """One `setup` request."""

    product: str
    version: str = ""
    qualifiers: str = ""  # as typed: ${UPS_REQ_QUALIFIERS}
    chains: tuple[str, ...] = ()
    req_chain: str = ""  # the chain option as typed: ${UPS_REQ_CHAIN}
    flavor: str = ""  # -f
    hosts: tuple[str, ...] = ()  # -H
    databases: tuple[str, ...] = ()  # -z
    just_this: bool = False  # -j
    extended: bool = False  # -e
    exact: bool = False  # -B
    optional: bool = False
    via: str = ""  # who asked: "recipe.yaml:12" or "/products/art/v1/ups/art.table:30"

    def __str__(self) -> str:
        words = [self.product]
        if self.version:
            words.append(self.version)
        if self.req_chain:
            words.append(self.req_chain)
        if self.qualifiers:
            words += ["-q", self.qualifiers]
        if self.flavor:
            words += ["-f", self.flavor]
        return " ".join(words)

    def chain_names(self) -> tuple[str, ...]:
        """upsugo_ifornota: `current` when neither a version nor a chain is named."""
        return self.chains or (() if self.version else ("current",))

    def flavor_list(self) -> list[str]:
        if self.flavor:
            return [self.flavor, ANY]
        return host_flavors(self.hosts, self.exact)

    def qualifier_list(self, override: Override) -> list[str]:
        """upsugo_bldqual, UPS_OVERRIDE's qualifiers appended to the request's."""
        requested = self.qualifiers
        if override.qualifiers:
            requested = f"{requested}:{override.qualifiers}" if requested else override.qualifiers
        return qualifier_sets(requested)


def parse_request(text: str, optional: bool, where: str) -> Request:
    """upsugo_bldcmd: words split at blanks, options as upsugo_next reads them."""
    words = text.split()
    positional: list[str] = []
    options: dict[str, str] = {}
    chains: list[str] = []
    req_chain = ""
    flags: set[str] = set()
    i = 0
    while i < len(words):
        word = words[i]
        if word[:2] in _WITH_VALUE:
            value = word[2:]
            if not value:
                if i + 1 >= len(words):
                    raise SourceError(f"option {word} without a value in {text!r}", where)
                i += 1
                value = words[i]
            options[word[:2]] = value
            if word[:2] == "-g":
                chains.append(value)
                req_chain = f"-g {value}"
        elif word.startswith("-") and len(word) > 1:
            for letter in word[1:]:
                flags.add(letter)
                if letter in _CHAINS:
                    chains.append(_CHAINS[letter])
                    req_chain = f"-{letter}"
        else:
            positional.append(word)
        i += 1
    if not positional:
        raise SourceError(f"setup without a product name: {text!r}", where)
    return Request(
        product=positional[0],
        version=positional[1] if len(positional) > 1 else "",
        qualifiers=options.get("-q", ""),
        chains=tuple(chains),
        req_chain=req_chain,
        flavor=options.get("-f", ""),
        hosts=tuple(h for h in options.get("-H", "").split(":") if h),
        databases=tuple(d for d in options.get("-z", "").split(":") if d),
        just_this="j" in flags,
        extended="e" in flags,
        exact="B" in flags,
        optional=optional,
        via=where,
    )
