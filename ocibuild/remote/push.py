"""Push images of the store: every blob confirmed in the target repository (already there,
mounted from another repository of the same registry, or uploaded), then the manifest, as the
image was built (its digest), or converted to the family `RemoteOptions.format` names (another
digest, said), unless the registry already holds that very manifest under the name."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

from ocibuild.errors import AuthError, DigestMismatchError, RegistryError
from ocibuild.jsonread import read_json_object
from ocibuild.oci import Descriptor, Index, Manifest
from ocibuild.oci.digest import Digest, sha256_digest
from ocibuild.oci.formats import manifest_format
from ocibuild.oci.mediatypes import INDEXES
from ocibuild.oci.reference import Reference, parse_reference
from ocibuild.progress import Message, Reporter, TransferEvent, plural
from ocibuild.remote.auth import repository_scope
from ocibuild.remote.blobs import UploadSession, blob_exists, start_upload, upload_blob, wait_all
from ocibuild.remote.manifests import convert, manifest_digest, push_format, put_manifest
from ocibuild.remote.options import RemoteOptions
from ocibuild.remote.progress import BlobProgress
from ocibuild.remote.referrers import push_referrers
from ocibuild.remote.signatures import sign_image
from ocibuild.remote.transport import RegistryClient
from ocibuild.signing.keys import PrivateKey
from ocibuild.store import Store, StoredImage

log = logging.getLogger(__name__)

MOUNT_CANDIDATES = 2


@dataclass(frozen=True)
class PushResult:
    source: str
    reference: str
    digest: Digest  # of the manifest as pushed (a converted one differs from the store's)
    media_type: str
    size: int
    format: str  # "docker" or "oci"
    manifest_pushed: bool  # False when the registry already held this manifest under the name
    referrers: tuple[Digest, ...]  # the artifacts about it sent with it (SBOM, provenance)
    signed: bool  # a signature attached (`key`)
    uploaded: tuple[Digest, ...]
    mounted: tuple[Digest, ...]
    skipped: tuple[Digest, ...]
    bytes_uploaded: int
    seconds: float


def target_reference(source: str, to: str | None = None) -> Reference:
    """Where `source` goes: itself; `to` if it is a reference (keeping the source's tag if `to`
    names none); or, if `to` ends with `/`, the same repository under that registry/prefix."""
    src = parse_reference(source)
    if not to:
        return src
    if to.endswith("/"):
        text = f"{to.rstrip('/')}/{src.repository}"
        text += f":{src.tag}" if src.tag else ""
        return parse_reference(text + (f"@{src.digest}" if src.digest else ""))
    target = parse_reference(to, default_tag="")
    if not target.tag and not target.digest:
        target = target.with_tag(src.tag or "latest")
    return target


def push_image(
    store: Store,
    ref: str,
    options: RemoteOptions,
    report: Reporter,
    to: str | None = None,
    key: PrivateKey | None = None,
) -> PushResult:
    return push_images(store, [(ref, target_reference(ref, to))], options, report, key)[0]


def push_images(
    store: Store,
    pairs: Sequence[tuple[str, Reference]],
    options: RemoteOptions,
    report: Reporter,
    key: PrivateKey | None = None,
) -> list[PushResult]:
    """Push each (source ref in the store, target reference), sharing connections, tokens and
    the blobs already confirmed between them; with each image the store's artifacts about it
    (SBOM, provenance), and with `key` a signature for the target reference."""
    results = []
    with ExitStack() as stack:
        stack.enter_context(store.build_lock())
        pool = stack.enter_context(
            ThreadPoolExecutor(options.concurrency, thread_name_prefix="push")
        )
        pusher = _Pusher(store, options, report, pool, stack, key)
        for source, target in pairs:
            results.append(pusher.push(source, target))
    return results


class _Pusher:
    """State shared by the pushes of one command: clients per registry, confirmed blobs."""

    def __init__(
        self,
        store: Store,
        options: RemoteOptions,
        report: Reporter,
        pool: ThreadPoolExecutor,
        stack: ExitStack,
        key: PrivateKey | None,
    ) -> None:
        self.key = key
        self.store = store
        self.options = options
        self.report = report
        self.pool = pool
        self.stack = stack
        self.clients: dict[str, RegistryClient] = {}
        self.blobs: dict[tuple[str, str, str], Future[str]] = {}
        self.cancel = threading.Event()

    def client(self, registry: str) -> RegistryClient:
        if registry not in self.clients:
            client = RegistryClient(registry, self.options, self.report)
            self.clients[registry] = self.stack.enter_context(client)
        return self.clients[registry]

    def push(self, source: str, target: Reference) -> PushResult:
        top = self.store.resolve(source)
        if top.media_type in INDEXES:
            return self._push_index(source, target, top)
        image = self.store.image(source)
        return self._push_image(source, target, image, target.tag or str(target.digest))

    def _push_index(self, source: str, target: Reference, top: Descriptor) -> PushResult:
        """Every image of the index (by digest), then the index under the tag, its bytes as
        built: one digest, from the build to the registry."""
        started = time.monotonic()
        fmt = manifest_format(top.media_type)
        if self.options.format not in ("auto", fmt):
            raise RegistryError(
                f"{source} is an image index built as {fmt}: it is pushed as built "
                "(build it with --format to change the family)"
            )
        data = self.store.read_blob(top.digest)
        index = Index.from_json(read_json_object(data, str(top.digest)))
        pushed = []
        for member in index.manifests:
            manifest = Manifest.from_json(
                read_json_object(self.store.read_blob(member.digest), str(member.digest))
            )
            image = StoredImage(source, member, manifest, self.store.config(manifest))
            pushed.append(
                self._push_image(f"{source} ({member.platform})", target, image, str(member.digest))
            )
        client = self.client(target.registry)
        scopes = (repository_scope(target.repository, "pull,push"),)
        identifier = target.tag or str(target.digest)
        there = manifest_digest(client, target.repository, identifier, top.media_type, scopes)
        if there != top.digest:
            put_manifest(client, target.repository, identifier, top.media_type, data, scopes)
        if self.key is not None:
            sign_image(client, target, top.digest, self.key, scopes)
        result = PushResult(
            source=source,
            reference=str(target),
            digest=top.digest,
            media_type=top.media_type,
            size=len(data),
            format=fmt,
            manifest_pushed=there != top.digest,
            referrers=tuple(d for r in pushed for d in r.referrers),
            signed=self.key is not None,
            uploaded=tuple(d for r in pushed for d in r.uploaded),
            mounted=tuple(d for r in pushed for d in r.mounted),
            skipped=tuple(d for r in pushed for d in r.skipped),
            bytes_uploaded=sum(r.bytes_uploaded for r in pushed),
            seconds=time.monotonic() - started,
        )
        detail = f"({fmt}) index of {plural(len(pushed), 'image')}"
        self.report(TransferEvent(str(target), "pushed", source, str(top.digest), detail))
        return result

    def _push_image(
        self, source: str, target: Reference, image: StoredImage, identifier: str
    ) -> PushResult:
        """One image: its blobs, then its manifest under `identifier` (a tag, or its digest
        for an image of an index)."""
        started = time.monotonic()
        fmt = push_format(image.manifest, self.options.format)
        media_type, data = convert(
            image.descriptor.media_type, self.store.read_blob(image.descriptor.digest), fmt
        )
        self.report(TransferEvent(str(target), "pushing", source=source))
        if media_type != image.descriptor.media_type:
            self.report(
                Message(
                    f"{target}: converted to {fmt} media types: pushed as {sha256_digest(data)}, "
                    f"not the image's own {image.descriptor.digest}",
                    "warning",
                )
            )
        client = self.client(target.registry)
        scopes = (repository_scope(target.repository, "pull,push"),)
        blobs = list(
            {d.digest: d for d in (image.manifest.config, *image.manifest.layers)}.values()
        )
        own: dict[Digest, Future[str]] = {}
        for descriptor in blobs:
            key = (target.registry, target.repository, descriptor.digest)
            if key not in self.blobs:
                self.blobs[key] = own[descriptor.digest] = self.pool.submit(
                    self._ensure_blob, client, target.repository, descriptor, scopes
                )
        try:
            wait_all(
                (self.blobs[(target.registry, target.repository, d.digest)] for d in blobs),
                self.cancel,
            )
        except DigestMismatchError as e:
            raise e.located(self.store.normalize(source)) from None
        identifier = target.tag or str(target.digest)
        digest = sha256_digest(data)
        there = manifest_digest(client, target.repository, identifier, media_type, scopes)
        if there != digest:
            put_manifest(client, target.repository, identifier, media_type, data, scopes)
        if target.digest and target.digest != digest:
            log.warning("%s: pushed manifest has digest %s", target, digest)
        referrers: list[Digest] = []
        if media_type == image.descriptor.media_type:  # their subject is the image as built
            referrers = push_referrers(
                client, self.store, target.repository, image.descriptor, self.key, scopes
            )
        elif self.store.referrers(image.descriptor.digest):
            self.report(Message(f"{target}: converted: its SBOM and provenance stay behind"))
        if self.key is not None and identifier == (target.tag or str(target.digest)):
            sign_image(client, target, digest, self.key, scopes)
        status = {d.digest: own[d.digest].result() if d.digest in own else "skipped" for d in blobs}
        result = PushResult(
            source=source,
            reference=str(target),
            digest=digest,
            media_type=media_type,
            size=len(data),
            format=fmt,
            manifest_pushed=there != digest,
            referrers=tuple(referrers),
            signed=self.key is not None,
            uploaded=tuple(d for d, s in status.items() if s == "uploaded"),
            mounted=tuple(d for d, s in status.items() if s == "mounted"),
            skipped=tuple(d for d, s in status.items() if s == "skipped"),
            bytes_uploaded=sum(d.size for d in blobs if status[d.digest] == "uploaded"),
            seconds=time.monotonic() - started,
        )
        detail = (
            f"({fmt}) {plural(len(result.uploaded), 'blob')} uploaded, "
            f"{len(result.mounted)} mounted, {len(result.skipped)} already there"
            + ("" if result.manifest_pushed else "; the manifest too")
            + (f"; {plural(len(referrers), 'referrer')}" if referrers else "")
            + ("; signed" if result.signed else "")
        )
        self.report(TransferEvent(str(target), "pushed", source, str(digest), detail))
        return result

    def _ensure_blob(
        self,
        client: RegistryClient,
        repository: str,
        descriptor: Descriptor,
        scopes: tuple[str, ...],
    ) -> str:
        """Make sure the registry holds a blob in `repository`; returns how."""
        progress = BlobProgress(self.report, descriptor, "uploading", self.cancel)
        status = "skipped"
        if not blob_exists(client, repository, descriptor, scopes):
            session, status = self._mount(client, repository, descriptor, scopes)
            if status != "mounted":
                progress.emit("uploading", 0)
                upload_blob(client, repository, self.store, descriptor, scopes, progress, session)
                status = "uploaded"
        progress.emit(status)
        self.store.state.record_blob_repo(descriptor.digest, client.registry, repository)
        return status

    def _mount(
        self,
        client: RegistryClient,
        repository: str,
        descriptor: Descriptor,
        scopes: tuple[str, ...],
    ) -> tuple[UploadSession | None, str]:
        """Try a cross-repository mount from where the store saw the blob in this registry.
        Returns (an upload session the registry opened instead, or None; the status)."""
        sources = [
            r
            for r in self.store.state.blob_repos(descriptor.digest, client.registry)
            if r != repository
        ]
        session = None
        for source in sources[:MOUNT_CANDIDATES]:
            try:
                session = start_upload(
                    client,
                    repository,
                    (*scopes, repository_scope(source, "pull")),
                    mount=(descriptor.digest, source),
                )
            except AuthError as e:
                log.debug("no mount of %s from %s: %s", descriptor.digest, source, e)
                continue
            if session is None:
                log.debug("mounted %s from %s", descriptor.digest, source)
                return None, "mounted"
        return session, "upload"
