"""The UPS domain: scisoft mirrors, bundle manifests, product tarballs as layer entries, and the
environment UPS's `setup` gives.

    names        bundle specs, versions (v1_18_03 <-> 1.18.03), OS -> flavor, qualifiers
    scisoft      where manifests and tarballs live on a mirror
    manifest     bundle manifests
    pull         fetching a bundle's manifest and tarballs (cache, lock file)
    tarball      tarballs -> layer entries, streamed; bzip2 on every core (bzip2)
    layering     which products share a layer
    declaration  .version and .chain files; table: .table files; database: a products tree
    environment  what `source setup; setup ...` does to the environment, made of:
      request      a setup request (product, version or chain, qualifiers, options)
      lookup       which .version/.chain file and which .table instance answer a request
      scope        the instance being set up, and the UPS variables its table lines see
      dependencies the products one setup command sets up, depth first, each once
      actions      a table action walked: lines parsed, other actions run; conditionals: if...
      calls        what each table function does; functions: its environment edit
      shellstate   the environment as it changes; shell: the sh UPS writes, evaluated
      notices      warnings given once, and the lines the frozen Env cannot hold
      reverse      the unsetup action UPS derives from a setup action
"""
