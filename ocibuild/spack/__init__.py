"""Spack build caches as image content, without Spack: the cache's index and spec files
(`cache`), the DAG and the roots a recipe asks for (`dag`, `lockfile`), the install tree
(`layout`), the `.spack` tarballs read and relocated as
`spack install --cache-only` would (`tarball`, `buildinfo`, `relocate`, `elf`, `sbang`), the
database a Spack pointed at the tree reads (`database`), a merged view (`view`), the
environment `spack load` and `spack env activate` print (`environment`), and which packages
share a layer (`layering`).

Nothing here imports Spack: the rules are read from its code (docs/spack.md names them) and
checked against what the real Spack wrote (tests/spack/fixtures).
"""
