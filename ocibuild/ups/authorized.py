"""AUTHORIZED_NODES (upsutl.c `upsutl_is_authorized`, called for the top product of a setup
only): the real setup refuses to set a product up on a node whose name (cut at its first `.`)
is not part of the value (`strstr`: `xprobehostx` allows `probehost`), unless the value starts
with `*`. It is looked for in the table instance, the version instance, the chain instance
(when a chain was used) and the database's dbconfig; the first that refuses refuses. An image
has no node yet: here each restriction is a warning naming the nodes, and the setup goes on.
"""

from __future__ import annotations

from collections.abc import Callable

from ocibuild.ups.scope import Match


def check_nodes(match: Match, product: str, warn: Callable[[str], None]) -> None:
    """Warn about each AUTHORIZED_NODES of the instance that does not allow every node."""
    places = [
        (match.table, match.table_path),
        (match.version, match.version.source if match.version else ""),
        (match.chain, match.chain.source if match.chain else ""),
    ]
    found = [(i.get("AUTHORIZED_NODES"), path) for i, path in places if i is not None]
    found.append((match.config.get("AUTHORIZED_NODES"), f"{match.db}/.upsfiles/dbconfig"))
    for nodes, path in found:
        if nodes and not nodes.startswith("*"):
            warn(
                f"{path}: AUTHORIZED_NODES = {nodes}: the real setup of {product} runs only on a "
                f"node whose name is part of {nodes!r}; an image has no node yet, so ocibuild "
                "does not check it"
            )
