"""Keys on the command line: the passphrase of a private key (a file, or asked on the
terminal), and reading key files."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ocibuild.errors import SigningKeyError
from ocibuild.infile import read_regular_file
from ocibuild.secrets import register
from ocibuild.signing import keys

PASSPHRASE_HELP = (
    "Read the key's passphrase from the first line of this file [default: asked on the terminal]."
)


def passphrase_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--passphrase-file",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help=PASSPHRASE_HELP,
    )(command)


def read_passphrase(path: Path | None, confirm: bool = False) -> bytes:
    """The passphrase: the first line of `path`, else asked (twice with `confirm`) when stdin
    is a terminal; registered as a secret, kept out of every message."""
    if path is not None:
        text = read_regular_file(path).decode().split("\n", 1)[0].rstrip("\r")
    elif sys.stdin.isatty():
        text = click.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm, default="")
    else:
        raise click.UsageError("no terminal to ask the key's passphrase on: give --passphrase-file")
    register(text)
    return text.encode()


def load_private_key(path: Path, passphrase_file: Path | None) -> keys.PrivateKey:
    try:
        data = read_regular_file(path)
    except OSError as e:
        raise SigningKeyError(f"{path}: cannot read the key ({e.strerror or e})") from None
    return keys.load_private(data, read_passphrase(passphrase_file), str(path))


def load_public_key(path: Path) -> keys.PublicKey:
    try:
        data = read_regular_file(path)
    except OSError as e:
        raise SigningKeyError(f"{path}: cannot read the key ({e.strerror or e})") from None
    return keys.load_public(data, str(path))
