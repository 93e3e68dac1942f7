"""Signing images the way sigstore and containers/image do, with `cryptography` (and PyNaCl for
the one primitive it lacks): key pairs in cosign's encrypted format (`keys`), the
simple-signing payload of an image signature (`simple`), DSSE envelopes of in-toto statements
(`dsse`). Bytes in, bytes out: no registry, no store."""
