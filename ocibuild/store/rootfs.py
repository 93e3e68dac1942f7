"""The merged filesystem of an image's layers, read without unpacking: what a layer source
sees of the image below it (`LowerFS`)."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from typing import BinaryIO, Protocol, cast

from ocibuild.layer.entry import clean_path, read_whiteout
from ocibuild.layer.reader import decompressed, members
from ocibuild.layer.safepath import check_member_numbers
from ocibuild.oci import Descriptor
from ocibuild.store.verify import VerifiedBlob


class Blobs(Protocol):
    """Where layer blobs are read from: a `Store`, or a build's `Transaction`."""

    def open_blob(self, digest: str) -> BinaryIO: ...


class ImageFS:
    """Files of the union of `layers` (bottom first), honouring OCI whiteouts."""

    def __init__(self, store: Blobs, layers: Sequence[Descriptor]) -> None:
        self.store = store
        self.layers = list(layers)

    def read(self, path: str) -> bytes | None:
        wanted = clean_path(path)
        return self.collect(lambda p: p == wanted).get(wanted)

    def collect(self, match: Callable[[str], bool]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        shadowed: set[str] = set()  # paths an upper layer already decided (file, dir or gone)
        hidden: set[str] = set()  # prefixes removed by whiteouts of upper layers
        opaque: set[str] = set()  # dirs whose lower contents upper layers made opaque
        for layer in reversed(self.layers):
            layer_hidden: set[str] = set()
            layer_opaque: set[str] = set()
            layer_paths: set[str] = set()
            with (
                VerifiedBlob(self.store.open_blob(layer.digest), layer.digest, layer.size) as blob,
                decompressed(cast(BinaryIO, blob), layer.media_type) as tar,
            ):
                for info, archive in members(tar, f"layer {layer.digest}"):
                    check_member_numbers(info, f"layer {layer.digest}")
                    path = clean_path(info.name)
                    whiteout = read_whiteout(path)
                    if whiteout is not None:
                        (layer_opaque if whiteout.opaque else layer_hidden).add(whiteout.path)
                        continue
                    layer_paths.add(path)
                    if path in shadowed or under(path, hidden) or _strictly_under(path, opaque):
                        continue
                    if info.isfile() and match(path):
                        f = archive.extractfile(info)
                        if f is not None:
                            found[path] = f.read()
                blob.finish()  # the layer is what its digest says, or this raises
            shadowed |= layer_paths
            hidden |= layer_hidden
            opaque |= layer_opaque
        return found


def under(path: str, prefixes: set[str]) -> bool:
    """`path` is one of `prefixes` or lies below one."""
    if not prefixes:
        return False
    while path:
        if path in prefixes:
            return True
        path = posixpath.dirname(path)
    return False


def _strictly_under(path: str, dirs: set[str]) -> bool:
    return bool(dirs) and under(posixpath.dirname(path), dirs)
