"""Copy an image between registries and the store, keeping its digests (`crane copy`,
`skopeo copy`).

Each side is a location: a registry reference (`site:5000/hep/art:1`, or `docker://...`), or
`store:REF` for the local store (`store:` alone: under the source's reference).

- registry to registry: the manifest (or the index and every manifest in it) goes over byte
  for byte; each blob is skipped when the target has it, mounted when both repositories are on
  one registry, else streamed from the source straight into the target (never to disk).
- store to registry: a push, keeping the stored manifest's media types.
- registry to store: a pull (one platform of an index, as `ocibuild pull`).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from ocibuild.errors import DigestMismatchError, OcibuildError, RegistryError, TransientError
from ocibuild.net.body import body_chunks
from ocibuild.net.failure import root_cause
from ocibuild.net.retry import Attempts
from ocibuild.oci import Descriptor, Index, Manifest
from ocibuild.oci.reference import Reference, parse_reference
from ocibuild.progress import Reporter, TransferEvent
from ocibuild.remote.auth import repository_scope
from ocibuild.remote.blobs import (
    READ_SIZE,
    UploadSession,
    blob_exists,
    blob_path,
    start_upload,
    wait_all,
)
from ocibuild.remote.manifests import RemoteManifest, get_manifest, put_manifest
from ocibuild.remote.options import RemoteOptions
from ocibuild.remote.progress import BlobProgress
from ocibuild.remote.pull import pull_image
from ocibuild.remote.push import push_images, target_reference
from ocibuild.remote.transport import RegistryClient
from ocibuild.store import Store

STORE_PREFIX = "store:"
REGISTRY_PREFIX = "docker://"


@dataclass(frozen=True)
class Location:
    """Where an image is: in the store (`ref` may be empty: the other side's) or a registry."""

    in_store: bool
    ref: str

    def __str__(self) -> str:
        return f"{STORE_PREFIX}{self.ref}" if self.in_store else self.ref


def parse_location(text: str) -> Location:
    if text.startswith(STORE_PREFIX):
        return Location(True, text[len(STORE_PREFIX) :])
    return Location(False, text.removeprefix(REGISTRY_PREFIX))


@dataclass(frozen=True)
class CopyResult:
    reference: str  # where the image now is, as a location
    digest: str  # of the top manifest (or index) written there


def copy_image(
    store: Store, source: Location, target: Location, options: RemoteOptions, report: Reporter
) -> CopyResult:
    if not source.ref:
        raise OcibuildError("copy: the source needs a reference (store:REF or REGISTRY/REPO:TAG)")
    if not target.in_store and not target.ref:
        raise OcibuildError("copy: the target needs a registry reference (REGISTRY/REPO[:TAG])")
    if source.in_store:
        name = store.normalize(source.ref)
        if target.in_store:
            descriptor = store.resolve(source.ref)
            ref = store.normalize(target.ref or source.ref)
            store.tag([ref], descriptor)
            return CopyResult(f"{STORE_PREFIX}{ref}", descriptor.digest)
        pair = (source.ref, target_reference(name, target.ref))
        (pushed,) = push_images(store, [pair], replace(options, format="auto"), report)
        return CopyResult(pushed.reference, pushed.digest)
    src = parse_reference(source.ref)
    if target.in_store:
        return _pull_into(store, src, target.ref, options, report)
    dst = target_reference(str(src), target.ref)
    digest = copy_between_registries(src, dst, options, report)
    return CopyResult(str(dst), digest)


def _pull_into(
    store: Store, src: Reference, ref: str, options: RemoteOptions, report: Reporter
) -> CopyResult:
    """Pull `src`; keep it under `ref` only, when it names another reference."""
    wanted = store.normalize(ref) if ref else str(src)
    had_source = str(src) in store.refs()
    descriptor = pull_image(store, str(src), options, report)
    if wanted != str(src):
        store.tag([wanted], descriptor)
        if not had_source:
            store.untag(str(src))
    return CopyResult(f"{STORE_PREFIX}{wanted}", descriptor.digest)


def copy_between_registries(
    src: Reference, dst: Reference, options: RemoteOptions, report: Reporter
) -> str:
    """Copy `src` to `dst`, byte for byte; returns the digest of what `dst` now names."""
    src_scopes = (repository_scope(src.repository, "pull"),)
    same_registry = src.registry == dst.registry
    dst_scopes: tuple[str, ...] = (repository_scope(dst.repository, "pull,push"),)
    dst_scopes += src_scopes if same_registry else ()
    report(TransferEvent(str(dst), "copying", str(src)))
    with (
        RegistryClient(src.registry, options, report) as source_client,
        RegistryClient(dst.registry, options, report) as target_client,
        ThreadPoolExecutor(options.concurrency, thread_name_prefix="copy") as pool,
    ):
        copier = _Copier(
            source_client, src, src_scopes, target_client, dst, dst_scopes, same_registry, pool
        )
        top = get_manifest(source_client, src.repository, src.identifier, src_scopes)
        children = []
        if top.is_index:
            for child in Index.from_json(top.json()).manifests:
                manifest = get_manifest(source_client, src.repository, child.digest, src_scopes)
                if manifest.is_index:
                    raise RegistryError(f"{src}: an index inside an index is not supported")
                children.append(manifest)
        else:
            children.append(top)
        copier.blobs([b for m in children for b in _blobs_of(Manifest.from_json(m.json()))], report)
        for manifest in children if top.is_index else []:
            copier.put(manifest, manifest.descriptor.digest)
        digest = copier.put(top, dst.tag or str(dst.digest))
    if dst.digest and dst.digest != digest:
        raise DigestMismatchError(f"{dst}: the copied manifest has digest {digest}")
    report(TransferEvent(str(dst), "copied", str(src), str(digest)))
    return digest


def _blobs_of(manifest: Manifest) -> list[Descriptor]:
    return [manifest.config, *manifest.layers]


class _Copier:
    def __init__(
        self,
        source: RegistryClient,
        src: Reference,
        src_scopes: tuple[str, ...],
        target: RegistryClient,
        dst: Reference,
        dst_scopes: tuple[str, ...],
        same_registry: bool,
        pool: ThreadPoolExecutor,
    ) -> None:
        self.source, self.src, self.src_scopes = source, src, src_scopes
        self.target, self.dst, self.dst_scopes = target, dst, dst_scopes
        self.same_registry = same_registry
        self.pool = pool
        self.cancel = threading.Event()

    def put(self, manifest: RemoteManifest, identifier: str) -> str:
        return put_manifest(
            self.target,
            self.dst.repository,
            identifier,
            manifest.descriptor.media_type,
            manifest.data,
            self.dst_scopes,
        )

    def blobs(self, descriptors: list[Descriptor], report: Reporter) -> None:
        unique = list({d.digest: d for d in descriptors}.values())
        wait_all(
            (
                self.pool.submit(self.blob, d, BlobProgress(report, d, "copying", self.cancel))
                for d in unique
            ),
            self.cancel,
        )

    def blob(self, descriptor: Descriptor, progress: BlobProgress) -> None:
        repository = self.dst.repository
        if blob_exists(self.target, repository, descriptor, self.dst_scopes):
            progress.emit("skipped")
            return
        session = None
        if self.same_registry and self.src.repository != repository:
            mount = (descriptor.digest, self.src.repository)
            session = start_upload(self.target, repository, self.dst_scopes, mount=mount)
            if session is None:
                progress.emit("mounted")
                return
        progress.emit("copying", 0)
        self.stream(descriptor, progress, session)
        progress.emit("copied")

    def stream(
        self, descriptor: Descriptor, progress: BlobProgress, session: UploadSession | None
    ) -> None:
        """GET from the source, PUT to the target, chunk by chunk; a broken transfer starts
        over (a fresh GET and upload), up to the retries the options allow."""
        attempts = Attempts(self.target.options.retry_policy, self.target.on_retry)
        while True:
            try:
                session = session or start_upload(self.target, self.dst.repository, self.dst_scopes)
                if session is None:
                    raise RegistryError(f"{self.dst}: an upload was answered as a mount")
                self._transfer(descriptor, progress, session)
                return
            except TransientError as e:
                attempts.failed(e)
                session = None

    def _transfer(
        self, descriptor: Descriptor, progress: BlobProgress, session: UploadSession
    ) -> None:
        response = self.source.request(
            "GET",
            blob_path(self.src.repository, descriptor.digest),
            scopes=self.src_scopes,
            stream=True,
        )
        with response:
            stream = _VerifiedStream(body_chunks(response, READ_SIZE), descriptor, progress)
            sent = False

            def body() -> _VerifiedStream:
                nonlocal sent
                if sent:  # asked again (new credentials): a stream is read once; start over
                    raise TransientError(f"blob {descriptor.digest}: upload asked twice")
                sent = True
                return stream

            separator = "&" if "?" in session.location else "?"
            url = f"{session.location}{separator}{urlencode({'digest': descriptor.digest})}"
            try:
                put = self.target.attempt(
                    "PUT",
                    url,
                    scopes=self.dst_scopes,
                    headers={"Content-Type": "application/octet-stream"},
                    body=body,
                )
            except OSError as e:
                raise TransientError(
                    f"blob {descriptor.digest} from {self.src.name}: {root_cause(e)}"
                ) from None
            put.close()
            if put.status_code not in (201, 204):
                raise self.target.error("PUT", put, self.dst_scopes)


class _VerifiedStream:
    """The body of a streamed upload: the source's chunks, counted and hashed as they pass; a
    source that sends other bytes than the descriptor says fails the upload."""

    def __init__(
        self, chunks: Iterator[bytes], descriptor: Descriptor, progress: BlobProgress
    ) -> None:
        self.chunks, self.descriptor, self.progress = chunks, descriptor, progress

    def __len__(self) -> int:
        return self.descriptor.size

    def __iter__(self) -> Iterator[bytes]:
        h = hashlib.sha256()
        done = 0
        for chunk in self.chunks:
            done += len(chunk)
            if done > self.descriptor.size:
                break
            h.update(chunk)
            yield chunk
            self.progress.update(done)
        if done != self.descriptor.size or "sha256:" + h.hexdigest() != self.descriptor.digest:
            raise DigestMismatchError(
                f"blob {self.descriptor.digest}: the source sent other content "
                f"({done} bytes, sha256:{h.hexdigest()})"
            )
