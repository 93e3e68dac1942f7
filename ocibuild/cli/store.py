"""Store commands: images, inspect, export, gc, rmi."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ocibuild.cli.state import CliState
from ocibuild.report import human_size
from ocibuild.store.export import FORMATS, export_image
from ocibuild.store.gc import collect


@click.command("images")
@click.option("--digests", is_flag=True, help="Show full manifest digests.")
@click.pass_obj
def images_command(state: CliState, digests: bool) -> None:
    """List the images in the local store."""
    store = state.store()
    rows = []
    images = store.images()
    for ref in sorted(set(store.refs()) - {image.ref for image in images}):
        click.echo(f"warning: {ref}: its manifest or config cannot be read (broken)", err=True)
    for image in sorted(images, key=lambda i: i.ref):
        size = sum(layer.size for layer in image.manifest.layers) + image.manifest.config.size
        digest = image.descriptor.digest if digests else image.descriptor.digest[7:19]
        rows.append(
            (
                image.ref,
                digest,
                str(len(image.manifest.layers)),
                human_size(size),
                image.config.created,
            )
        )
    header = ("REFERENCE", "DIGEST", "LAYERS", "SIZE", "CREATED")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@click.command("inspect")
@click.argument("ref")
@click.option("--manifest", "what", flag_value="manifest", help="Print the manifest only.")
@click.option("--config", "what", flag_value="config", help="Print the image config only.")
@click.pass_obj
def inspect_command(state: CliState, ref: str, what: str | None) -> None:
    """Show an image of the store: reference, digest, manifest and config, as JSON."""
    image = state.store(create=False).image(ref)
    if what == "manifest":
        out = image.manifest.to_json()
    elif what == "config":
        out = image.config.to_json()
    else:
        out = {
            "reference": state.store(create=False).normalize(ref),
            "digest": image.descriptor.digest,
            "mediaType": image.descriptor.media_type,
            "size": sum(layer.size for layer in image.manifest.layers),
            "manifest": image.manifest.to_json(),
            "config": image.config.to_json(),
        }
    click.echo(json.dumps(out, indent=2))


@click.command("export")
@click.argument("ref")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="oci-archive", show_default=True
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Archive file to write.",
)
@click.option(
    "--tag", "tags", multiple=True, help="Name(s) to record in the archive [default: REF]."
)
@click.pass_obj
def export_command(
    state: CliState, ref: str, fmt: str, output: Path, tags: tuple[str, ...]
) -> None:
    """Write an image as an archive for `podman load`, `docker load` or apptainer."""
    export_image(state.store(create=False), ref, fmt, output, list(tags) or None)
    if not state.quiet:
        click.echo(f"wrote {output} ({human_size(output.stat().st_size)})", err=True)


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
    click.echo(f"{verb} {result.removed} blobs ({human_size(result.freed)}); {result.kept} kept")


@click.command("rmi")
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def rmi_command(state: CliState, refs: tuple[str, ...]) -> None:
    """Remove references from the store (blobs go with the next `ocibuild gc`)."""
    store = state.store(create=False)
    for ref in refs:
        store.untag(ref)
        click.echo(f"untagged {store.normalize(ref)}")


COMMANDS = [images_command, inspect_command, export_command, gc_command, rmi_command]
