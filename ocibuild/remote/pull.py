"""Pull an image into the store: the manifest (the platform's, from an index), its blobs
verified by size and digest as they stream in, and only then the manifest and its tag."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from ocibuild.errors import RegistryError
from ocibuild.oci import Descriptor, Index, Manifest
from ocibuild.oci.reference import parse_reference
from ocibuild.progress import Message, Reporter, TransferEvent
from ocibuild.remote.auth import repository_scope
from ocibuild.remote.blobs import download_blob
from ocibuild.remote.manifests import choose_platform, get_manifest
from ocibuild.remote.options import RemoteOptions
from ocibuild.remote.progress import BlobProgress
from ocibuild.remote.signatures import verify_image
from ocibuild.remote.transport import RegistryClient
from ocibuild.signing.keys import PublicKey
from ocibuild.store import Store


def pull_image(
    store: Store,
    ref: str,
    options: RemoteOptions,
    report: Reporter,
    verify_key: PublicKey | None = None,
) -> Descriptor:
    """Fetch `ref` into the store, tag it under its full reference, and return the descriptor
    of the image manifest stored. Nothing is tagged unless every digest checked out; with
    `verify_key`, nothing is fetched unless the manifest `ref` names carries a signature of
    that key for `ref` (`remote.signatures.verify_image`)."""
    reference = parse_reference(ref)
    where = str(reference)
    scopes = (repository_scope(reference.repository, "pull"),)
    report(TransferEvent(where, "pulling"))
    with RegistryClient(reference.registry, options, report) as client, store.build_lock():
        top = get_manifest(client, reference.repository, reference.identifier, scopes)
        if verify_key is not None:
            verify_image(client, reference, top.descriptor.digest, verify_key, scopes)
        image = top
        platform = None
        if top.is_index:
            chosen = choose_platform(Index.from_json(top.json()), options.platform, where)
            platform = chosen.platform
            image = get_manifest(client, reference.repository, chosen.digest, scopes)
            if image.is_index:
                raise RegistryError("an index inside an index is not supported", where)
        manifest = Manifest.from_json(image.json())
        blobs = list({d.digest: d for d in (manifest.config, *manifest.layers)}.values())
        cancel = threading.Event()

        def fetch(descriptor: Descriptor, progress: BlobProgress) -> None:
            progress.emit("downloading", 0)
            download_blob(client, reference.repository, store, descriptor, scopes, progress)
            progress.emit("downloaded")

        with ThreadPoolExecutor(options.concurrency, thread_name_prefix="pull") as pool:
            futures = []
            for descriptor in blobs:
                progress = BlobProgress(report, descriptor, "downloading", cancel)
                if store.verified(descriptor.digest, descriptor.size):
                    progress.emit("present")
                    continue
                futures.append(pool.submit(fetch, descriptor, progress))
            try:
                for future in futures:
                    future.result()
            except BaseException:
                cancel.set()  # stops the downloads in flight at their next chunk
                for future in futures:
                    future.cancel()
                raise
        try:
            config = store.config(manifest)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise RegistryError(f"malformed image config: {e}", where) from None
        wanted = options.platform.split("/")
        if platform is None:
            platform = config.platform
            if [platform.os, platform.architecture] != wanted[:2]:
                message = f"{where} is an image for {platform}, not {options.platform}"
                report(Message(message, "warning"))
        store.put_blob(image.data)
        descriptor = Descriptor(
            image.descriptor.media_type,
            image.descriptor.digest,
            image.descriptor.size,
            platform=platform,
        )
        store.tag([where], descriptor)
        for blob in blobs:
            store.state.record_blob_repo(blob.digest, reference.registry, reference.repository)
    report(TransferEvent(where, "pulled", digest=str(descriptor.digest)))
    return descriptor
