"""The UPS domain: scisoft mirrors, bundle manifests, product tarballs as layer entries, and the
environment UPS's `setup` gives.

    names        bundle specs, versions (v1_18_03 <-> 1.18.03), OS -> flavor, qualifiers
    scisoft      where manifests and tarballs live on a mirror
    manifest     bundle manifests
    pull         fetching a bundle's manifest and tarballs (cache, lock file)
    tarball      tarballs -> layer entries, streamed; bzip2 on every core (bzip2)
    layering     which products share a layer
    declaration  .version and .chain files; table: .table files; database: a products tree
    environment  what `setup` does to the environment: instances, dependencies, actions
    functions    the environment edits of the table functions; shell: the sh UPS writes for them
    reverse      the unsetup action UPS derives from a setup action
"""
