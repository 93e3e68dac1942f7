"""Store commands: images, inspect, export, gc, rmi, tag, load."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ocibuild.cli.display import CliState
from ocibuild.errors import NotFoundError, OcibuildError
from ocibuild.infile import open_regular_file
from ocibuild.oci import Descriptor
from ocibuild.oci.reference import parse_reference
from ocibuild.progress import Message, human_size, plural
from ocibuild.store import Store, StoredImage, default_store_path
from ocibuild.store.export import (
    FORMATS,
    PODMAN_HPC,
    ROOTFS_FORMATS,
    RootfsOptions,
    export_image,
    write_archive,
)
from ocibuild.store.gc import collect
from ocibuild.store.squashfs import SQUASHFS_COMPRESSIONS


@click.command("images")
@click.option("--digests", is_flag=True, help="Show full manifest digests.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json: an array of {reference, digest, mediaType, layers, size, created, platform}.",
)
@click.pass_obj
def images_command(state: CliState, digests: bool, fmt: str) -> None:
    """List the images in the local store."""
    root = state.store_path or default_store_path()
    # listing creates no store; a directory holding anything but a store is refused by open
    exists = root.is_dir() and any(root.iterdir())
    store = state.store() if exists else None
    images = sorted(store.images(), key=lambda i: i.ref) if store else []
    for ref in sorted(set(store.refs() if store else ()) - {image.ref for image in images}):
        click.echo(f"warning: {ref}: its manifest or config cannot be read (broken)", err=True)
    if not images:
        state.reporter()(
            Message(
                f"no images in the store {root}; --store DIR or $OCIBUILD_STORE names another "
                "(the README's quick start builds into ./store)"
            )
        )
    # a reference naming an index (several platforms) lists this machine's image, under the
    # index's digest: the one `recipe` printed and `push` sends
    tops = store.refs() if store else {}
    if fmt == "json":
        click.echo(json.dumps([_image_json(image, tops) for image in images], indent=2))
        return
    rows = []
    for image in images:
        top = tops.get(image.ref, image.descriptor).digest
        digest = top if digests else top[7:19]
        rows.append(
            (
                image.ref,
                digest,
                str(len(image.manifest.layers)),
                human_size(_image_size(image)),
                image.config.created,
            )
        )
    header = ("REFERENCE", "DIGEST", "LAYERS", "SIZE", "CREATED")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _image_size(image: StoredImage) -> int:
    return sum(layer.size for layer in image.manifest.layers) + image.manifest.config.size


def _image_json(image: StoredImage, tops: dict[str, Descriptor]) -> dict[str, object]:
    top = tops.get(image.ref, image.descriptor)
    return {
        "reference": image.ref,
        "digest": str(top.digest),
        "mediaType": top.media_type,
        "layers": len(image.manifest.layers),
        "size": _image_size(image),
        "created": image.config.created,
        "platform": str(image.config.platform),
    }


@click.command("inspect")
@click.argument("ref")
@click.option("--manifest", "what", flag_value="manifest", help="Print the manifest only.")
@click.option("--config", "what", flag_value="config", help="Print the image config only.")
@click.pass_obj
def inspect_command(state: CliState, ref: str, what: str | None) -> None:
    """Show an image of the store: reference, digest, manifest and config, as JSON; for a
    Docker-format image also `ociView`, the digest of the OCI manifest the store indexes it by
    for the OCI tools (skopeo's `oci:`, umoci)."""
    store = state.store(create=False)
    image = store.image(ref)
    if what == "manifest":
        out = image.manifest.to_json()
    elif what == "config":
        out = image.config.to_json()
    else:
        out = {
            "reference": store.normalize(ref),
            "digest": image.descriptor.digest,
            "mediaType": image.descriptor.media_type,
            "size": _image_size(image),
            "manifest": image.manifest.to_json(),
            "config": image.config.to_json(),
        }
        top = store.resolve(ref)
        if top.digest != image.descriptor.digest:  # an index: this machine's image of it
            out["index"] = {"digest": top.digest, "mediaType": top.media_type}
        view = _oci_view(store, ref)
        if view is not None and view.digest not in (image.descriptor.digest, top.digest):
            out["ociView"] = {"digest": view.digest, "mediaType": view.media_type}
    click.echo(json.dumps(out, indent=2))


def _oci_view(store: Store, ref: str) -> Descriptor | None:
    """The index entry the OCI tools read for `ref` (a Docker-format image's OCI view), or
    None when `ref` is no reference of the store (a digest)."""
    try:
        return store.entry(ref)
    except NotFoundError:
        return None


@click.command("export")
@click.argument("ref")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="oci-archive", show_default=True
)
@click.option(
    "-o",
    "--output",
    type=click.Path(allow_dash=True),
    required=True,
    help="File to write (a directory for --format dir; podman-hpc's squash directory for "
    "--format podman-hpc; a path ending with / is a directory, never a file); - writes an "
    "archive to stdout (`ocibuild export REF -o - | podman load`). Never inside the store.",
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    help="Name(s) to record in the archive or podman-hpc's store [default: REF].",
)
@click.option(
    "--all-root", is_flag=True, help="squashfs/dir: every file owned by root, as Shifter does."
)
@click.option("--xattrs", is_flag=True, help="squashfs: keep extended attributes [default: none].")
@click.option(
    "--compression",
    type=click.Choice(SQUASHFS_COMPRESSIONS),
    help="squashfs and podman-hpc: block compression [default: squashfs gzip, which every "
    "kernel and squashfuse read; podman-hpc lz4, as its migrate makes them].",
)
@click.option(
    "--level",
    type=int,
    help="squashfs and podman-hpc: compression level [default: gzip 4 (1-9), xz 6 (0-9), "
    "zstd 6 (1-22)].",
)
@click.option(
    "--devices",
    is_flag=True,
    help="dir: write the image's device nodes (DANGEROUS: a hostile image's /dev/mem or disk "
    "device would be there on the host) [default: left out, with a warning].",
)
@click.option(
    "--keep-setid",
    is_flag=True,
    help="dir: keep set-uid and set-gid bits (DANGEROUS: a hostile image's set-uid root shell "
    "would be there on the host) [default: cleared, with a warning].",
)
@click.option(
    "--platform",
    help="os/arch[/variant]: the image of a multi-platform image to export [default: this "
    "machine's].",
)
@click.pass_obj
def export_command(
    state: CliState,
    ref: str,
    fmt: str,
    output: str,
    tags: tuple[str, ...],
    all_root: bool,
    xattrs: bool,
    compression: str | None,
    level: int | None,
    platform: str | None,
    devices: bool,
    keep_setid: bool,
) -> None:
    """Write an image as an archive for `podman load`, `docker load` or apptainer, its root
    filesystem as a squashfs or directory for HPC runtimes (ch-run, Shifter's import), or into
    podman-hpc's squash store as its `migrate` would.

    \b
      ocibuild export REF -o - | podman load
      ocibuild export REF --format squashfs -o image.sqfs    then: ch-run --set-env image.sqfs -- CMD
      ocibuild export REF --format dir -o image/             then: ch-run --set-env image -- CMD
      ocibuild export REF --format podman-hpc -o $SCRATCH/storage   then: podman-hpc run REF CMD
    """
    rootfs = None
    chosen = all_root or xattrs or compression or level is not None or devices or keep_setid
    if fmt in ROOTFS_FORMATS or chosen:
        from ocibuild.store.podmanhpc import DEFAULT_COMPRESSION

        default = DEFAULT_COMPRESSION if fmt == PODMAN_HPC else "gzip"
        rootfs = RootfsOptions(
            all_root, xattrs, compression or default, level, devices=devices, keep_setid=keep_setid
        )
    if output == "-":
        if rootfs is not None:
            raise click.UsageError(f"--format {fmt} writes a file or directory: give -o PATH")
        if sys.stdout.isatty():
            raise click.UsageError("refusing to write an archive to a terminal; redirect stdout")
        write_archive(
            state.store(create=False), ref, fmt, sys.stdout.buffer, list(tags) or None, platform
        )
        sys.stdout.buffer.flush()
        return
    export_image(
        state.store(create=False),
        ref,
        fmt,
        output,
        list(tags) or None,
        rootfs,
        state.reporter(),
        platform,
    )
    if not state.quiet:
        size = "" if fmt in ("dir", PODMAN_HPC) else f" ({human_size(Path(output).stat().st_size)})"
        click.echo(f"wrote {output}{size}", err=True)


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@click.pass_obj
def gc_command(state: CliState, dry_run: bool) -> None:
    """Remove blobs no image in the store refers to."""
    result = collect(state.store(), dry_run=dry_run)
    for broken in result.broken:
        click.echo(f"warning: broken reference {broken}; its blobs are kept", err=True)
    if result.broken:
        click.echo(
            "warning: no blob removed while a reference is broken "
            "(remove it with `ocibuild rmi` or pull it again)",
            err=True,
        )
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {plural(result.removed, 'blob')} ({human_size(result.freed)}); {result.kept} kept"
    )


@click.command("rmi")
@click.argument("refs", nargs=-1, required=True)
@click.option(
    "--podman-hpc",
    "squash_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Remove from podman-hpc's squash store SQUASH_DIR instead (what `export --format "
    "podman-hpc -o SQUASH_DIR` wrote): names, or image ids; an image goes with its last name, "
    "and with it the layers and squash no other image uses.",
)
@click.pass_obj
def rmi_command(state: CliState, refs: tuple[str, ...], squash_dir: Path | None) -> None:
    """Remove references from the store (blobs go with the next `ocibuild gc`)."""
    if squash_dir is not None:
        from ocibuild.store.podmanhpcrmi import remove_podman_hpc

        removal = remove_podman_hpc(squash_dir, list(refs))
        for name in removal.untagged:
            click.echo(f"untagged {name}")
        for image_id in removal.removed_images:
            click.echo(f"deleted {image_id}")
        for path in removal.left:
            state.reporter()(
                Message(
                    f"{path}: not removed, still in use (a container running from the image?): "
                    "no record points at it any more; remove it once it is free",
                    "warning",
                )
            )
        return
    store = state.store(create=False)
    for ref in refs:
        store.untag(ref)
        click.echo(f"untagged {store.normalize(ref)}")


@click.command("tag")
@click.argument("source")
@click.argument("targets", nargs=-1, required=True)
@click.pass_obj
def tag_command(state: CliState, source: str, targets: tuple[str, ...]) -> None:
    """Add references TARGETS to the image SOURCE of the store, like `docker tag`; prints
    REF@DIGEST per new reference.

    \b
      ocibuild tag localhost/ocibuild/demo-art_1_18_03_e9-prof:latest localhost:5000/hep/demo:1
      ocibuild push localhost:5000/hep/demo:1
    """
    store = state.store(create=False)
    descriptor = store.resolve(source)
    refs = [str(parse_reference(target)) for target in targets]
    store.tag(refs, descriptor)
    for ref in refs:
        click.echo(f"{ref}@{descriptor.digest}")


@click.command("load")
@click.argument("archive", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option(
    "-t",
    "--tag",
    "tags",
    multiple=True,
    help="Store the image under this reference instead of the names the archive records "
    "(one-image archives; needed when it records none). Repeatable.",
)
@click.pass_obj
def load_command(state: CliState, archive: Path, tags: tuple[str, ...]) -> None:
    """Load the images of ARCHIVE (- for stdin) into the store: a docker-archive (`docker
    save`, `podman save`) or an oci-archive, compressed or not, told apart by content.
    Every blob is verified; prints REF@DIGEST per image reference."""
    from ocibuild.store.load import load_archive

    if str(archive) == "-":
        images = load_archive(state.store(), sys.stdin.buffer, "stdin", tags, state.reporter())
    else:
        try:
            stream = open_regular_file(archive)  # a FIFO or /dev/zero never blocks nor fills
        except OSError as e:
            hint = " (pipe it to `ocibuild load -`)" if "FIFO" in (e.strerror or "") else ""
            raise OcibuildError(f"cannot read {archive}: {e.strerror or e}{hint}") from None
        store = state.store()
        with stream:
            images = load_archive(store, stream, str(archive), tags, state.reporter())
    for image in images:
        for ref in image.refs:
            click.echo(f"{ref}@{image.descriptor.digest}")


@click.command("sbom")
@click.argument("ref")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["spdx", "cyclonedx"]),
    help="SPDX 2.3 JSON or CycloneDX 1.6 JSON [default: the one stored with the image].",
)
@click.pass_obj
def sbom_command(state: CliState, ref: str, fmt: str | None) -> None:
    """Print the SBOM of an image of the store: what every layer holds (UPS products,
    packages, files, with sha256, URLs, package URLs, licenses), as stored with the image
    when it was built (and pushed with it), or written now in the other format."""
    from ocibuild.builder.attest import stored_sbom

    sys.stdout.buffer.write(stored_sbom(state.store(create=False), ref, fmt))
    sys.stdout.buffer.flush()


COMMANDS = [
    sbom_command,
    images_command,
    inspect_command,
    export_command,
    gc_command,
    rmi_command,
    tag_command,
    load_command,
]
