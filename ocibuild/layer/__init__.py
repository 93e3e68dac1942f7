"""Entries -> deterministic tar -> compressed, hashed blob, in one streaming pass.

entry      what a layer holds: files, directories, links, whiteouts (`Entry`)
tarstream  entries -> a deterministic PAX tar stream
codec      gzip (ISA-L), zstd or none, on every core
writer     tar -> compressed blob, hashed as it streams (diff_id and digest)
blob       the `Layer` a writer produced
apart      a heavy layer written in a process of its own
reader     layers read back
"""
