"""`ocibuild key generate`, `sign`, `verify`: image signatures containers/image and cosign
read (sigstore attachments), made and checked with keys in cosign's format."""

from __future__ import annotations

from pathlib import Path

import click

from ocibuild.cli.display import CliState
from ocibuild.cli.keys import (
    load_private_key,
    load_public_key,
    passphrase_option,
    read_passphrase,
)
from ocibuild.cli.registry import connection_options, remote_options
from ocibuild.errors import OcibuildError
from ocibuild.signing import keys


@click.group("key")
def key_group() -> None:
    """Signing keys in cosign's format (`cosign.key`/`cosign.pub`)."""


@key_group.command("generate")
@click.option(
    "--output-prefix",
    default="ocibuild",
    show_default=True,
    help="Write PREFIX.key (the private key, encrypted) and PREFIX.pub (the public key).",
)
@passphrase_option
def key_generate_command(output_prefix: str, passphrase_file: Path | None) -> None:
    """Make an ECDSA P-256 key pair: PREFIX.key, encrypted with a passphrase as cosign does
    (what `skopeo copy --sign-by-sigstore-private-key` and `cosign sign --key` take), and
    PREFIX.pub (policy.json's `keyPath`, `ocibuild verify --key`). Existing files are kept."""
    private, public = Path(f"{output_prefix}.key"), Path(f"{output_prefix}.pub")
    for path in (private, public):
        if path.exists() or path.is_symlink():
            raise OcibuildError(f"{path} exists: remove it, or give another --output-prefix")
    pair = keys.generate(read_passphrase(passphrase_file, confirm=True))
    from ocibuild.outpath import write_output

    write_output(private, pair.private_pem, mode=0o600)
    write_output(public, pair.public_pem)
    click.echo(f"Private key written to {private}\nPublic key written to {public}")


@click.command("sign")
@click.argument("refs", nargs=-1, required=True)
@click.option(
    "--key",
    "key_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    help="Private key (cosign's encrypted format: `ocibuild key generate`, `cosign generate-key-pair`).",
)
@passphrase_option
@connection_options
@click.pass_obj
def sign_command(
    state: CliState,
    refs: tuple[str, ...],
    key_path: Path,
    passphrase_file: Path | None,
    insecure: bool,
    ca_cert: Path | None,
) -> None:
    """Sign images in their registry, as `cosign sign --key` and `skopeo copy
    --sign-by-sigstore-private-key` do: each REF's manifest digest, for the identity REF (a
    `sha256-<hex>.sig` attachment). An image the store holds gets its provenance statement
    signed with the same key, as a referrer. Prints REF@DIGEST per image signed."""
    from ocibuild.remote.sign import sign_images

    key = load_private_key(key_path, passphrase_file)
    options = remote_options(insecure, ca_cert)
    for signed in sign_images(
        state.store(create=False), list(refs), key, options, state.reporter()
    ):
        click.echo(f"{signed.reference}@{signed.digest}")


@click.command("verify")
@click.argument("refs", nargs=-1, required=True)
@click.option(
    "--key",
    "key_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    help="Public key (PEM) the signatures must be made with.",
)
@connection_options
@click.pass_obj
def verify_command(
    state: CliState, refs: tuple[str, ...], key_path: Path, insecure: bool, ca_cert: Path | None
) -> None:
    """Check the signatures of images in their registry (ocibuild's, cosign's or skopeo's):
    a signature the key made, of the manifest REF names, for REF's repository and tag (as
    podman's `sigstoreSigned` policy checks). Prints REF@DIGEST and the identity signed per
    image; fails (exit 1) for an image without one."""
    from ocibuild.remote.sign import verify_images

    key = load_public_key(key_path)
    options = remote_options(insecure, ca_cert)
    for result in verify_images(list(refs), key, options, state.reporter()):
        click.echo(f"{result.reference}@{result.digest}: signed for {result.identity}")
        for provenance in result.provenance:
            click.echo(f"  provenance {provenance}: signed by the key")


COMMANDS = [key_group, sign_command, verify_command]
