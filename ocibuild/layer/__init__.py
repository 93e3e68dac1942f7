"""Entries -> deterministic tar -> compressed, hashed blob, in one streaming pass."""

from ocibuild.layer.entry import (
    Entry,
    Kind,
    bytes_entry,
    check_relative,
    clean_path,
    dir_entry,
    whiteout_entry,
)

__all__ = [
    "Entry",
    "Kind",
    "bytes_entry",
    "check_relative",
    "clean_path",
    "dir_entry",
    "whiteout_entry",
]
