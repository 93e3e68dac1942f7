"""What a build says about each image it made, stored beside it as OCI artifacts whose
`subject` is the image: its SBOM (SPDX 2.3 or CycloneDX 1.6 JSON: every component each layer's
plan declared, base layers' as this store remembers them) and its SLSA provenance statement.
Both are functions of the build's inputs: a rebuild gives the same bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from ocibuild import __version__
from ocibuild.builder.image import BuiltImage
from ocibuild.builder.scheduler import BuiltLayer
from ocibuild.errors import NotFoundError
from ocibuild.oci import Descriptor, MediaType
from ocibuild.oci.artifact import EMPTY_CONFIG, PREDICATE_ANNOTATION, artifact_manifest
from ocibuild.sbom import Component
from ocibuild.sbom.cyclonedx import cyclonedx_document
from ocibuild.sbom.image import ImageContents, LayerContents
from ocibuild.sbom.provenance import PREDICATE_TYPE, Build, Input, provenance_statement
from ocibuild.sbom.spdx import spdx_document
from ocibuild.store import Store
from ocibuild.store.flatten import created_epoch

SBOM_FORMATS = ("spdx", "cyclonedx")
SBOM_MEDIA_TYPES = {"spdx": MediaType.SPDX, "cyclonedx": MediaType.CYCLONEDX}
TOOL = f"ocibuild {__version__}"


def layer_components(store: Store, built: BuiltLayer) -> tuple[Component, ...]:
    """What a layer holds: for a layer from the cache, what the store remembers of it (no file
    read again), else what its plan declares."""
    if built.cached and (known := store.state.layer_components(built.layer.digest)) is not None:
        return known
    return tuple(built.plan.components()) if built.plan.components else ()


def image_contents(
    store: Store, image: BuiltImage, known: dict[str, tuple[Component, ...]], epoch: int
) -> ImageContents:
    """The image as its SBOM describes it; `known` holds the layers of this build."""
    layers = []
    for descriptor in image.manifest.layers:
        components = known.get(descriptor.digest)
        if components is None:
            components = store.state.layer_components(descriptor.digest)
        layers.append(
            LayerContents(descriptor.digest, components or (), described=components is not None)
        )
    return ImageContents(image.refs[0], image.descriptor.digest, epoch, TOOL, tuple(layers))


def sbom_bytes(contents: ImageContents, fmt: str) -> bytes:
    return spdx_document(contents) if fmt == "spdx" else cyclonedx_document(contents)


def attach(
    store: Store,
    image: BuiltImage,
    contents: ImageContents,
    sbom_format: str,
    recipe: Path,
    locks: Sequence[Path],
    base: Descriptor | None,
    base_ref: str,
    settings: tuple[tuple[str, str], ...],
) -> list[Descriptor]:
    """Write the image's SBOM and provenance artifacts into the store's blobs; their index
    entries (for `Store.add_referrers`)."""
    build = Build(
        image=image.refs[0],
        digest=image.descriptor.digest,
        recipe=_file_input(recipe),
        locks=tuple(_file_input(lock) for lock in locks if lock.is_file()),
        base=Input(base_ref, base.digest.removeprefix("sha256:")) if base else None,
        source_date_epoch=contents.created,
        version=__version__,
        settings=settings,
    )
    documents = [
        (SBOM_MEDIA_TYPES[sbom_format], sbom_bytes(contents, sbom_format), {}),
        (MediaType.IN_TOTO, provenance_statement(build), {PREDICATE_ANNOTATION: PREDICATE_TYPE}),
    ]
    entries = []
    store.put_blob(EMPTY_CONFIG)
    for artifact_type, data, notes in documents:
        store.put_blob(data)
        manifest = artifact_manifest(image.descriptor, artifact_type, data, notes)
        descriptor = store.put_json(manifest.media_type, manifest.to_bytes())
        entries.append(
            Descriptor(
                descriptor.media_type,
                descriptor.digest,
                descriptor.size,
                artifact_type=artifact_type,
            )
        )
    return entries


def _file_input(path: Path) -> Input:
    return Input(path.name, hashlib.sha256(path.read_bytes()).hexdigest())


def stored_sbom(store: Store, ref: str, fmt: str | None) -> bytes:
    """The SBOM of an image of the store: the one stored with it (of format `fmt`, or any),
    else written now in `fmt` from what the store remembers of its layers (the same bytes a
    build would have stored). NotFoundError for an image no layer of which is described."""
    image = store.image(ref)
    wanted = [SBOM_MEDIA_TYPES[fmt]] if fmt else list(SBOM_MEDIA_TYPES.values())
    for _, manifest in sorted(
        store.referrers(image.descriptor.digest),
        key=lambda r: wanted.index(r[1].artifact_type) if r[1].artifact_type in wanted else 9,
    ):
        if manifest.artifact_type in wanted:
            return store.read_blob(manifest.layers[0].digest)
    layers = []
    for descriptor in image.manifest.layers:
        components = store.state.layer_components(descriptor.digest)
        layers.append(
            LayerContents(descriptor.digest, components or (), described=components is not None)
        )
    if not any(layer.described for layer in layers):
        raise NotFoundError(
            f"{ref}: no SBOM: the image was not built by this store (or before ocibuild wrote "
            "SBOMs: build it again, its layers come from the cache)"
        )
    name = store.normalize(ref)
    contents = ImageContents(
        name, image.descriptor.digest, created_epoch(image.config), TOOL, tuple(layers)
    )
    return sbom_bytes(contents, fmt or "spdx")
