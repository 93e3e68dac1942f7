"""Package URLs (github.com/package-url/purl-spec): `pkg:type/namespace/name@version?qualifiers`."""

from __future__ import annotations

from urllib.parse import quote


def purl(kind: str, namespace: str, name: str, version: str, **qualifiers: str) -> str:
    """A package URL; components percent-encoded as the spec asks (':' kept, as it is
    unambiguous there), namespace lower-cased, qualifiers sorted by key, empty ones left out."""
    out = f"pkg:{kind}/"
    if namespace:
        out += quote(namespace.lower(), safe=":") + "/"
    out += quote(name, safe=":")
    if version:
        out += "@" + quote(version, safe=":")
    pairs = [f"{k}={quote(v, safe=':')}" for k, v in sorted(qualifiers.items()) if v]
    return out + ("?" + "&".join(pairs) if pairs else "")
