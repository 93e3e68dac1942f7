"""Recipe -> plan (image graph) -> layers (cached, compressed in parallel) -> images in the store.

The build of one image is a flat list of steps: resolve the base, plan each layer source,
write the layers the cache does not have (in a thread pool: compressors release the GIL),
then write the config and manifest and tag every reference atomically.
"""

from __future__ import annotations

import datetime
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ocibuild.errors import NotFoundError, Origin, RecipeError, StoreError
from ocibuild.fetch import LockFile, default_cache_dir
from ocibuild.layer.codec import Compression
from ocibuild.layer.entry import Entry
from ocibuild.layer.writer import write_layer
from ocibuild.oci import (
    Descriptor,
    History,
    ImageConfig,
    Manifest,
    MediaType,
    Platform,
    RuntimeConfig,
)
from ocibuild.oci.reference import parse_reference
from ocibuild.recipe import SCRATCH, ImageSpec, Recipe, image_refs, load_recipe
from ocibuild.report import Reporter, silent
from ocibuild.sources import SOURCES, LayerPlan, SourceContext, input_key
from ocibuild.sources.base import hash_content
from ocibuild.store import Store
from ocibuild.store.rootfs import ImageFS
from ocibuild.store.state import CachedLayer

DEFAULT_MIRROR = "https://scisoft.fnal.gov/scisoft"
PULL_POLICIES = ("always", "missing", "never")


@dataclass(frozen=True)
class BuildOptions:
    no_cache: bool = False
    mirror: str | None = None
    cache_dir: Path | None = None
    offline: bool = False
    update_lock: bool = False
    pull: str = "missing"
    remote: Any = None  # ocibuild.remote.RemoteOptions, for bases pulled from registries
    jobs: int = 2
    compression: str | None = None
    compression_level: int | None = None
    images: tuple[str, ...] = ()  # build only these (and what they need); all when empty


@dataclass(frozen=True)
class BuiltLayer:
    descriptor: Descriptor
    diff_id: str
    description: str
    cached: bool
    cache_entry: tuple[str, CachedLayer] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class BuiltImage:
    refs: list[str]
    descriptor: Descriptor
    manifest: Manifest
    config: ImageConfig
    layers: list[BuiltLayer] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return self.refs[0]


@dataclass(frozen=True)
class _Base:
    config: ImageConfig
    layers: tuple[Descriptor, ...]
    history: tuple[History, ...]


def build_recipe(
    recipe: Recipe | Path | str,
    store: Store,
    options: BuildOptions | None = None,
    report: Reporter = silent,
) -> list[BuiltImage]:
    """Build the recipe's images (dependencies first) into `store`; return them in build order."""
    options = options or BuildOptions()
    if options.pull not in PULL_POLICIES:
        raise ValueError(f"pull policy must be one of {', '.join(PULL_POLICIES)}")
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    with store.build_lock():
        builder = _Builder(store, options, report)
        built = builder.build(recipe, options.images)
    store.state.set_last_build([r for image in built for r in image.refs], str(recipe.path))
    return built


class _Builder:
    def __init__(self, store: Store, options: BuildOptions, report: Reporter) -> None:
        self.store = store
        self.options = options
        self.report = report
        self.built: dict[str, BuiltImage] = {}  # full ref -> image, across recipe files
        self.visiting: list[str] = []
        # what images were built, recorded in the store once per recipe, not once per image:
        # one write of index.json and the layer cache for each image made recipes quadratic
        self.untagged: list[tuple[list[str], Descriptor]] = []
        self.uncached: dict[str, CachedLayer] = {}
        self.digest_cache = _ContentDigests()

    # -- graph ----------------------------------------------------------------------------------

    def build(self, recipe: Recipe, only: tuple[str, ...] = ()) -> list[BuiltImage]:
        order = build_order(recipe, only)
        lock = LockFile.for_recipe(recipe.path)
        out = []
        try:
            for image in order:
                out.append(self.image(recipe, image, lock))
        finally:
            self.store.state.remember_layers(self.uncached.items())
            self.uncached.clear()
            self.store.tag_all(self.untagged)
            self.untagged.clear()
        lock.save()
        return out

    def image(self, recipe: Recipe, image: ImageSpec, lock: LockFile) -> BuiltImage:
        refs = image_refs(image)
        if refs[0] in self.built:
            return self.built[refs[0]]
        self.report("image", ref=refs[0], status="building")
        started = time.monotonic()
        base = self.base(recipe, image)
        try:
            result = self.assemble(recipe, image, base, refs, lock)
        except BaseException:
            self.store.discard_staged()
            raise
        self.built[refs[0]] = result
        cached = sum(1 for layer in result.layers if layer.cached)
        self.report(
            "image",
            ref=refs[0],
            status="built",
            digest=result.descriptor.digest,
            layers=len(result.layers),
            cached=cached,
            seconds=time.monotonic() - started,
        )
        return result

    def base(self, recipe: Recipe, image: ImageSpec) -> _Base:
        source = image.from_
        if source == SCRATCH:
            return _Base(ImageConfig(), (), ())
        file_part, hash_sign, name = source.partition("#")
        if hash_sign:
            other_path = (recipe.path.parent / file_part).resolve()
            if str(other_path) in self.visiting:
                raise RecipeError(
                    f"from: {source}: recipe files refer to each other in a cycle", image.origin
                )
            other = load_recipe(other_path)
            target = other.image(name) or _find(other, name)
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
            return self.built_base(image_refs(target)[0])
        in_file = _find(recipe, source)
        if in_file is not None:
            return self.built_base(image_refs(in_file)[0])
        return self.registry_base(source, image.origin)

    def built_base(self, ref: str) -> _Base:
        built = self.built.get(ref)
        if built is None:
            return self.stored_base(ref)
        return _Base(built.config, built.manifest.layers, built.config.history)

    def stored_base(self, ref: str) -> _Base:
        stored = self.store.image(ref)
        return _Base(stored.config, stored.manifest.layers, stored.config.history)

    def registry_base(self, ref: str, origin: Origin | None) -> _Base:
        full = str(parse_reference(ref))
        have = full in self.store.refs() or _is_pinned_and_present(self.store, full)
        if self.options.pull == "never" or (have and self.options.pull == "missing"):
            try:
                return self.stored_base(full)
            except NotFoundError:
                raise StoreError(
                    f"{origin}: base image {ref} is not in the store "
                    f"(pull it with `ocibuild pull {ref}`, or build it from its recipe)"
                ) from None
        from ocibuild.remote import RemoteOptions, pull_image

        self.report("message", message=f"pulling base image {full}")
        pull_image(self.store, full, self.options.remote or RemoteOptions(), self.report)
        return self.stored_base(full)

    # -- one image ------------------------------------------------------------------------------

    def assemble(
        self, recipe: Recipe, image: ImageSpec, base: _Base, refs: list[str], lock: LockFile
    ) -> BuiltImage:
        mtime = source_date_epoch(recipe)
        created = datetime.datetime.fromtimestamp(mtime, datetime.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        try:
            compression = Compression(
                self.options.compression or image.compression or recipe.compression,
                self.options.compression_level
                if self.options.compression_level is not None
                else image.compression_level
                if image.compression_level is not None
                else recipe.compression_level,
            )
        except ValueError as e:
            raise RecipeError(str(e), image.origin) from None
        layers: list[Future[BuiltLayer] | BuiltLayer] = []
        plans: list[LayerPlan] = []
        runtime = base.config.config
        if image.entrypoint is not None and image.cmd is None:
            runtime = replace(runtime, cmd=None)
        with ThreadPoolExecutor(max_workers=max(1, self.options.jobs)) as pool:
            for index, spec in enumerate(image.layers):
                kind = SOURCES[spec.source]
                lower = None
                if kind.needs_lower:
                    lower = ImageFS(
                        self.store, [*base.layers, *(_result(x).descriptor for x in layers)]
                    )
                ctx = self.context(recipe, spec.origin, index, mtime, lock, lower)
                for plan in kind.plan(spec.spec, ctx):
                    plans.append(plan)
                    layers.append(self.layer(pool, plan, compression, mtime))
            if image.setup is not None:
                from ocibuild.ups.setup import setup_profile_plan

                ctx = self.context(
                    recipe, image.setup.origin or image.origin, len(image.layers), mtime, lock, None
                )
                plan = setup_profile_plan(image.setup, ctx)
                plans.append(plan)
                layers.append(self.layer(pool, plan, compression, mtime))
            built_layers = [_result(x) for x in layers]
        for plan in plans:
            if plan.user is not None:
                runtime = replace(runtime, user=plan.user)
            if plan.env:
                runtime = runtime.with_env(plan.env)
        if image.setup is not None:
            from ocibuild.ups.setup import frozen_environment

            lower = ImageFS(
                self.store, [*base.layers, *(layer.descriptor for layer in built_layers)]
            )
            env = frozen_environment(lower, image.setup, self.report, base_env=runtime.env_dict())
            # the whole environment after setup: what envUnset removed is gone
            runtime = replace(runtime, env=tuple(f"{k}={v}" for k, v in env.items()))
        runtime = apply_image_settings(runtime, image)
        history = list(base.history)
        if len(history) != len(base.config.diff_ids):
            history = [h for h in history if not h.empty_layer]
        history += [History(created=created, created_by=plan.created_by) for plan in plans]
        platform = Platform.parse(image.platform)
        config = ImageConfig(
            architecture=platform.architecture,
            os=platform.os,
            variant=platform.variant,
            created=created,
            config=runtime,
            diff_ids=(*base.config.diff_ids, *(layer.diff_id for layer in built_layers)),
            history=tuple(history),
        )
        return self.commit(refs, image, config, base, built_layers)

    def context(
        self,
        recipe: Recipe,
        origin: Origin,
        index: int,
        mtime: int,
        lock: LockFile,
        lower: ImageFS | None,
    ) -> SourceContext:
        return SourceContext(
            recipe_file=recipe.path,
            origin=origin,
            layer_index=index,
            source_date_epoch=mtime,
            mirror=resolve_mirror(recipe, self.options.mirror),
            cache_dir=self.options.cache_dir or default_cache_dir(),
            offline=self.options.offline,
            update_lock=self.options.update_lock,
            lower=lower,
            report=self.report,
            lock=lock,
            content_digest=self.digest_cache,
        )

    def layer(
        self, pool: ThreadPoolExecutor, plan: LayerPlan, compression: Compression, mtime: int
    ) -> Future[BuiltLayer] | BuiltLayer:
        key = input_key(plan.key, str(compression), mtime)
        if not self.options.no_cache:
            hit = self.uncached.get(key) or self.store.state.cached_layer(key)
            if hit and self.store.has_blob(hit.digest):
                return self.finished(key, plan, hit, cached=True)
        return pool.submit(self.write, key, plan, compression, mtime)

    def write(self, key: str, plan: LayerPlan, compression: Compression, mtime: int) -> BuiltLayer:
        def progress(done: int) -> None:
            self.report(
                "layer",
                key=key,
                description=plan.description,
                status="building",
                done=done,
                total=plan.size_hint,
            )

        progress(0)
        started = time.monotonic()
        shown = [started]

        def throttled(done: int) -> None:
            now = time.monotonic()
            if now - shown[0] >= 0.1:
                shown[0] = now
                progress(done)

        with self.store.pending_blob() as pending:
            blob = write_layer(plan.entries(), pending.file, compression, mtime, throttled)
            pending.stage(blob.digest)
        written = CachedLayer(
            blob.digest, blob.size, blob.diff_id, blob.media_type, blob.tar_size, blob.entries
        )
        return self.finished(
            key,
            plan,
            written,
            cached=False,
            size=blob.size,
            digest=blob.digest,
            seconds=time.monotonic() - started,
        )

    def finished(
        self, key: str, plan: LayerPlan, layer: CachedLayer, *, cached: bool, **fields: object
    ) -> BuiltLayer:
        """Report a layer ready, from the cache or just written (then it is to be cached)."""
        self.report(
            "layer",
            key=key,
            description=plan.description,
            status="cached" if cached else "built",
            done=layer.tar_size,
            total=layer.tar_size,
            **fields,
        )
        return BuiltLayer(
            Descriptor(layer.media_type, layer.digest, layer.size),
            layer.diff_id,
            plan.description,
            cached,
            cache_entry=None if cached else (key, layer),
        )

    def commit(
        self,
        refs: list[str],
        image: ImageSpec,
        config: ImageConfig,
        base: _Base,
        layers: list[BuiltLayer],
    ) -> BuiltImage:
        self.store.publish_staged()
        for layer in layers:
            if layer.cache_entry:
                self.uncached.setdefault(*layer.cache_entry)
        config_desc = self.store.put_json(MediaType.OCI_CONFIG, config.to_bytes())
        manifest = Manifest(
            config=config_desc,
            layers=(*(_as_oci(d) for d in base.layers), *(layer.descriptor for layer in layers)),
            annotations=dict(image.annotations),
        )
        descriptor = self.store.put_json(MediaType.OCI_MANIFEST, manifest.to_bytes())
        self.untagged.append((refs, descriptor))
        return BuiltImage(refs, descriptor, manifest, config, layers)


def _as_oci(descriptor: Descriptor) -> Descriptor:
    from ocibuild.oci.mediatypes import to_oci

    return Descriptor(
        to_oci(descriptor.media_type),
        descriptor.digest,
        descriptor.size,
        dict(descriptor.annotations),
    )


def _result(x: Future[BuiltLayer] | BuiltLayer) -> BuiltLayer:
    return x.result() if isinstance(x, Future) else x


def _find(recipe: Recipe, name: str) -> ImageSpec | None:
    try:
        full = str(parse_reference(name))
    except ValueError:
        full = name
    index = _image_index(recipe)
    return index.get(full) or index.get(name)


_INDEXES: dict[int, tuple[Recipe, dict[str, ImageSpec]]] = {}


def _image_index(recipe: Recipe) -> dict[str, ImageSpec]:
    """Every image of `recipe` by each of its full references and its name (first wins),
    built once per recipe: looking images up one by one made large recipes quadratic."""
    cached = _INDEXES.get(id(recipe))
    if cached is not None and cached[0] is recipe:
        return cached[1]
    index: dict[str, ImageSpec] = {}
    for image in recipe.images:
        for key in (*image_refs(image), image.name):
            index.setdefault(key, image)
    _INDEXES.clear()  # one recipe at a time is built; keep the cache from growing
    _INDEXES[id(recipe)] = (recipe, index)
    return index


def _is_pinned_and_present(store: Store, ref: str) -> bool:
    reference = parse_reference(ref)
    return reference.digest is not None and store.has_blob(reference.digest)


def build_order(recipe: Recipe, only: tuple[str, ...] = ()) -> list[ImageSpec]:
    """Images of the recipe, each after the image of the same file it is built `from:`;
    a cycle is an error naming the images in it."""
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
                _find(recipe, image.from_)
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
            image = _find(recipe, name)
            if image is None:
                raise RecipeError(f"{recipe.path}: no image {name!r} in this recipe")
            targets.append(image)
    for image in targets:
        visit(image)
    return order


def source_date_epoch(recipe: Recipe) -> int:
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        try:
            return int(env)
        except ValueError:
            raise RecipeError(f"SOURCE_DATE_EPOCH={env!r} is not an integer") from None
    return recipe.source_date_epoch or 0


def resolve_mirror(recipe: Recipe, override: str | None) -> str:
    mirror = override or os.environ.get("OCIBUILD_SCISOFT") or recipe.mirror or DEFAULT_MIRROR
    if "://" not in mirror:
        path = Path(mirror).expanduser()
        if not path.is_absolute():
            base = (
                Path.cwd()
                if override or os.environ.get("OCIBUILD_SCISOFT") == mirror
                else recipe.path.parent
            )
            path = base / path
        return path.resolve().as_uri()
    return mirror.rstrip("/")


def apply_image_settings(runtime: RuntimeConfig, image: ImageSpec) -> RuntimeConfig:
    def argv(value: list[str] | str | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        return ("/bin/sh", "-c", value) if isinstance(value, str) else tuple(value)

    if image.env:
        runtime = runtime.with_env(_expand_env(image.env, runtime.env_dict()))
    if image.cmd is not None:
        runtime = replace(runtime, cmd=argv(image.cmd))
    if image.entrypoint is not None:
        runtime = replace(runtime, entrypoint=argv(image.entrypoint))
    if image.workdir is not None:
        runtime = replace(runtime, working_dir=image.workdir)
    if image.user is not None:
        runtime = replace(runtime, user=image.user)
    if image.labels:
        runtime = replace(runtime, labels={**runtime.labels, **image.labels})
    return runtime


def _expand_env(env: dict[str, str], current: dict[str, str]) -> dict[str, str]:
    """`${VAR}` and `$VAR` in recipe env values refer to the image's env so far (like ENV)."""
    import re

    out: dict[str, str] = {}
    for key, value in env.items():
        scope = {**current, **out}
        out[key] = re.sub(
            r"\$\{(\w+)\}|\$(\w+)",
            lambda m, scope=scope: scope.get(m.group(1) or m.group(2), ""),
            str(value),
        )
    return out


class _ContentDigests:
    """sha256 of local files, remembered by (path, size, mtime, inode) for this process."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int, int, int], str] = {}
        self._mutex = threading.Lock()

    def __call__(self, entry: Entry) -> str:
        if not entry.source:
            return hash_content(entry)
        st = os.stat(entry.source)
        key = (entry.source, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        with self._mutex:
            if key in self._known:
                return self._known[key]
        digest = hash_content(entry)
        with self._mutex:
            self._known[key] = digest
        return digest
