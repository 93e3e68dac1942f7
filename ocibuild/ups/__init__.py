"""The UPS domain: scisoft mirrors, bundle manifests, product tarballs as layer entries, and the
environment UPS's `setup` gives.

    names        bundle specs, versions (v1_18_03 <-> 1.18.03), OS -> flavor, qualifiers
    scisoft      where manifests and tarballs live on a mirror
    manifest     bundle manifests
    pull         fetching a bundle's manifest and tarballs (cache, lock file)
    tarball      tarballs -> layer entries, streamed; bzip2 on every core (bzip2)
    layering     which products share a layer
    environment  what `source setup` and `setup ...` do to the environment (ups_setup.c), over:
      database     the image's files under the products databases, read in one pass
      reader       one ups process's reads: files parsed when first needed (upsfil.c), ${VAR}
      upsfile      the reader of .version, .chain, .table and dbconfig files
      upserrors    ups's messages and its "last error", which decides a refusal (upserr.c)
      host         the host flavor an image's setup runs as
      request      a setup request (upsugo.c); flavors, qualifiers: what it tries, in order
      lookup       which chain, version and table instance answer a request (upsmat.c)
      scope        a matched instance and the ${UPS_...} variables of its lines (upsget.c)
      dependencies the walk over the products a setup command sets up (upsact.c get_cmd)
      script       the sh code ups writes, run as the shell runs it; conditionals: If/EndIf
      calls        what each table function does; functions: its environment edit
      sourced      sourced scripts made of assignments, frozen
      table        the functions of a table action and how a call is parsed
      reverse      the unsetup action UPS derives from a setup action
      authorized   AUTHORIZED_NODES, warned about (an image has no node)
      shellstate   the environment as it changes; shell: the sh UPS writes, evaluated
      notices      warnings given once, and the lines the frozen Env cannot hold
"""
