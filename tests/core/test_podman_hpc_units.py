"""The small rules of podman-hpc's store that need no podman: Go's crc64 and JSON strings, the
layer ids, big-data file names, Go's times; and the tar-split reader on damaged tars. (The
records themselves are checked against the real podman-hpc in tests/hpc.)"""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from ocibuild.errors import LayerError
from ocibuild.layer import tarsplit
from ocibuild.layer.tarsplit import crc64_slow, go_json_string, tar_split
from ocibuild.store.cstorage import big_data_name, derived_link, go_time, layer_ids


def test_crc64_is_gos_iso_crc_fast_or_slow() -> None:
    fast = tarsplit.crc64_span
    assert fast is not tarsplit._slow_span, "the isal package's crc64_iso_refl was not found"
    assert crc64_slow(b"123456789") == 0xB90956C775A41001  # CRC-64/GO-ISO's check value
    data = os.urandom(100_000)
    assert fast(data, 0, len(data), 0) == crc64_slow(data)
    assert fast(data, 5000, 95_000, fast(data, 0, 5000, 0)) == crc64_slow(data)
    assert fast(data, 7, 0, 123) == 123 == tarsplit._slow_span(data, 7, 0, 123)
    assert tarsplit._slow_span(data, 10, 500, 0) == crc64_slow(data[10:510])


def test_go_json_strings() -> None:
    assert go_json_string('a"b\\c\n\t\r') == '"a\\"b\\\\c\\n\\t\\r"'
    assert go_json_string("<&>\x01\x7f\u2028é") == '"\\u003c\\u0026\\u003e\\u0001\x7f\\u2028é"'
    assert go_json_string("\b\f") == '"\\u0008\\u000c"'  # Go 1.19, podman 4.3's


def test_layer_ids_chain_diff_ids_as_containers_image_does() -> None:
    # the demo's first two layers (docs/podman-hpc-layout.md)
    first = "sha256:621fa266ed388af20c4ee946e65f9a325b04df5e37332dc41840207243f75b7e"
    ids = layer_ids([first, "sha256:" + "0" * 64])
    assert ids[0] == first[7:]
    import hashlib

    assert ids[1] == hashlib.sha256(f"{first[7:]}+{'0' * 64}".encode()).hexdigest()
    link = derived_link(ids[0])
    assert len(link) == 26 and set(link) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert derived_link(ids[0]) == link != derived_link(ids[1])


def test_big_data_names() -> None:
    assert big_data_name("manifest") == "manifest"
    assert big_data_name("sha256:3c0e") == "=c2hhMjU2OjNjMGU="
    assert big_data_name("Manifest") == "=TWFuaWZlc3Q="


def test_go_times() -> None:
    assert go_time("2016-01-01T00:00:00Z") == "2016-01-01T00:00:00Z"
    assert go_time("2016-01-01T00:00:00.500000000+00:00") == "2016-01-01T00:00:00.5Z"
    assert go_time("2016-01-01T01:00:00.1234567891+01:00") == "2016-01-01T01:00:00.123456789+01:00"
    assert go_time("yesterday") is None


def split(data: bytes) -> bytes:
    out = io.BytesIO()
    tar_split(io.BytesIO(data), out, "layer sha256:x")
    return out.getvalue()


def one_file_tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("a.txt")
        info.size = 1000
        t.addfile(info, io.BytesIO(b"a" * 1000))
    return out.getvalue()


def test_damaged_tars_are_refused_naming_the_layer() -> None:
    good = one_file_tar()
    assert split(good).count(b'"type":1') == 1
    with pytest.raises(LayerError, match=r"layer sha256:x: the tar ends 488 bytes into b'a.txt'"):
        split(good[:1024])
    with pytest.raises(LayerError, match="layer sha256:x: the tar ends inside a header"):
        split(good[:100])
    bad = bytearray(good)
    bad[0] ^= 1
    with pytest.raises(LayerError, match="a tar header with a bad checksum"):
        split(bytes(bad))
    sparse = bytearray(good)
    sparse[156] = ord("S")
    sparse[148:156] = b" " * 8
    sparse[148:156] = b"%06o\0 " % sum(sparse[:512])
    with pytest.raises(LayerError, match="GNU sparse files are not supported"):
        split(bytes(sparse))
