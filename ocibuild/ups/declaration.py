"""UPS `.version` and `.chain` files: `KEY = value` lines, one block per declared instance.

    FILE = version                      FILE = chain
    PRODUCT = art                       PRODUCT = ups
    VERSION = v1_18_03                  CHAIN = current
    FLAVOR = Linux64bit+2.6-2.12        FLAVOR = Linux64bit+2.6-2.12
    QUALIFIERS = "e9:prof"              VERSION = v5_1_4
      PROD_DIR = art/v1_18_03           QUALIFIERS = ""
      UPS_DIR = ups
      TABLE_FILE = art.table

Each `FLAVOR =` starts an instance; keys are case-insensitive; `#` starts a comment line.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocibuild.errors import Origin, SourceError


@dataclass(frozen=True)
class Instance:
    """One declared instance of a product version."""

    product: str
    version: str
    flavor: str
    qualifiers: str = ""
    prod_dir: str = ""
    ups_dir: str = ""
    table_file: str = ""
    table_dir: str = ""
    source: str = ""  # the file that declared it
    variables: tuple[tuple[str, str], ...] = ()  # `_name = value` lines, for `${_name}`


def parse_declaration(text: str, where: str) -> list[Instance]:
    """Instances of a `.version` or `.chain` file; `where` names the file in errors."""
    header: dict[str, str] = {}
    blocks: list[dict[str, str]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise SourceError(f"expected KEY = value, got {line!r}", Origin(where, number))
        key = key.strip()
        value = value.strip().strip('"').strip()
        if not key.startswith("_"):
            key = key.strip().upper()
        if key == "FLAVOR":
            blocks.append({})
        (blocks[-1] if blocks else header)[key.strip()] = value
    kind = header.get("FILE", "").lower()
    if kind not in ("version", "chain"):
        raise SourceError(f"not a UPS version or chain file (FILE = {kind or '?'})", where)
    product = header.get("PRODUCT", "")
    if not product:
        raise SourceError("no PRODUCT", where)
    out = []
    for block in blocks:
        version = block.get("VERSION") or header.get("VERSION", "")
        if not version:
            raise SourceError(f"instance of flavor {block['FLAVOR']} has no VERSION", where)
        out.append(
            Instance(
                product=product,
                version=version,
                flavor=block["FLAVOR"],
                qualifiers=block.get("QUALIFIERS", ""),
                prod_dir=block.get("PROD_DIR", ""),
                ups_dir=block.get("UPS_DIR", ""),
                table_file=block.get("TABLE_FILE", ""),
                table_dir=block.get("TABLE_DIR", ""),
                source=where,
                variables=tuple((k, v) for k, v in block.items() if k.startswith("_")),
            )
        )
    return out
