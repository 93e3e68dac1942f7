"""Read layer blobs back: decompress by media type, iterate tar members as a stream, read a
member's content a chunk at a time."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO, cast

from ocibuild.errors import LayerError
from ocibuild.layer.tarheader import Header
from ocibuild.oci.mediatypes import layer_compression


def _decode_errors() -> tuple[type[BaseException], ...]:
    import lzma
    import zlib

    import zstandard
    from isal import isal_zlib

    isal_error: type[Exception] = isal_zlib.error  # type: ignore[assignment]  # stub: an instance
    return (
        tarfile.TarError,
        EOFError,
        OSError,
        ValueError,  # tarfile's int() of a PAX record (`size=x`), a name's decoding
        OverflowError,
        zlib.error,
        lzma.LZMAError,
        isal_error,
        zstandard.ZstdError,
    )


# what reading a malformed archive (a tar, its compression) raises, from the standard library
# and the decoders: caught wherever archives are read and turned into an error naming them
DECODE_ERRORS = _decode_errors()
UNREADABLE: tuple[type[BaseException], ...] = (LayerError, *DECODE_ERRORS)  # and a cut member

# tarfile's stream buffer. Each read shorter than it (every header) copies what is left of it,
# so a larger one costs more per member: 57,000 members read in 14.4 s with 1 MiB, 4.5 s with this
TAR_BUFFER = 64 << 10


@contextmanager
def gunzipped(raw: BinaryIO, block_size: int = 1 << 20) -> Iterator[BinaryIO]:
    """The decoded stream of gzip `raw`, decoded in a thread of its own (ISA-L), which holds no
    GIL while it decodes: the reader's Python work (tar headers, hashing, writing) goes on
    meanwhile. The thread holds about nine `block_size`s."""
    from isal import igzip_threaded

    with igzip_threaded.open(raw, "rb", threads=1, block_size=block_size) as stream:
        yield cast(BinaryIO, stream)


@contextmanager
def decompressed(blob: BinaryIO, media_type: str) -> Iterator[BinaryIO]:
    """The tar stream inside a layer blob of any OCI or Docker layer media type."""
    compression = layer_compression(media_type)
    if compression == "gzip":
        with gunzipped(blob) as stream:
            yield stream
    elif compression == "zstd":
        import zstandard

        with zstandard.ZstdDecompressor().stream_reader(blob, closefd=False) as stream:
            yield cast(BinaryIO, stream)
    else:
        yield blob


def open_stream(tar_stream: BinaryIO) -> tarfile.TarFile:
    """A tar read front to back, never seeking, its headers decoded by `tarheader`."""
    return tarfile.open(fileobj=tar_stream, mode="r|", bufsize=TAR_BUFFER, tarinfo=Header)


def each_member(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members of a tar opened with `open_stream`, forgotten once read: tarfile keeps every
    member it has read, which grows with their number (a kilobyte or more each)."""
    for info in tar:
        yield info
        # tarfile's iterator reads on once its index passes the list's end; typeshed leaves the
        # attribute out
        tar.members.clear()  # type: ignore[attr-defined]


def members(tar_stream: BinaryIO, what: str) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """Stream the members of a tar layer; read a member's content with `tar.extractfile(info)`."""
    try:
        with open_stream(tar_stream) as tar:
            for info in each_member(tar):
                yield info, tar
    except DECODE_ERRORS as e:
        raise LayerError(f"{what}: not a readable tar layer ({e})") from None


def member_content(
    tar: tarfile.TarFile, info: tarfile.TarInfo, chunk: int = 1 << 20
) -> Iterator[bytes]:
    """The content of a regular member, `chunk` bytes at a time; LayerError if the archive
    ends inside it."""
    f = tar.extractfile(info)
    if f is None:
        raise LayerError(f"{info.name}: no content")
    remaining = info.size
    while remaining:
        data = f.read(min(chunk, remaining))
        if not data:
            raise LayerError(f"{info.name}: the archive ends {remaining} bytes into this file")
        remaining -= len(data)
        yield data
