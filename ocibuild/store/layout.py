"""The local store: an OCI image layout directory, written atomically and safe to share.

    STORE/oci-layout, STORE/index.json, STORE/blobs/sha256/<hex>     (the OCI layout)
    STORE/.ocibuild/{state.db, build.lock, index.lock}              (ours)

Blobs land under a temporary name and are renamed to their digest once verified; index.json is
replaced whole, under a lock. Builds hold the build lock shared; gc holds it alone.

An image is its manifest as built or as its registry served it: OCI or Docker v2 schema 2. The
OCI tools that read a layout (skopeo's and podman's `oci:`, umoci) take only OCI media types
from index.json, so a Docker-format image is indexed by its *OCI view*: the same config and
layers under OCI media types, a blob of its own, whose index entry names the Docker manifest
(the image's identity, its digest everywhere else) in the annotation `IDENTITY_ANNOTATION`.
Artifacts about an image (its SBOM, its provenance) are indexed without a name, their
manifest's `subject` naming the image.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

from ocibuild.atomicfile import atomic_write_bytes
from ocibuild.errors import DigestMismatchError, NotFoundError, OcibuildError, StoreError
from ocibuild.jsonread import JSONObject, read_json, read_json_object
from ocibuild.limits import BLOB_SIZE
from ocibuild.oci import Descriptor, ImageConfig, Index, Manifest, MediaType, canonical_json
from ocibuild.oci.digest import Digest, is_digest
from ocibuild.oci.formats import in_format
from ocibuild.oci.mediatypes import INDEXES
from ocibuild.oci.model import host_platform
from ocibuild.oci.reference import ReferenceError, parse_reference
from ocibuild.outpath import protect
from ocibuild.store.image import StoredImage
from ocibuild.store.lock import file_lock
from ocibuild.store.pending import PendingBlob, blob_path
from ocibuild.store.state import State
from ocibuild.store.transaction import Transaction
from ocibuild.store.verify import VerifiedBlob, mismatch

REF_ANNOTATION = "org.opencontainers.image.ref.name"
# on the index entry of a Docker-format image's OCI view: the digest of the Docker manifest
IDENTITY_ANNOTATION = "dev.ocibuild.image.manifest"
# a write that failed because of where it went, not what was written
WRITE_FAILURES = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def _os_reason(e: OSError) -> str:
    where = f"{e.filename}: " if e.filename else ""
    return f"{where}{e.strerror or e}"


def _ours(name: str) -> bool:
    """A name a store being made (perhaps by a command killed then) may hold, or a fresh file
    system mounted for it (lost+found)."""
    return name in ("blobs", "index.json", ".ocibuild", "lost+found") or (
        name.startswith(".") and name.endswith(".tmp")
    )


def _same_platform(have: str, wanted: str) -> bool:
    """`linux/arm64` is `linux/arm64/v8` (the variant OCI implies for arm64)."""
    return have == wanted or have.removesuffix("/v8") == wanted.removesuffix("/v8")


def default_store_path() -> Path:
    if env := os.environ.get("OCIBUILD_STORE"):
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "ocibuild" / "store"


class Store:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.meta = self.root / ".ocibuild"
        self.state = State(self.meta / "state.db")
        self._intact: set[str] = set()  # blobs verified by this process

    @classmethod
    def open(cls, root: Path | None = None, create: bool = True) -> Store:
        """The store at `root`, made if missing (with `create`). Opening an existing store
        writes nothing, so a read-only store serves the commands that only read it."""
        store = cls(root or default_store_path())
        try:
            store._open(create)
        except OSError as e:
            raise StoreError(f"cannot open the store {store.root}: {_os_reason(e)}") from None
        protect(store.root)  # no output of this process goes into it
        return store

    def _open(self, create: bool) -> None:
        layout = self.root / "oci-layout"
        if not layout.exists():
            if not create and not self.root.exists():
                raise StoreError(
                    f"no store at {self.root}: nothing was built or pulled into it "
                    "(--store DIR or $OCIBUILD_STORE names another store)"
                )
            if not create:
                raise StoreError(f"{self.root}: not an OCI image layout (no oci-layout file)")
            if self.root.is_dir() and not all(_ours(p.name) for p in self.root.iterdir()):
                raise StoreError(
                    f"{self.root}: not an OCI image layout, and not empty: "
                    "give --store an empty or new directory"
                )
            self.blobs.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(
                layout, canonical_json({"imageLayoutVersion": MediaType.OCI_LAYOUT_VERSION})
            )
        else:
            try:
                version = read_json_object(layout.read_bytes(), str(layout), 1 << 16)[
                    "imageLayoutVersion"
                ]
            except (ValueError, KeyError, TypeError) as e:
                raise StoreError(f"{layout}: not a valid oci-layout file ({e})") from e
            if not str(version).startswith("1."):
                raise StoreError(f"{layout}: unsupported image layout version {version}")
            if not self.blobs.is_dir():
                self.blobs.mkdir(parents=True, exist_ok=True)
        if not (self.root / "index.json").exists():
            with file_lock(self.meta / "index.lock"):
                if not (self.root / "index.json").exists():
                    self._write_index(Index(()))
        self._migrate()

    def _migrate(self) -> None:
        """Index the Docker-format images of a store written before they had OCI views (pulled
        ones, indexed as their Docker manifest): their views written, their entries replaced.
        A read-only store is read as it is."""
        path = self.root / "index.json"
        if MediaType.DOCKER_MANIFEST.encode() not in path.read_bytes():
            return
        if not os.access(self.root, os.W_OK) or not os.access(self.blobs, os.W_OK):
            return
        with file_lock(self.meta / "index.lock"):
            try:
                entries = self.index().manifests
            except StoreError:
                return  # a broken index.json: its readers say so
            if any(d.media_type == MediaType.DOCKER_MANIFEST for d in entries):
                self._write_index(Index(tuple(self._migrated(d) for d in entries)))

    def _migrated(self, entry: Descriptor) -> Descriptor:
        try:
            return self._entry(entry)
        except (OcibuildError, ValueError, KeyError, TypeError):
            return entry  # a manifest that cannot be read: gc reports the reference broken

    # -- blobs --------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return blob_path(self.blobs, digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def blob_size(self, digest: str) -> int:
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} is not in the store {self.root}") from None

    def open_blob(self, digest: str) -> BinaryIO:
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} is not in the store {self.root}") from None

    def read_blob(self, digest: str) -> bytes:
        """The whole blob (a manifest, a config), verified against its digest."""
        with self.open_blob(digest) as f:
            data = f.read()
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise DigestMismatchError(mismatch(digest, actual, len(data), None, self._where))
        return data

    @property
    def _where(self) -> str:
        return f"in the store {self.root} "

    def open_verified(self, digest: str, size: int | None = None) -> VerifiedBlob:
        """The blob as a file that checks its digest (and `size`) at `finish()`."""
        return VerifiedBlob(self.open_blob(digest), digest, size, self._where)

    def check_blob(self, digest: str, size: int | None = None) -> None:
        """Raise DigestMismatchError (NotFoundError) unless the store holds the blob intact;
        each blob is read once per process for this."""
        if digest in self._intact:
            return
        with self.open_verified(digest, size) as blob:
            blob.finish()
        self._intact.add(digest)

    def verified(self, digest: str, size: int | None = None) -> bool:
        """Whether the store holds the blob intact. A copy that is not what its name says is
        removed (where the store is writable), so that it can be written again."""
        try:
            self.check_blob(digest, size)
        except NotFoundError:
            return False
        except DigestMismatchError:
            with contextlib.suppress(OSError):
                self.blob_path(digest).unlink()
            return False
        return True

    @contextmanager
    def pending_blob(self) -> Iterator[PendingBlob]:
        with self.writing():
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.blobs)
            pending = PendingBlob(self.blobs, os.fdopen(fd, "wb"), Path(tmp))
            try:
                yield pending
            finally:
                if not pending.done:
                    pending.file.close()
                    Path(tmp).unlink(missing_ok=True)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """A write to the store: refused at once if the store is read-only; a write that
        fails for want of room (or of a writable file system) is a StoreError."""
        self.check_writable()
        try:
            yield
        except OSError as e:
            if e.errno not in WRITE_FAILURES:
                raise
            raise StoreError(f"cannot write to the store {self.root}: {_os_reason(e)}") from None

    def check_writable(self) -> None:
        for directory in (self.root, self.blobs):
            if not os.access(directory, os.W_OK):
                raise StoreError(
                    f"the store {self.root} is read-only: this command writes to it "
                    "(images, inspect, export, push and gc --dry-run only read)"
                )

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One image's writes, published by `tx.commit(...)`; leaving the block without a
        commit (an error) leaves no trace of them."""
        self.check_writable()
        tx = Transaction(self)
        try:
            yield tx
        finally:
            tx.discard()

    def put_blob(self, data: bytes) -> Digest:
        digest = Digest("sha256:" + hashlib.sha256(data).hexdigest())
        if not self.verified(digest, len(data)):
            with self.pending_blob() as pending:
                pending.file.write(data)
                pending.commit(digest)
        return digest

    def put_json(self, media_type: str, data: bytes) -> Descriptor:
        return Descriptor(media_type, self.put_blob(data), len(data))

    def ingest(self, chunks: Iterable[bytes], expected: Descriptor, source: str = "") -> Path:
        """Store a blob streamed from elsewhere, verifying size and digest before it is named;
        a declared size is believed only up to the limit (OCIBUILD_MAX_BLOB_SIZE)."""
        where = f" from {source}" if source else ""
        BLOB_SIZE.check(expected.size, f"blob {expected.digest}{where}")
        with self.pending_blob() as pending:
            h = hashlib.sha256()
            size = 0
            for chunk in chunks:
                h.update(chunk)
                size += len(chunk)
                if size > expected.size:
                    break
                pending.file.write(chunk)
            actual = Digest("sha256:" + h.hexdigest())
            if size != expected.size:
                raise DigestMismatchError(
                    f"blob {expected.digest}{where}: got {size} bytes or more, expected {expected.size}"
                )
            if actual != expected.digest:
                raise DigestMismatchError(
                    f"blob{where}: content has digest {actual}, expected {expected.digest}"
                )
            return pending.commit(actual)

    # -- index and references -----------------------------------------------------------------

    def index(self) -> Index:
        path = self.root / "index.json"
        try:
            data = read_json(path.read_bytes(), str(path))
        except FileNotFoundError:
            return Index(())
        except ValueError as e:
            raise StoreError(f"not a valid image index ({e})") from None
        manifests = data.get("manifests", []) if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(manifests, list):
            raise StoreError(
                f"{path}: not a valid image index (not an object with a manifests list)"
            )
        for n, entry in enumerate(manifests):
            if not isinstance(entry, dict):
                raise StoreError(f"{path}: not a valid image index (manifests[{n}] is no object)")
        try:
            return Index.from_json(data)
        except KeyError as e:
            raise StoreError(f"{path}: not a valid image index (missing key {e})") from None
        except (ValueError, TypeError, AttributeError) as e:
            raise StoreError(f"{path}: not a valid image index ({e})") from None

    def _write_index(self, index: Index) -> None:
        with self.writing():
            atomic_write_bytes(self.root / "index.json", index.to_bytes())

    def refs(self) -> dict[str, Descriptor]:
        """Every reference of the store and the image it names (its identity: see
        `identity`)."""
        return {
            d.annotations[REF_ANNOTATION]: self.identity(d)
            for d in self.index().manifests
            if REF_ANNOTATION in d.annotations
        }

    def identity(self, entry: Descriptor) -> Descriptor:
        """The image an index entry stands for: the Docker manifest its OCI view's annotation
        names, else the entry itself (without the index's annotations)."""
        digest = entry.annotations.get(IDENTITY_ANNOTATION)
        if digest is not None and is_digest(digest):
            docker = (
                MediaType.DOCKER_MANIFEST_LIST
                if entry.media_type == MediaType.OCI_INDEX
                else MediaType.DOCKER_MANIFEST
            )
            return Descriptor(
                docker,
                Digest(digest),
                self.blob_size(digest),
                platform=entry.platform,
            )
        return Descriptor(entry.media_type, entry.digest, entry.size, platform=entry.platform)

    def entry(self, ref: str) -> Descriptor:
        """The index entry of a reference: what the OCI tools read (an OCI view, for a
        Docker-format image)."""
        for candidate in (ref, self.normalize(ref)):
            for d in self.index().manifests:
                if d.annotations.get(REF_ANNOTATION) == candidate:
                    return d
        raise self.no_such_image(ref)

    def _entry(self, descriptor: Descriptor) -> Descriptor:
        """What index.json holds for an image: the descriptor, or for a Docker manifest its OCI
        view (written to the store) annotated with the Docker manifest's digest; for a Docker
        manifest list, an OCI index of its images' OCI views, annotated the same way."""
        if descriptor.media_type == MediaType.DOCKER_MANIFEST_LIST:
            listed = Index.from_json(
                read_json_object(self.read_blob(descriptor.digest), str(descriptor.digest))
            )
            members = tuple(self._entry(d) for d in listed.manifests)
            data = Index(members, MediaType.OCI_INDEX).to_bytes()
            return Descriptor(
                MediaType.OCI_INDEX,
                self.put_blob(data),
                len(data),
                {**descriptor.annotations, IDENTITY_ANNOTATION: str(descriptor.digest)},
                descriptor.platform,
            )
        if descriptor.media_type != MediaType.DOCKER_MANIFEST:
            return descriptor
        manifest = Manifest.from_json(
            read_json_object(self.read_blob(descriptor.digest), str(descriptor.digest))
        )
        try:
            view = in_format(manifest, "oci").to_bytes()
        except ValueError as e:
            raise StoreError(f"{descriptor.digest}: no OCI view of this manifest ({e})") from None
        return Descriptor(
            MediaType.OCI_MANIFEST,
            self.put_blob(view),
            len(view),
            {**descriptor.annotations, IDENTITY_ANNOTATION: str(descriptor.digest)},
            descriptor.platform,
        )

    def tag(self, refs: Iterable[str], descriptor: Descriptor) -> None:
        """Point each of `refs` at `descriptor`, in one atomic update of index.json."""
        self.tag_all([(list(refs), descriptor)])

    def tag_all(self, tags: Iterable[tuple[Iterable[str], Descriptor]]) -> None:
        """Point each ref of each pair at its descriptor, in one atomic update of index.json
        (later pairs win)."""
        added_by_ref: dict[str, Descriptor] = {}
        for refs, descriptor in tags:
            bare = self._entry(
                Descriptor(
                    descriptor.media_type,
                    descriptor.digest,
                    descriptor.size,
                    platform=descriptor.platform,
                )
            )
            for r in refs:
                added_by_ref[r] = bare.with_annotations(**{REF_ANNOTATION: r})
        if not added_by_ref:
            return
        self.check_writable()
        with file_lock(self.meta / "index.lock"):
            kept = [
                d
                for d in self.index().manifests
                if d.annotations.get(REF_ANNOTATION) not in added_by_ref
            ]
            added = list(added_by_ref.values())
            # references sorted, then the artifacts (unnamed) in the order they came
            manifests = sorted(
                kept + added,
                key=lambda d: (
                    REF_ANNOTATION not in d.annotations,
                    d.annotations.get(REF_ANNOTATION, ""),
                ),
            )
            self._write_index(Index(tuple(manifests)))

    def add_referrers(self, descriptors: Iterable[Descriptor]) -> None:
        """Index artifacts about images (manifests with a `subject`), without a name, in one
        update of index.json; an artifact already indexed is left as it is."""
        added = list(descriptors)
        if not added:
            return
        self.check_writable()
        with file_lock(self.meta / "index.lock"):
            manifests = self.index().manifests
            have = {d.digest for d in manifests}
            new = tuple(d for d in added if d.digest not in have)
            if new:
                self._write_index(Index(manifests + new))

    def unindex(self, digests: set[str]) -> None:
        """Drop the index entries of these manifests (gc: artifacts of images gone)."""
        self.check_writable()
        with file_lock(self.meta / "index.lock"):
            kept = tuple(d for d in self.index().manifests if d.digest not in digests)
            self._write_index(Index(kept))

    def referrers(self, digest: str) -> list[tuple[Descriptor, Manifest]]:
        """The artifacts the store indexes about the image of manifest `digest`."""
        found = []
        for d in self.index().manifests:
            if REF_ANNOTATION in d.annotations or not d.artifact_type:
                continue
            manifest = Manifest.from_json(read_json_object(self.read_blob(d.digest), str(d.digest)))
            if manifest.subject is not None and manifest.subject.digest == digest:
                found.append((d, manifest))
        return found

    def untag(self, ref: str) -> None:
        full = self.normalize(ref)
        self.check_writable()
        with file_lock(self.meta / "index.lock"):
            manifests = self.index().manifests
            kept = tuple(d for d in manifests if d.annotations.get(REF_ANNOTATION) != full)
            if len(kept) == len(manifests):
                raise self.no_such_image(ref)
            self._write_index(Index(kept))

    @staticmethod
    def normalize(ref: str) -> str:
        try:
            return str(parse_reference(ref))
        except ReferenceError:
            return ref

    def resolve(self, ref: str) -> Descriptor:
        """The descriptor a reference (full or familiar, or a manifest digest) points at."""
        refs = self.refs()
        for candidate in (ref, self.normalize(ref)):
            if candidate in refs:
                return refs[candidate]
        digest = ref.rpartition("@")[2]
        if is_digest(digest):
            for d in self.index().manifests:
                if digest in (d.digest, d.annotations.get(IDENTITY_ANNOTATION)):
                    return self.identity(d)
            if self.has_blob(digest):
                return Descriptor(MediaType.OCI_MANIFEST, Digest(digest), self.blob_size(digest))
        raise self.no_such_image(ref)

    def no_such_image(self, ref: str) -> NotFoundError:
        """The error for a reference the store lacks: the full name looked for, and the
        store's references that look like it."""
        full = self.normalize(ref)
        name = full.rpartition("@")[0] or full
        repo = name.rsplit(":", 1)[0] if ":" in name.rpartition("/")[2] else name
        short = repo.rpartition("/")[2]
        refs = sorted(self.refs())
        close = [r for r in refs if r.rpartition(":")[0].rpartition("/")[2] == short]
        close += difflib.get_close_matches(full, [r for r in refs if r not in close], n=3)
        tried = full if full == ref else f"{ref} (as {full})"
        hint = f"; the store has {', '.join(close[:5])}" if close else ""
        return NotFoundError(f"no such image {tried} in the store {self.root}{hint}")

    def manifest(
        self, descriptor: Descriptor, platform: str | None = None
    ) -> tuple[Descriptor, Manifest]:
        """The image manifest of `descriptor`, choosing `platform` (default: this machine's)
        if it is an index (and in an index it holds, as deep as they go: a loop, not
        recursion)."""
        platform = platform or host_platform()
        seen = set()
        while descriptor.digest not in seen:
            seen.add(descriptor.digest)
            data = self._image_document(descriptor.digest)
            media_type = data.get("mediaType", descriptor.media_type)
            try:
                if not (media_type in INDEXES or "manifests" in data):
                    return descriptor, Manifest.from_json(data)
                manifests = Index.from_json(data).manifests
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise StoreError(f"{descriptor.digest}: not a valid manifest ({e!r})") from None
            chosen = [
                d
                for d in manifests
                if d.platform is None or _same_platform(str(d.platform), platform)
            ]
            if not chosen:
                have = ", ".join(str(d.platform) for d in manifests)
                raise NotFoundError(
                    f"{descriptor.digest}: no image for {platform} in its index (it has: {have}; "
                    "--platform chooses)"
                )
            descriptor = chosen[0]
        raise StoreError(f"{descriptor.digest}: an index that holds itself")

    def _image_document(self, digest: str) -> JSONObject:
        """The JSON of a manifest or index blob; a StoreError saying what the blob is if it is
        none (a layer, an image config)."""
        blob = self.read_blob(digest)
        try:
            data = read_json(blob, f"blob {digest}")
        except ValueError as e:
            if blob[:1] in (b"{", b"["):
                raise StoreError(f"{digest} is not a valid manifest ({e})") from None
            raise StoreError(f"{digest} is a layer blob, not an image") from None
        if not isinstance(data, dict):
            raise StoreError(f"{digest} is a JSON blob, not an image manifest or index")
        if "layers" not in data and "manifests" not in data:
            what = "an image config" if "rootfs" in data else "a JSON blob"
            raise StoreError(f"{digest} is {what}, not an image manifest or index")
        return data

    def config(self, manifest: Manifest) -> ImageConfig:
        digest = manifest.config.digest
        return ImageConfig.from_json(read_json_object(self.read_blob(digest), f"config {digest}"))

    def image(self, ref: str, platform: str | None = None) -> StoredImage:
        """The image `ref` names; of an index, the one for `platform` (default: this
        machine's). A single image given a `platform` must be of it."""
        try:
            descriptor, manifest = self.manifest(self.resolve(ref), platform)
            config = self.config(manifest)
        except DigestMismatchError as e:
            raise e.located(self.normalize(ref)) from None
        if platform is not None and not _same_platform(str(config.platform), platform):
            raise NotFoundError(f"{ref} is an image for {config.platform}, not {platform}")
        return StoredImage(ref, descriptor, manifest, config)

    def images(self) -> list[StoredImage]:
        out = []
        for ref in self.refs():
            try:
                out.append(self.image(ref))
            except (StoreError, DigestMismatchError, ValueError, KeyError, TypeError):
                continue
        return out

    # -- locks --------------------------------------------------------------------------------

    def build_lock(self) -> AbstractContextManager[None]:
        """Held (shared) while blobs are written that are not yet indexed; gc takes it alone."""
        return file_lock(self.meta / "build.lock", shared=True)

    def exclusive_lock(self) -> AbstractContextManager[None]:
        return file_lock(self.meta / "build.lock", shared=False)
