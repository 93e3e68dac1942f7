"""Images taken out of podman-hpc's squash store (`ocibuild rmi --podman-hpc SQUASH_DIR NAME`):
a name from its image, the image with its last name, then every layer no image left needs,
with its tar-split, directory, link and squash; under the store's locks, records first.
podman-hpc's own `rmsqi` removes an image's top layer whatever else uses it (docs/commands.md).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import NotFoundError
from ocibuild.store.cstorage import Record, Records, SquashDir, locked_records, names_of
from ocibuild.store.layout import Store
from ocibuild.store.rootdir import remove_tree

BUSY_PATIENCE = 5.0  # seconds a directory still in use (a mount being taken down) is waited for


@dataclass(frozen=True)
class Removal:
    untagged: tuple[str, ...]
    removed_images: tuple[str, ...]
    removed_layers: tuple[str, ...]
    left: tuple[str, ...] = ()  # files no record points at that could not be removed (in use)


def remove_podman_hpc(root: Path, refs: list[str]) -> Removal:
    """Take each of `refs` (a name, or an image id or its unique prefix) out of the squash store:
    a name from its image, and the image when no name is left (an id: the image at once); then
    every layer no image left needs, with its tar-split, directory, link and squash. Layers
    and squashes other images use stay (podman-hpc's rmsqi removes the top layer regardless,
    breaking every image that shares it)."""
    squash = SquashDir(root)
    if not squash.images_dir.is_dir():
        raise NotFoundError(f"{root} is not a podman-hpc squash store (no overlay-images/)")
    untagged: list[str] = []
    with locked_records(squash) as records:
        removed_ids: list[str] = []
        for ref in refs:
            image, name = _find(records, ref, root)
            if name is not None:
                image["names"] = [n for n in names_of(image, "names") if n != name]
                untagged.append(name)
            if name is None or not image["names"]:
                removed_ids.append(str(image["id"]))
                records.images = [r for r in records.images if r is not image]
            records.images_changed = True
        needed = _needed_layers(records)
        dropped = [r for r in records.layers if r.get("id") not in needed]
        for record in dropped:  # ids naming no path outside the store, before anything goes
            squash.layer_dir(str(record["id"]))
        for image_id in removed_ids:
            squash.image_dir(image_id)
        records.layers = [r for r in records.layers if r.get("id") in needed]
        records.layers_changed = bool(dropped)
        records.commit()
        # the files once no record points at them (a kill now leaves orphans), still under
        # the locks: an export that found them checks for them again under the locks
        left = [
            squash.image_dir(image_id)
            for image_id in removed_ids
            if records.image(image_id) is None and not _remove_tree(squash.image_dir(image_id))
        ]
        left += [
            squash.layer_dir(str(layer["id"]))
            for layer in dropped
            if not _remove_layer_files(squash, str(layer["id"]))
        ]
    return Removal(
        tuple(untagged),
        tuple(removed_ids),
        tuple(str(r["id"]) for r in dropped),
        tuple(str(path) for path in left),
    )


def _find(records: Records, ref: str, root: Path) -> tuple[Record, str | None]:
    full = Store.normalize(ref)
    for image in records.images:
        for candidate in (ref, full):
            if candidate in names_of(image, "names"):
                return image, candidate
    by_id = [r for r in records.images if len(ref) >= 3 and str(r.get("id", "")).startswith(ref)]
    if len(by_id) == 1:
        return by_id[0], None
    what = "more than one image" if by_id else "no image"
    raise NotFoundError(f"{ref}: {what} of the squash store {root} has that name or id")


def _needed_layers(records: Records) -> set[str]:
    """Every layer of the remaining images' chains."""
    parents = {str(r.get("id")): r.get("parent") for r in records.layers}
    needed: set[str] = set()
    for image in records.images:
        layer: object = image.get("layer")
        while isinstance(layer, str) and layer not in needed:
            needed.add(layer)
            layer = parents.get(layer)
    return needed


def _remove_layer_files(squash: SquashDir, layer_id: str) -> bool:
    link = squash.link_of(layer_id)
    if link:
        squash.squash(link).unlink(missing_ok=True)
        (squash.links / link).unlink(missing_ok=True)
    squash.tar_split(layer_id).unlink(missing_ok=True)
    return _remove_tree(squash.layer_dir(layer_id))


def _remove_tree(path: Path) -> bool:
    """Remove `path`; False if it is still there after BUSY_PATIENCE seconds. A container that has
    just ended may still have its overlay mounted in the layer's directory (podman-hpc unmounts
    it after the container's exit), which makes the removal fail with EBUSY for a moment."""
    deadline = time.monotonic() + BUSY_PATIENCE
    while True:
        with contextlib.suppress(OSError):  # gone already, or busy (a mount): waited for below
            remove_tree(path)  # a tampered store's tree may be deep: no recursion
        if not path.exists() or time.monotonic() >= deadline:
            return not path.exists()
        time.sleep(0.2)
