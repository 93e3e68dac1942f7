"""Trust: signatures over what ocibuild reads (package indexes, packages, signed specs)."""
