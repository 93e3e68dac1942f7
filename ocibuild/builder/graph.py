"""Recipe -> image graph -> images in the store, dependencies first.

The graph: the images of a recipe in `from:` order (a cycle is an error), images of other
recipe files (`from: other.yaml#name`) built first, bases found in the store or pulled from
their registry. Each image is then built by `build_image`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from ocibuild.builder.attest import attach, image_contents, layer_components
from ocibuild.builder.image import BuiltImage, build_image
from ocibuild.builder.inputs import ContentDigests, resolve_mirror, source_date_epoch
from ocibuild.compression import Compression
from ocibuild.errors import NotFoundError, Origin, RecipeError, StoreError
from ocibuild.fetch import LockFile, default_cache_dir
from ocibuild.layer.blob import Layer
from ocibuild.oci import Descriptor, Index, MediaType
from ocibuild.oci.formats import manifest_format
from ocibuild.oci.reference import parse_reference
from ocibuild.progress import ImageEvent, Message, Reporter, silent
from ocibuild.recipe import SCRATCH, ImageSpec, Recipe, image_refs, load_recipe
from ocibuild.sbom import Component
from ocibuild.sources.session import BuildSession, BuildSettings
from ocibuild.store import Store, StoredImage


@dataclass(frozen=True)
class BuiltIndex:
    """An image built for several platforms: the index over its images (an OCI image index, or
    a Docker manifest list when every image is Docker-format), tagged with every reference."""

    ref: str
    descriptor: Descriptor
    refs: tuple[str, ...]
    images: tuple[BuiltImage, ...]


Built = BuiltImage | BuiltIndex


def build_recipe(
    recipe: Recipe | Path | str,
    store: Store,
    settings: BuildSettings | None = None,
    report: Reporter = silent,
) -> list[Built]:
    """Build the recipe's images (dependencies first) into `store`; return them in build order:
    an image built for several platforms as the index over them."""
    settings = settings or BuildSettings()
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, settings.variables)
    with store.build_lock():
        builder = _Builder(store, settings, report)
        built = builder.build(recipe, settings.images)
    store.state.set_last_build([r for image in built for r in image.refs], str(recipe.path))
    return built


class _Builder:
    def __init__(self, store: Store, settings: BuildSettings, report: Reporter) -> None:
        self.store = store
        self.settings = settings
        self.report = report
        self.session: BuildSession | None = None  # made for the first recipe file built
        self.built: dict[tuple[str, str], BuiltImage] = {}  # (full ref, platform) -> image
        self.indexes_built: dict[str, BuiltIndex] = {}  # full ref -> index
        self.visiting: list[str] = []
        # what was built is recorded in the store once per recipe, not once per image: one
        # write of index.json and of the layer cache for each image made recipes quadratic
        self.untagged: list[tuple[list[str], Descriptor]] = []
        self.uncached: dict[str, Layer] = {}
        self.indexes: dict[Path, dict[str, ImageSpec]] = {}
        self.components: dict[str, tuple[Component, ...]] = {}  # by layer digest, this build's
        self.bases: dict[
            str, tuple[str, Descriptor]
        ] = {}  # image digest -> its base's ref, manifest
        self.tagged: set[tuple[str, str]] = set()

    def session_for(self, recipe: Recipe) -> BuildSession:
        """The build's session, for the recipe file `recipe`: its lock, mirror and time."""
        lock = LockFile.for_recipe(recipe.path)
        mirror = resolve_mirror(recipe, self.settings.mirror)
        epoch = source_date_epoch(recipe)
        if self.session is None:
            self.session = BuildSession(
                settings=self.settings,
                recipe_file=recipe.path,
                lock=lock,
                mirror=mirror,
                source_date_epoch=epoch,
                cache_dir=self.settings.cache_dir or default_cache_dir(),
                report=self.report,
                content_digest=ContentDigests(),
            )
            return self.session
        return self.session.for_recipe(recipe.path, lock, mirror, epoch)

    def build(self, recipe: Recipe, only: tuple[str, ...] = ()) -> list[Built]:
        order = build_order(recipe, only)
        session = self.session_for(recipe)
        out: list[Built] = []
        try:
            for image in order:
                out.append(self.image_or_index(session, recipe, image))
        finally:  # what was built before a failure or Ctrl-C stays built
            self.store.state.remember_layers(self.uncached.items())
            self.uncached.clear()
            self.store.state.remember_components(self.components.items())
            self.store.tag_all(self.untagged)
            self.untagged.clear()
        session.lock.save()
        each = [
            i for built in out for i in (built.images if isinstance(built, BuiltIndex) else [built])
        ]
        images = {image.descriptor.digest: image for image in each}.values()
        self.store.add_referrers(
            entry for image in images for entry in self.attest(session, recipe, image)
        )
        return out

    def attest(self, session: BuildSession, recipe: Recipe, image: BuiltImage) -> list[Descriptor]:
        """The image's SBOM and provenance, written to the store (once its lock is saved)."""
        contents = image_contents(self.store, image, self.components, session.source_date_epoch)
        base_ref, base = self.bases.get(image.descriptor.digest, ("", None))
        settings = (
            ("format", manifest_format(image.descriptor.media_type)),
            ("sbom", self.settings.sbom_format),
        )
        locks = [session.lock.path] if session.lock.path else []
        return attach(
            self.store,
            image,
            contents,
            self.settings.sbom_format,
            recipe.path,
            locks,
            base,
            base_ref,
            settings,
        )

    def platforms(self, recipe: Recipe, image: ImageSpec) -> list[str]:
        """The command line's, else the image's, else the recipe's platforms; else its one."""
        return list(
            self.settings.platforms or image.platforms or recipe.platforms or [image.platform]
        )

    def image_or_index(self, session: BuildSession, recipe: Recipe, image: ImageSpec) -> Built:
        """The image, built for each of its platforms; several: the index over them."""
        refs = image_refs(image)
        if refs[0] in self.indexes_built:
            return self.indexes_built[refs[0]]
        platforms = self.platforms(recipe, image)
        if len(platforms) == 1:
            built = self.image(session, recipe, image, platforms[0])
            if (refs[0], platforms[0]) not in self.tagged:
                self.tagged.add((refs[0], platforms[0]))
                self.untagged.append((refs, built.descriptor))
            return built
        images = tuple(self.image(session, recipe, image, p) for p in platforms)
        family = {manifest_format(i.descriptor.media_type) for i in images}
        media_type = MediaType.DOCKER_MANIFEST_LIST if family == {"docker"} else MediaType.OCI_INDEX
        if family == {"docker", "oci"}:
            raise RecipeError(
                "the images of an index must be of one family: give format: oci or docker",
                image.origin,
            )
        members = tuple(replace(i.descriptor, platform=i.config.platform) for i in images)
        data = Index(members, media_type).to_bytes()
        descriptor = self.store.put_json(media_type, data)
        index = BuiltIndex(refs[0], descriptor, tuple(refs), images)
        self.indexes_built[refs[0]] = index
        self.untagged.append((refs, descriptor))
        for built, platform in zip(images, platforms, strict=True):
            self.untagged.append(([platform_ref(refs[0], platform)], built.descriptor))
        self.report(Message(f"{refs[0]}: index of {', '.join(platforms)}: {descriptor.digest}"))
        return index

    def image(
        self, session: BuildSession, recipe: Recipe, image: ImageSpec, platform: str
    ) -> BuiltImage:
        refs = image_refs(image)
        if (refs[0], platform) in self.built:
            return self.built[(refs[0], platform)]
        label = refs[0] if platform == image.platform else f"{refs[0]} ({platform})"
        self.report(ImageEvent(label, "building"))
        started = time.monotonic()
        base = self.base(recipe, image, platform)
        result = build_image(
            self.store,
            session,
            image,
            refs,
            base,
            self.compression(recipe, image),
            self.uncached,
            self.settings.manifest_format or image.format or recipe.format,
            platform,
        )
        self.built[(refs[0], platform)] = result
        for built in result.layers:
            self.components[built.layer.digest] = layer_components(self.store, built)
        if base is not None:
            self.bases[result.descriptor.digest] = (base.ref, base.descriptor)
        cached = sum(1 for layer in result.layers if layer.cached)
        self.report(
            ImageEvent(
                label,
                "built",
                result.descriptor.digest,
                len(result.layers),
                cached,
                time.monotonic() - started,
                result.not_frozen,
            )
        )
        return result

    def compression(self, recipe: Recipe, image: ImageSpec) -> Compression:
        """The command line's, else the image's, else the recipe's; a level that does not fit
        the compression chosen names where it was given."""
        options = self.settings
        algorithm = options.compression or image.compression or recipe.compression
        given = [
            (options.compression_level, "--level"),
            (image.compression_level, f"{image.origin or recipe.path}: compression_level"),
            (recipe.compression_level, f"{recipe.path}: compression_level"),
        ]
        level, where = next(((lv, w) for lv, w in given if lv is not None), (None, ""))
        try:
            return Compression(algorithm, level)
        except ValueError as e:
            raise RecipeError(str(e), where) from None

    def base(self, recipe: Recipe, image: ImageSpec, platform: str) -> StoredImage | None:
        """The image `image` is built on for `platform` (None: scratch), built or pulled if
        need be."""
        source = image.from_
        if source == SCRATCH:
            return None
        file_part, hash_sign, name = source.partition("#")
        if hash_sign:
            other_path = (recipe.path.parent / file_part).resolve()
            if str(other_path) in self.visiting:
                raise RecipeError(
                    f"from: {source}: recipe files refer to each other in a cycle", image.origin
                )
            try:
                other = load_recipe(other_path, self.settings.variables)
            except RecipeError as e:
                raise e.located(image.origin) from None
            target = other.image(name) or _find(self.index(other), name)
            if target is None:
                names = ", ".join(i.name for i in other.images)
                raise RecipeError(
                    f"from: {source}: {other_path.name} has no image {name!r} (it has: {names})",
                    image.origin,
                )
            self.visiting.append(str(recipe.path))
            try:
                self.build(other, (target.name,))
            finally:
                self.visiting.pop()
            return self.stored_base(image_refs(target)[0], platform)
        in_file = _find(self.index(recipe), source)
        if in_file is not None:
            return self.stored_base(image_refs(in_file)[0], platform)
        return self.registry_base(source, image.origin, platform)

    def index(self, recipe: Recipe) -> dict[str, ImageSpec]:
        if recipe.path not in self.indexes:
            self.indexes[recipe.path] = image_index(recipe)
        return self.indexes[recipe.path]

    def stored_base(self, ref: str, platform: str) -> StoredImage:
        """An image of this build (named in the store only once its recipe is done), else of
        the store: the one for `platform`."""
        built = self.built.get((ref, platform))
        if built is not None:
            return built
        if any(r == ref for r, _ in self.built):
            have = ", ".join(p for r, p in self.built if r == ref)
            raise RecipeError(f"{ref} is built for {have}, not {platform}")
        return self.store.image(ref, platform)

    def registry_base(self, ref: str, origin: Origin | None, platform: str) -> StoredImage:
        full = str(parse_reference(ref))
        have = full in self.store.refs() or _is_pinned_and_present(self.store, full)
        pull = self.settings.pull
        if pull == "never" or (have and pull == "missing"):
            try:
                return self.stored_base(full, platform)
            except NotFoundError as e:
                if pull == "never" or not have:
                    where = "for " + platform if have else "in the store"
                    raise StoreError(
                        f"base image {ref} is not {where} "
                        f"(pull it with `ocibuild pull {ref} --platform {platform}`, or build "
                        "it from its recipe)",
                        origin,
                    ) from None
                self.report(Message(f"{e}: pulling it for {platform}"))
        from ocibuild.remote import RemoteOptions, pull_image

        self.report(Message(f"pulling base image {full}"))
        network = self.settings.network
        options = RemoteOptions(
            insecure=network.insecure, ca_cert=network.ca_cert, platform=platform
        )
        pull_image(self.store, full, options, self.report)
        return self.stored_base(full, platform)


def platform_ref(ref: str, platform: str) -> str:
    """The reference an image of a multi-platform image is also tagged with: its tag and
    platform (`site/hep/base:1` -> `site/hep/base:1-linux-arm64`), for the tools that read
    one image of a layout's tag (umoci)."""
    return f"{ref}-{platform.replace('/', '-')}"


def image_index(recipe: Recipe) -> dict[str, ImageSpec]:
    """Every image of `recipe` by each of its full references and its name (first wins):
    looking images up one by one made large recipes quadratic."""
    index: dict[str, ImageSpec] = {}
    for image in recipe.images:
        for key in (*image_refs(image), image.name):
            index.setdefault(key, image)
    return index


def _find(index: dict[str, ImageSpec], name: str) -> ImageSpec | None:
    try:
        full = str(parse_reference(name))
    except ValueError:
        full = name
    return index.get(full) or index.get(name)


def _is_pinned_and_present(store: Store, ref: str) -> bool:
    reference = parse_reference(ref)
    return reference.digest is not None and store.has_blob(reference.digest)


def build_order(recipe: Recipe, only: tuple[str, ...] = ()) -> list[ImageSpec]:
    """Images of the recipe, each after the image of the same file it is built `from:`;
    a cycle is an error naming the images in it. No recursion: a chain of thousands of images
    is a list."""
    index = image_index(recipe)
    order: list[ImageSpec] = []
    state: dict[int, str] = {}

    def visit(start: ImageSpec) -> None:
        chain: list[ImageSpec] = []  # the images being visited, each built from the next
        image: ImageSpec | None = start
        while image is not None and state.get(id(image)) != "done":
            if state.get(id(image)) == "visiting":
                names = [i.name for i in chain[chain.index(image) :]]
                cycle = " -> ".join([*names, image.name])
                raise RecipeError(
                    f"images are built from each other in a cycle: {cycle}", image.origin
                )
            state[id(image)] = "visiting"
            chain.append(image)
            image = (
                _find(index, image.from_)
                if image.from_ != SCRATCH and "#" not in image.from_
                else None
            )
        for image in reversed(chain):
            state[id(image)] = "done"
            order.append(image)

    targets = recipe.images
    if only:
        targets = []
        for name in only:
            found = _find(index, name)
            if found is None:
                raise RecipeError(f"{recipe.path}: no image {name!r} in this recipe")
            targets.append(found)
    for image in targets:
        visit(image)
    return order
